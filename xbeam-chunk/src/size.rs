//! [`ByteSize`] for the data model, so `(Key, Dataset)` chunks are engine
//! elements as they are: the size is the data's bytes ([`Dataset::nbytes`]),
//! computed from shapes, never by serializing.

use xbeam_size::ByteSize;

use crate::{Array, Dataset, Template, Variable};

impl ByteSize for Array {
    fn byte_size(&self) -> usize {
        self.nbytes()
    }
}

impl ByteSize for Variable {
    fn byte_size(&self) -> usize {
        self.nbytes()
    }
}

impl ByteSize for Dataset {
    fn byte_size(&self) -> usize {
        self.nbytes()
    }
}

/// A template holds no data, only its (small) coordinates.
impl ByteSize for Template {
    fn byte_size(&self) -> usize {
        self.coords().values().map(Variable::nbytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_reports_its_data_bytes() {
        let ds = Dataset::new()
            .with_data_var(
                "foo",
                Variable::new(["x"], Array::from_1d(vec![0f32; 10])).unwrap(),
            )
            .unwrap();
        let key = xbeam_key::Key::from_offsets([("x", 0u64)]);
        assert_eq!(ds.byte_size(), 40);
        assert_eq!((key, ds).byte_size(), 40 + 1 + 8);
    }
}
