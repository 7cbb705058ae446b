//! [`Key`]: where a chunk sits in the full (virtual) dataset.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::repr;
use crate::KeyError;

/// Element offsets by dimension name, in insertion order.
pub type Offsets = IndexMap<String, u64>;

/// A set of variable names (sorted, so output is deterministic).
pub type VarSet = BTreeSet<String>;

/// The position of a chunk in a full dataset.
///
/// `offsets` maps a dimension to the **element** offset of the chunk's first
/// element (not a chunk index). Offsets of dimensions a chunk spans whole are
/// optional: a missing offset means 0. `vars` is `None` when the chunk holds
/// all variables (or they are unspecified), or the set of the chunk's data
/// variables; `None` is not the empty set.
///
/// Equality, hashing and ordering ignore the insertion order of offsets;
/// `Display` keeps it, and prints exactly what xarray-beam's `repr` prints.
///
/// ```
/// use xbeam_key::Key;
///
/// let a = Key::from_offsets([("x", 0), ("y", 10)]);
/// let b = Key::from_offsets([("y", 10), ("x", 0)]);
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "Key(offsets={'x': 0, 'y': 10})");
/// assert_eq!(a.with_vars(Some(["foo"])).to_string(), "Key(offsets={'x': 0, 'y': 10}, vars={'foo'})");
/// assert_eq!(Key::new().to_string(), "Key()");
/// ```
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Key {
    offsets: Offsets,
    vars: Option<VarSet>,
}

impl Key {
    /// The key with no offsets and `vars = None`: `Key()`.
    pub fn new() -> Key {
        Key::default()
    }

    /// A key with the given offsets and `vars = None`. A dimension named twice
    /// keeps its last offset.
    pub fn from_offsets<S: Into<String>>(offsets: impl IntoIterator<Item = (S, u64)>) -> Key {
        Key {
            offsets: offsets.into_iter().map(|(d, o)| (d.into(), o)).collect(),
            vars: None,
        }
    }

    /// A key from offsets and variables.
    ///
    /// ```
    /// use xbeam_key::Key;
    /// let k = Key::from_parts([("x", 0)], Some(["bar"]));
    /// assert_eq!(k.to_string(), "Key(offsets={'x': 0}, vars={'bar'})");
    /// ```
    ///
    /// xarray-beam raises `TypeError` when `vars` is a string instead of a
    /// set; here that does not compile:
    ///
    /// ```compile_fail
    /// let k = xbeam_key::Key::from_parts([("x", 0)], Some("bar"));
    /// ```
    pub fn from_parts<S: Into<String>, V: Into<String>>(
        offsets: impl IntoIterator<Item = (S, u64)>,
        vars: Option<impl IntoIterator<Item = V>>,
    ) -> Key {
        Key::from_offsets(offsets).with_vars(vars)
    }

    /// The offsets, in insertion order.
    pub fn offsets(&self) -> &Offsets {
        &self.offsets
    }

    /// The offset along `dim`, if the key has one.
    pub fn offset(&self, dim: &str) -> Option<u64> {
        self.offsets.get(dim).copied()
    }

    /// The offset along `dim`, or 0 when the key has none (the chunk starts at
    /// the beginning of that dimension).
    pub fn offset_or_zero(&self, dim: &str) -> u64 {
        self.offset(dim).unwrap_or(0)
    }

    /// The variables, or `None` for all variables.
    pub fn vars(&self) -> Option<&VarSet> {
        self.vars.as_ref()
    }

    /// A copy with the offset along `dim` set (inserted at the end if new).
    ///
    /// ```
    /// use xbeam_key::Key;
    /// let k = Key::from_offsets([("x", 0)]).with_offset("y", 1).with_offset("z", 2);
    /// assert_eq!(k.to_string(), "Key(offsets={'x': 0, 'y': 1, 'z': 2})");
    /// ```
    pub fn with_offset(&self, dim: impl Into<String>, offset: u64) -> Key {
        let mut out = self.clone();
        out.offsets.insert(dim.into(), offset);
        out
    }

    /// A copy without the offset along `dim`. Like xarray-beam's
    /// `with_offsets(dim=None)`, removing an offset the key does not have is
    /// an error.
    ///
    /// ```
    /// use xbeam_key::Key;
    /// let k = Key::from_offsets([("x", 0), ("y", 1)]);
    /// assert_eq!(k.without_offset("x").unwrap().to_string(), "Key(offsets={'y': 1})");
    /// assert!(k.without_offset("z").is_err());
    /// ```
    pub fn without_offset(&self, dim: &str) -> Result<Key, KeyError> {
        if !self.offsets.contains_key(dim) {
            return Err(KeyError::MissingOffset {
                dim: repr::quote(dim),
                key: self.to_string(),
            });
        }
        let mut out = self.clone();
        out.offsets.shift_remove(dim);
        Ok(out)
    }

    /// A copy without the offsets of any of `dims` (absent ones are ignored).
    pub fn without_offsets<S: AsRef<str>>(&self, dims: impl IntoIterator<Item = S>) -> Key {
        let mut out = self.clone();
        for d in dims {
            out.offsets.shift_remove(d.as_ref());
        }
        out
    }

    /// A copy with `vars` replaced; `None` clears them (all variables).
    pub fn with_vars<V: Into<String>>(&self, vars: Option<impl IntoIterator<Item = V>>) -> Key {
        Key {
            offsets: self.offsets.clone(),
            vars: vars.map(|v| v.into_iter().map(Into::into).collect()),
        }
    }

    /// A new key with the parts given as `Some` replaced and the others
    /// copied, as xarray-beam's `Key.replace`. `vars: Some(None)` clears vars.
    ///
    /// ```
    /// use xbeam_key::Key;
    /// let k = Key::from_parts([("x", 0)], Some(["foo"]));
    /// assert_eq!(k.replace(None, Some(None)).to_string(), "Key(offsets={'x': 0})");
    /// let moved = k.replace(Some([("t".to_string(), 5)].into_iter().collect()), None);
    /// assert_eq!(moved.to_string(), "Key(offsets={'t': 5}, vars={'foo'})");
    /// ```
    pub fn replace(&self, offsets: Option<Offsets>, vars: Option<Option<VarSet>>) -> Key {
        Key {
            offsets: offsets.unwrap_or_else(|| self.offsets.clone()),
            vars: vars.unwrap_or_else(|| self.vars.clone()),
        }
    }

    /// The offsets sorted by dimension name: the canonical form used for
    /// equality, hashing, ordering and the binary encoding.
    pub fn sorted_offsets(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.offsets.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        v.sort_unstable();
        v
    }

    /// A compact, deterministic binary encoding: equal keys encode to equal
    /// bytes whatever their insertion order, and `vars = None` differs from
    /// the empty set.
    ///
    /// ```
    /// use xbeam_key::Key;
    /// let k = Key::from_parts([("y", 1), ("x", 0)], Some(["foo"]));
    /// let bytes = k.encode();
    /// assert_eq!(bytes, Key::from_parts([("x", 0), ("y", 1)], Some(["foo"])).encode());
    /// assert_eq!(Key::decode(&bytes).unwrap(), k);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 12 * self.offsets.len());
        let sorted = self.sorted_offsets();
        put_varint(&mut out, sorted.len() as u64);
        for (dim, offset) in sorted {
            put_str(&mut out, dim);
            put_varint(&mut out, offset);
        }
        match &self.vars {
            None => out.push(0),
            Some(vars) => {
                out.push(1);
                put_varint(&mut out, vars.len() as u64);
                for v in vars {
                    put_str(&mut out, v);
                }
            }
        }
        out
    }

    /// Decodes what [`Key::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Key, KeyError> {
        let mut r = Reader { bytes, pos: 0 };
        let n = r.varint()?;
        let mut offsets = Offsets::new();
        for _ in 0..n {
            let dim = r.string()?;
            let offset = r.varint()?;
            if offsets.insert(dim.clone(), offset).is_some() {
                return Err(KeyError::Decode(format!("dimension {dim:?} appears twice")));
            }
        }
        let vars = match r.byte()? {
            0 => None,
            1 => {
                let n = r.varint()?;
                let mut vars = VarSet::new();
                for _ in 0..n {
                    vars.insert(r.string()?);
                }
                Some(vars)
            }
            tag => {
                return Err(KeyError::Decode(format!(
                    "expected a vars tag of 0 or 1, found {tag}"
                )))
            }
        };
        if r.pos != bytes.len() {
            return Err(KeyError::Decode(format!(
                "expected {} bytes, found {} trailing",
                r.pos,
                bytes.len() - r.pos
            )));
        }
        Ok(Key { offsets, vars })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, KeyError> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| {
            KeyError::Decode(format!("unexpected end of input at byte {}", self.pos))
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, KeyError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(KeyError::Decode("varint longer than 10 bytes".into()))
    }

    fn string(&mut self) -> Result<String, KeyError> {
        let len = usize::try_from(self.varint()?)
            .map_err(|_| KeyError::Decode("string length overflows usize".into()))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                KeyError::Decode(format!("string of {len} bytes runs past the end of input"))
            })?;
        let s = std::str::from_utf8(&self.bytes[self.pos..end])
            .map_err(|e| KeyError::Decode(format!("invalid UTF-8 in a name: {e}")))?;
        self.pos = end;
        Ok(s.to_owned())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.vars == other.vars
            && self.offsets.len() == other.offsets.len()
            && self
                .offsets
                .iter()
                .all(|(k, v)| other.offsets.get(k) == Some(v))
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sorted_offsets().hash(state);
        self.vars.hash(state);
    }
}

impl Ord for Key {
    /// A total order: offsets compared as sorted `(dim, offset)` lists, then
    /// vars (`None` first). It exists for deterministic output, not meaning.
    fn cmp(&self, other: &Key) -> Ordering {
        self.sorted_offsets()
            .cmp(&other.sorted_offsets())
            .then_with(|| self.vars.cmp(&other.vars))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.offsets.is_empty() {
            parts.push(format!("offsets={}", repr::dict(self.offsets.iter())));
        }
        if let Some(vars) = &self.vars {
            parts.push(format!("vars={}", repr::set(vars)));
        }
        write!(f, "Key({})", parts.join(", "))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A key's size for the engine's memory accounting: its dimension and
/// variable names plus eight bytes per offset.
impl xbeam_size::ByteSize for Key {
    fn byte_size(&self) -> usize {
        let offsets: usize = self.offsets.keys().map(|d| d.len() + 8).sum();
        let vars: usize = self
            .vars
            .as_ref()
            .map_or(0, |v| v.iter().map(String::len).sum());
        offsets + vars
    }

    fn describe(&self) -> Option<String> {
        Some(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reprs_match_xarray_beam() {
        assert_eq!(
            Key::from_offsets([("x", 0), ("y", 10)]).to_string(),
            "Key(offsets={'x': 0, 'y': 10})"
        );
        assert_eq!(
            Key::new().with_vars(Some(["foo"])).to_string(),
            "Key(vars={'foo'})"
        );
        assert_eq!(
            Key::from_parts([("x", 0)], Some(["bar"])).to_string(),
            "Key(offsets={'x': 0}, vars={'bar'})"
        );
        assert_eq!(Key::new().to_string(), "Key()");
        assert_eq!(
            Key::new().with_vars(Some(Vec::<String>::new())).to_string(),
            "Key(vars=set())"
        );
    }

    #[test]
    fn with_offset_chain_matches_case_1() {
        // {x:0}.with_offsets(x=None, y=1, z=2) = {y:1, z:2}
        let k = Key::from_offsets([("x", 0)]);
        let k2 = k
            .without_offset("x")
            .unwrap()
            .with_offset("y", 1)
            .with_offset("z", 2);
        assert_eq!(k2, Key::from_offsets([("y", 1), ("z", 2)]));
        let err = k.without_offset("q").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot remove the offset of dimension 'q': Key(offsets={'x': 0}) has no offset for it"
        );
    }

    #[test]
    fn replace_vars_none_clears_vars() {
        let k = Key::from_parts([("x", 0)], Some(["foo"]));
        let cleared = k.replace(None, Some(None));
        assert_eq!(cleared.vars(), None);
        assert_eq!(cleared.offsets(), k.offsets());
        assert_ne!(cleared, k);
    }

    #[test]
    fn vars_none_differs_from_empty() {
        let none = Key::new();
        let empty = Key::new().with_vars(Some(Vec::<String>::new()));
        assert_ne!(none, empty);
        assert_ne!(none.encode(), empty.encode());
        assert_ne!(none.cmp(&empty), Ordering::Equal);
    }

    #[test]
    fn group_by_key_ignores_insertion_order() {
        // conformance case 2
        let items = [
            (Key::from_offsets([("x", 0), ("y", 1)]), 1),
            (Key::from_offsets([("x", 0), ("y", 2)]), 2),
            (Key::from_offsets([("y", 1), ("x", 0)]), 3),
        ];
        let mut groups: HashMap<Key, Vec<i32>> = HashMap::new();
        for (k, v) in items {
            groups.entry(k).or_default().push(v);
        }
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[&Key::from_offsets([("x", 0), ("y", 1)])], vec![1, 3]);
        assert_eq!(groups[&Key::from_offsets([("x", 0), ("y", 2)])], vec![2]);
        let mut by_vars: HashMap<Key, Vec<i32>> = HashMap::new();
        for (i, v) in [["foo"], ["bar"], ["foo"]].into_iter().enumerate() {
            by_vars
                .entry(Key::new().with_vars(Some(v)))
                .or_default()
                .push(i as i32);
        }
        assert_eq!(by_vars[&Key::new().with_vars(Some(["foo"]))], vec![0, 2]);
    }

    #[test]
    fn decode_rejects_malformed_input() {
        let k = Key::from_parts([("x", 300)], Some(["a"]));
        let bytes = k.encode();
        for cut in 0..bytes.len() {
            assert!(Key::decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Key::decode(&extra)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
        let mut bad_tag = bytes;
        let last_tag = bad_tag.len() - 3;
        bad_tag[last_tag] = 7;
        assert!(Key::decode(&bad_tag).is_err());
    }

    #[test]
    fn serde_keeps_insertion_order() {
        let k = Key::from_parts([("y", 1), ("x", 0)], Some(["b", "a"]));
        let bytes = bincode::serialize(&k).unwrap();
        let back: Key = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, k);
        assert_eq!(
            back.to_string(),
            "Key(offsets={'y': 1, 'x': 0}, vars={'a', 'b'})"
        );
    }
}
