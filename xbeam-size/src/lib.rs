//! [`ByteSize`]: how many bytes a value holds.
//!
//! The engine (`xbeam-runner`) bounds memory by asking every element for its
//! size; the domain crates (`xbeam-key`, `xbeam-chunk`) implement it for
//! `Key`, `Variable` and `Dataset`. Both depend on this crate and on nothing
//! of each other, so `(Key, Dataset)` is an engine element as it is.
//!
//! ```
//! use xbeam_size::ByteSize;
//!
//! assert_eq!(7u64.byte_size(), 8);
//! assert_eq!((String::from("ab"), vec![0f32; 4]).byte_size(), 2 + 16);
//! ```

/// The number of bytes an element holds (its payload, not the allocator's
/// overhead), used to bound memory in flight and to decide when a group
/// spills to disk.
pub trait ByteSize {
    /// The size of every value of the type, when it is fixed (numbers);
    /// lets `Vec<f32>` report its size without visiting its elements.
    const FIXED: Option<usize> = None;

    /// Bytes of payload.
    fn byte_size(&self) -> usize;

    /// A short name of this value for error messages, when the type has
    /// one (a chunk's key); containers and tuples pass on the first one
    /// found. The engine says which element failed with it.
    fn describe(&self) -> Option<String> {
        None
    }
}

macro_rules! fixed_size {
    ($($t:ty),*) => {$(
        impl ByteSize for $t {
            const FIXED: Option<usize> = Some(std::mem::size_of::<$t>());

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
        self.as_slice().byte_size()
    }
}

impl<T: ByteSize> ByteSize for Option<T> {
    fn byte_size(&self) -> usize {
        self.as_ref().map_or(0, ByteSize::byte_size)
    }

    fn describe(&self) -> Option<String> {
        self.as_ref().and_then(ByteSize::describe)
    }
}

/// An error holds no payload worth counting; a value counts as itself.
impl<T: ByteSize, E> ByteSize for Result<T, E> {
    fn byte_size(&self) -> usize {
        self.as_ref().map_or(0, ByteSize::byte_size)
    }
}

impl<T: ByteSize + ?Sized> ByteSize for Box<T> {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
    fn describe(&self) -> Option<String> {
        (**self).describe()
    }
}

impl<T: ByteSize + ?Sized> ByteSize for &T {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
    fn describe(&self) -> Option<String> {
        (**self).describe()
    }
}

impl<T: ByteSize + ?Sized> ByteSize for std::sync::Arc<T> {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
    fn describe(&self) -> Option<String> {
        (**self).describe()
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

impl<T: ByteSize> ByteSize for [T] {
    fn byte_size(&self) -> usize {
        match T::FIXED {
            Some(size) => size * self.len(),
            None => self.iter().map(ByteSize::byte_size).sum(),
        }
    }
}

impl<K: ByteSize, V: ByteSize> ByteSize for std::collections::BTreeMap<K, V> {
    fn byte_size(&self) -> usize {
        self.iter()
            .map(|(k, v)| k.byte_size() + v.byte_size())
            .sum()
    }
}

impl<T: ByteSize> ByteSize for std::collections::BTreeSet<T> {
    fn byte_size(&self) -> usize {
        self.iter().map(ByteSize::byte_size).sum()
    }
}

impl ByteSize for serde_bytes::ByteBuf {
    fn byte_size(&self) -> usize {
        self.len()
    }
}

macro_rules! tuple_size {
    ($(($($n:tt $t:ident),+)),*) => {$(
        impl<$($t: ByteSize),+> ByteSize for ($($t,)+) {
            fn byte_size(&self) -> usize {
                0 $(+ self.$n.byte_size())+
            }

            fn describe(&self) -> Option<String> {
                None $(.or_else(|| self.$n.describe()))+
            }
        }
    )*};
}
tuple_size!((0 A), (0 A, 1 B), (0 A, 1 B, 2 C), (0 A, 1 B, 2 C, 3 D));
