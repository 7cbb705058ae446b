//! The engine's overhead, from the `engine_overhead` criterion benchmark:
//! the same per-chunk job as a plain loop and on the engine (one worker),
//! on 2.8 MB and 116 kB chunks.

/// Prints the overhead on 2.8 MB chunks (target < 5% of wall time) and the
/// per-byte cost of 116 kB chunks against 2.8 MB ones (target < 2×).
pub(crate) fn report() -> Result<(), String> {
    let mean = |name: &str| super::criterion_mean("engine_overhead", name);
    let (direct_big, engine_big) = (mean("direct_2.8MB")?, mean("engine_2.8MB")?);
    let (direct_small, engine_small) = (mean("direct_116kB")?, mean("engine_116kB")?);
    let overhead = |engine: f64, direct: f64| (engine - direct) / engine * 100.0;
    eprintln!("\nengine overhead (sum of each chunk, 280 MB in memory, one worker):");
    eprintln!(
        "  2.8 MB chunks: loop {:.1} ms, engine {:.1} ms: {:+.1}% of wall time (target < 5%)",
        direct_big * 1e3,
        engine_big * 1e3,
        overhead(engine_big, direct_big)
    );
    eprintln!(
        "  116 kB chunks: loop {:.1} ms, engine {:.1} ms: {:+.1}% of wall time",
        direct_small * 1e3,
        engine_small * 1e3,
        overhead(engine_small, direct_small)
    );
    eprintln!(
        "  per byte, 116 kB chunks cost {:.2}x what 2.8 MB chunks cost on the engine (target < 2x)",
        engine_small / engine_big
    );
    Ok(())
}
