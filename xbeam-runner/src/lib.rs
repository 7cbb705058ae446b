//! The xbeam pipeline engine on timely-dataflow: `Pipeline` and
//! `PCollection`, in one process or many. It knows nothing about arrays.
//!
//! Memory is bounded by counting bytes in flight, so every element reports
//! its size through [`ByteSize`]; that trait is here now, and the engine
//! itself lands with the engine issue.
//!
//! ```
//! use xbeam_runner::ByteSize;
//!
//! let element = (String::from("temperature"), vec![0f32; 1024]);
//! assert_eq!(element.byte_size(), 11 + 4096);
//! ```

/// The number of bytes an element holds (its payload, not the allocator's
/// overhead), used to bound memory in flight and to decide when a group
/// spills to disk.
pub trait ByteSize {
    /// Bytes of payload.
    fn byte_size(&self) -> usize;
}

macro_rules! fixed_size {
    ($($t:ty),*) => {$(
        impl ByteSize for $t {
            fn byte_size(&self) -> usize {
                std::mem::size_of::<$t>()
            }
        }
    )*};
}
fixed_size!(
    bool,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    char,
    ()
);

impl ByteSize for String {
    fn byte_size(&self) -> usize {
        self.len()
    }
}

impl ByteSize for str {
    fn byte_size(&self) -> usize {
        self.len()
    }
}

impl<T: ByteSize> ByteSize for Vec<T> {
    fn byte_size(&self) -> usize {
        self.iter().map(ByteSize::byte_size).sum()
    }
}

impl<T: ByteSize> ByteSize for Option<T> {
    fn byte_size(&self) -> usize {
        self.as_ref().map_or(0, ByteSize::byte_size)
    }
}

impl<T: ByteSize + ?Sized> ByteSize for Box<T> {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
}

impl<T: ByteSize + ?Sized> ByteSize for std::sync::Arc<T> {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
}

impl<A: ByteSize, B: ByteSize> ByteSize for (A, B) {
    fn byte_size(&self) -> usize {
        self.0.byte_size() + self.1.byte_size()
    }
}

impl<A: ByteSize, B: ByteSize, C: ByteSize> ByteSize for (A, B, C) {
    fn byte_size(&self) -> usize {
        self.0.byte_size() + self.1.byte_size() + self.2.byte_size()
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn sizes_add_up_through_containers() {
        assert_eq!(7u64.byte_size(), 8);
        assert_eq!(vec![vec![1u16; 3]; 2].byte_size(), 12);
        assert_eq!(Some(String::from("abc")).byte_size(), 3);
        assert_eq!(None::<String>.byte_size(), 0);
        assert_eq!((1u8, 2.0f64, String::from("xy")).byte_size(), 11);
        assert_eq!(std::sync::Arc::new(vec![0f32; 10]).byte_size(), 40);
    }
}
