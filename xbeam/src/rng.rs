//! `SplitMix64`: the small seeded generator behind [`crate::synthetic`].

use std::f64::consts::PI;

/// `SplitMix64`: a tiny, good-quality seeded generator.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    /// The generator of one variable's noise at one time step, so values
    /// never depend on how the data is chunked.
    pub(crate) fn for_step(seed: u64, var: u64, t: u64) -> SplitMix {
        let mut s = SplitMix(seed ^ 0x9E37_79B9_7F4A_7C15);
        s.0 ^= s
            .next()
            .wrapping_add(var.wrapping_mul(0xBF58_476D_1CE4_E5B9));
        s.0 ^= s.next().wrapping_add(t.wrapping_mul(0x94D0_49BB_1331_11EB));
        s
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Two standard normal values (Box–Muller).
    pub(crate) fn normals(&mut self) -> (f32, f32) {
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let theta = 2.0 * PI * self.uniform();
        ((r * theta.cos()) as f32, (r * theta.sin()) as f32)
    }
}
