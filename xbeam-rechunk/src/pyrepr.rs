//! Python's text for tuples and dicts in error messages, so that messages
//! read as xarray-beam's do.

use std::fmt::Display;

use xbeam_key::ChunkSpec;

/// A sequence written as a Python tuple: `(1,)`, `(1, 2)`, `()`.
pub(crate) fn tuple<T: Display>(items: &[T]) -> String {
    if let [single] = items {
        return format!("({single},)");
    }
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("({})", items.join(", "))
}

/// A chunk request as Python writes it: `5`, `-1`, `(3, 4)`.
fn spec(spec: &ChunkSpec) -> String {
    match spec {
        ChunkSpec::Full => "-1".to_owned(),
        ChunkSpec::Size(c) => c.to_string(),
        ChunkSpec::Sizes(sizes) => tuple(sizes),
    }
}

/// Named chunk requests as a Python dict: `{'x': 3, 'y': -1}`.
pub(crate) fn spec_dict(chunks: &[(String, ChunkSpec)]) -> String {
    xbeam_key::repr::dict(chunks.iter().map(|(k, v)| (k, spec(v))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_tuples() {
        assert_eq!(tuple::<u64>(&[]), "()");
        assert_eq!(tuple(&[1u64]), "(1,)");
        assert_eq!(tuple(&[100u64, 1]), "(100, 1)");
    }
}
