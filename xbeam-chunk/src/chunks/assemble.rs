//! [`Assembly`]: a target chunk assembled in place from its pieces as they
//! arrive, each element copied once.

use std::collections::{BTreeMap, HashSet};

use xbeam_key::{repr, Key};

use super::{vars_repr, Chunk};
use crate::error::{bail, ensure};
use crate::{Array, Attrs, ChunkError, DType, Dataset, Variable, Variables};

/// A dimension a chunk is assembled along: its name, and the start and
/// length of the chunk along it.
pub type Extent = (String, u64, u64);

/// One target chunk being assembled from the pieces that tile it, copied
/// into its buffers as each piece arrives: the in-place counterpart of
/// [`consolidate_chunks`](super::consolidate_chunks) on one group, for a
/// shuffle that knows the extent of each target chunk. A piece is copied
/// once and can be dropped at once (a group of pieces held until all have
/// come holds them all, then copies them again).
///
/// `extents` are the dimensions consolidated along, each with the start and
/// length of the target chunk; along other dimensions every piece must have
/// the first piece's size. [`finish`](Self::finish) checks what
/// `consolidate_chunks` checks: the pieces form a full grid (none missing,
/// none twice), they are contiguous, the first starts the target chunk, and
/// variables without a consolidated dimension are equal in every piece.
/// Stricter: the pieces must cover the target chunk to its end (a
/// consolidated chunk cut short is a missing piece, never a smaller chunk).
///
/// ```
/// use xbeam_chunk::{chunks::Assembly, Array, Dataset, Variable};
/// use xbeam_key::Key;
///
/// let piece = |v: Vec<f32>| Dataset::new().with_data_var("t", Variable::new(["x"], Array::from_1d(v)).unwrap()).unwrap();
/// let (first, second) = (piece(vec![0.0, 1.0]), piece(vec![2.0]));
/// let extents = [("x".to_string(), 0, 3)];
/// assert_eq!(Assembly::nbytes_for(&extents, &first), 12);
/// let mut chunk = Assembly::new(Key::from_offsets([("x", 0)]), &extents, &Key::from_offsets([("x", 0)]), &first)?;
/// chunk.add(&Key::from_offsets([("x", 2)]), &second)?;
/// let (key, ds) = chunk.finish()?;
/// assert_eq!(key, Key::from_offsets([("x", 0)]));
/// assert_eq!(ds.data_var("t")?.data().as_view::<f32>()?.as_slice().unwrap(), &[0.0, 1.0, 2.0]);
/// # Ok::<(), xbeam_chunk::ChunkError>(())
/// ```
pub struct Assembly {
    key: Key,
    extents: Vec<Extent>,
    attrs: Attrs,
    slots: Vec<Slot>,
    /// The offsets (along `extents`) of the pieces added.
    pieces: HashSet<Vec<u64>>,
    /// Per dimension of `extents`: the starts of pieces along it, with the
    /// pieces' size there (`None` when they lack the dimension).
    starts: Vec<BTreeMap<u64, Option<u64>>>,
}

/// One variable of the chunk: its metadata and buffer.
struct Slot {
    name: String,
    coord: bool,
    var: Variable,
    /// For each axis, the index in `extents` of its dimension.
    axes: Vec<Option<usize>>,
    /// When the variable lacks a dimension of `extents`, pieces repeat it:
    /// the origins written so far (a repeat is compared, not copied).
    written: Option<HashSet<Vec<usize>>>,
}

impl std::fmt::Debug for Assembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembly")
            .field("key", &self.key)
            .field("extents", &self.extents)
            .field("pieces", &self.pieces.len())
            .finish_non_exhaustive()
    }
}

/// The buffer shape of `var` in a chunk with `extents`.
fn shape_in(extents: &[Extent], var: &Variable) -> Vec<usize> {
    var.dims()
        .iter()
        .zip(var.shape())
        .map(|(d, &n)| {
            extents
                .iter()
                .find(|(e, ..)| e == d)
                .map_or(n, |&(_, _, len)| len as usize)
        })
        .collect()
}

/// The coordinates of `ds`, or its data variables.
fn of_kind(ds: &Dataset, coord: bool) -> &Variables {
    if coord {
        ds.coords()
    } else {
        ds.data_vars()
    }
}

impl Assembly {
    /// The bytes the buffers of a chunk with `extents` take, given its
    /// first piece.
    pub fn nbytes_for(extents: &[Extent], first: &Dataset) -> usize {
        first
            .variables()
            .map(|(_, v)| {
                // a string element is a `String` in memory, not NumPy's 16 bytes
                let item = match v.dtype() {
                    DType::String => std::mem::size_of::<String>(),
                    other => other.itemsize(),
                };
                shape_in(extents, v).iter().product::<usize>() * item
            })
            .sum()
    }

    /// A chunk keyed `key` (its start along each dimension, and its
    /// variables), spanning `extents` (dimension, start, length), with its
    /// buffers allocated (zeroed) and `first`, keyed `first_key`, copied in.
    pub fn new(
        key: Key,
        extents: &[Extent],
        first_key: &Key,
        first: &Dataset,
    ) -> Result<Assembly, ChunkError> {
        let mut slots = Vec::new();
        for coord in [true, false] {
            for (name, var) in of_kind(first, coord) {
                let shape = shape_in(extents, var);
                let axes: Vec<Option<usize>> = var
                    .dims()
                    .iter()
                    .map(|d| extents.iter().position(|(e, ..)| e == d))
                    .collect();
                let lacks = extents.len() > axes.iter().flatten().count();
                slots.push(Slot {
                    name: name.clone(),
                    coord,
                    var: var.with_assembled_data(Array::full(var.dtype(), &shape, 0.0)?),
                    axes,
                    written: lacks.then(HashSet::new),
                });
            }
        }
        let mut assembly = Assembly {
            key,
            extents: extents.to_vec(),
            attrs: first.attrs().clone(),
            slots,
            pieces: HashSet::new(),
            starts: vec![BTreeMap::new(); extents.len()],
        };
        assembly.add(first_key, first)?;
        Ok(assembly)
    }

    /// Copies the piece keyed `key` into place. Errors name a piece that
    /// does not fit the chunk, comes twice, or differs from the first in
    /// its variables, their dimensions or dtypes.
    pub fn add(&mut self, key: &Key, piece: &Dataset) -> Result<(), ChunkError> {
        self.check_names(piece)?;
        let mut offsets = Vec::with_capacity(self.extents.len());
        for (i, (dim, start, len)) in self.extents.iter().enumerate() {
            let at = key.offset_or_zero(dim);
            let size = piece.variables().find_map(|(_, v)| v.size_of(dim));
            let end = at + size.unwrap_or(1) as u64;
            ensure!(
                at >= *start && end <= start + len,
                Chunks,
                "the chunk {key} does not fit in the target chunk {}: along {} it spans {at}..{end}, the target chunk {start}..{}",
                self.key,
                repr::quote(dim),
                start + len
            );
            let size = size.map(|n| n as u64);
            if let Some(&other) = self.starts[i].get(&at) {
                ensure!(
                    other == size,
                    Chunks,
                    "the chunks at offset {at} along {} have different sizes: {other:?} and {size:?}",
                    repr::quote(dim)
                );
            }
            self.starts[i].insert(at, size);
            offsets.push(at - start);
        }
        if !self.pieces.insert(offsets.clone()) {
            bail!(Chunks, "chunk keys are not unique: {key} came twice");
        }
        for slot in &mut self.slots {
            slot.place(&offsets, &of_kind(piece, slot.coord)[&slot.name])?;
        }
        Ok(())
    }

    /// The variable names of `piece` must be the first piece's.
    fn check_names(&self, piece: &Dataset) -> Result<(), ChunkError> {
        for (coord, kind) in [(true, "coordinates"), (false, "data variables")] {
            let theirs = of_kind(piece, coord);
            let ours = self.slots.iter().filter(|s| s.coord == coord);
            if ours.clone().count() != theirs.len()
                || ours.clone().any(|s| !theirs.contains_key(&s.name))
            {
                bail!(
                    Mismatch,
                    "cannot concatenate datasets with different {kind}: {} vs {}",
                    repr::tuple(ours.map(|s| &s.name)),
                    repr::tuple(theirs.keys())
                );
            }
        }
        Ok(())
    }

    /// The assembled chunk, after checking that its pieces tile it.
    pub fn finish(self) -> Result<Chunk, ChunkError> {
        let vars = self.key.vars();
        let mut grid = Vec::with_capacity(self.extents.len());
        for ((dim, start, len), starts) in self.extents.iter().zip(&self.starts) {
            let first = starts.keys().next().copied().unwrap_or(*start);
            ensure!(
                first == *start,
                Chunks,
                "the chunk that starts the target chunk {} is missing: along {} the first chunk starts at {first}",
                self.key,
                repr::quote(dim)
            );
            let mut end = *start;
            for (&at, &size) in starts {
                if at != end && size.is_some() {
                    bail!(
                        Chunks,
                        "chunks for vars={} are not contiguous along {}: the chunks end at {end}, so the next should start there, but it starts at {at}",
                        vars_repr(vars),
                        repr::quote(dim)
                    );
                }
                end = at + size.unwrap_or(1);
            }
            let known = starts.values().all(Option::is_some);
            ensure!(
                !known || end == start + len,
                Chunks,
                "some expected chunks are missing for vars={}: along {} the chunks cover {start}..{end} of the target chunk {start}..{}",
                vars_repr(vars),
                repr::quote(dim),
                start + len
            );
            grid.push(starts.len());
        }
        if grid.iter().product::<usize>() != self.pieces.len() {
            bail!(
                Chunks,
                "some expected chunks are missing for vars={} shape: ({}{}) len(inputs): {}",
                vars_repr(vars),
                grid.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                if grid.len() == 1 { "," } else { "" },
                self.pieces.len()
            );
        }
        let (mut coords, mut data_vars) = (Variables::new(), Variables::new());
        for slot in self.slots {
            if slot.coord {
                coords.insert(slot.name, slot.var);
            } else {
                data_vars.insert(slot.name, slot.var);
            }
        }
        Ok((
            self.key,
            Dataset::from_parts(data_vars, coords, self.attrs)?,
        ))
    }
}

impl Slot {
    /// Copies the piece's `var` into place (`offsets` of the piece along
    /// the extents), or compares it with what is there when the variable
    /// repeats along a dimension it lacks.
    fn place(&mut self, offsets: &[u64], var: &Variable) -> Result<(), ChunkError> {
        let kind = if self.coord {
            "coordinate"
        } else {
            "data variable"
        };
        ensure!(
            self.var.same_dims_unordered(var),
            Mismatch,
            "cannot concatenate variable {} with dims {} and {}",
            repr::quote(&self.name),
            repr::tuple(self.var.dims()),
            repr::tuple(var.dims())
        );
        let var = if var.dims() == self.var.dims() {
            var.clone()
        } else {
            var.transpose(self.var.dims())?
        };
        // along dimensions not consolidated, every piece has the whole size
        for (axis, (dim, e)) in self.var.dims().iter().zip(&self.axes).enumerate() {
            let (want, found) = (self.var.shape()[axis], var.shape()[axis]);
            ensure!(
                e.is_some() || want == found,
                Mismatch,
                "{kind} {}: the chunks have different sizes along {}, which is not consolidated: {want} and {found}",
                repr::quote(&self.name),
                repr::quote(dim)
            );
        }
        let origin: Vec<usize> = self
            .axes
            .iter()
            .map(|a| a.map_or(0, |i| offsets[i] as usize))
            .collect();
        if let Some(written) = &mut self.written {
            if !written.insert(origin.clone()) {
                let region: indexmap::IndexMap<String, std::ops::Range<usize>> = self
                    .var
                    .dims()
                    .iter()
                    .zip(&origin)
                    .zip(var.shape())
                    .map(|((d, &o), &n)| (d.clone(), o..o + n))
                    .collect();
                let there = self.var.isel(&region)?;
                ensure!(
                    there.equals(&var),
                    Mismatch,
                    "{kind} {} differs between datasets along a dimension it does not have: {there:?} vs {var:?}",
                    repr::quote(&self.name)
                );
                return Ok(());
            }
        }
        self.var
            .data_mut()
            .assign_at(&origin, var.data())
            .map_err(|e| ChunkError::Mismatch(format!("variable {}: {e}", repr::quote(&self.name))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(x: u64, values: &[i64]) -> Chunk {
        let ds = Dataset::new()
            .with_data_var(
                "v",
                Variable::new(["x"], Array::from_1d(values.to_vec())).unwrap(),
            )
            .unwrap();
        (Key::from_offsets([("x", x)]), ds)
    }

    fn assemble(pieces: &[Chunk], len: u64) -> Result<Chunk, ChunkError> {
        let extents = [("x".to_string(), 0, len)];
        let mut a = Assembly::new(
            Key::from_offsets([("x", 0)]),
            &extents,
            &pieces[0].0,
            &pieces[0].1,
        )?;
        for (k, ds) in &pieces[1..] {
            a.add(k, ds)?;
        }
        a.finish()
    }

    #[test]
    fn pieces_in_any_order_give_the_consolidated_chunk() {
        let pieces = [piece(3, &[3, 4]), piece(0, &[0, 1, 2]), piece(5, &[5])];
        let (_, ds) = assemble(&pieces, 6).unwrap();
        let want = super::super::consolidate_chunks(pieces.to_vec()).unwrap();
        assert!(ds.identical(&want[0].1));
    }

    #[test]
    fn a_short_tail_gaps_and_repeats_are_errors() {
        let short = assemble(&[piece(0, &[0, 1]), piece(2, &[2])], 6).unwrap_err();
        assert_eq!(
            short.to_string(),
            "some expected chunks are missing for vars=None: along 'x' the chunks cover 0..3 of the target chunk 0..6"
        );
        let gap = assemble(&[piece(0, &[0, 1]), piece(3, &[3])], 6).unwrap_err();
        assert!(
            gap.to_string().contains("not contiguous along 'x'"),
            "{gap}"
        );
        let twice = assemble(&[piece(0, &[0, 1]), piece(0, &[0, 1])], 6).unwrap_err();
        assert!(twice.to_string().contains("came twice"), "{twice}");
        let missing = assemble(&[piece(2, &[2])], 6).unwrap_err();
        assert!(
            missing.to_string().contains("starts the target chunk"),
            "{missing}"
        );
        let outside = assemble(&[piece(0, &[0, 1]), piece(5, &[5, 6])], 6).unwrap_err();
        assert!(outside.to_string().contains("does not fit"), "{outside}");
    }

    #[test]
    fn a_variable_without_a_consolidated_dimension_must_repeat_equal() {
        let with_c = |x: u64, c: i64| -> Chunk {
            let (k, ds) = piece(x, &[x as i64]);
            let ds = ds
                .with_data_var("c", Variable::new(["y"], Array::from_1d(vec![c])).unwrap())
                .unwrap();
            (k, ds)
        };
        let (_, ds) = assemble(&[with_c(0, 7), with_c(1, 7)], 2).unwrap();
        assert_eq!(
            ds.data_var("c").unwrap().data().as_view::<i64>().unwrap()[[0]],
            7
        );
        let err = assemble(&[with_c(0, 7), with_c(1, 8)], 2).unwrap_err();
        assert!(err.to_string().contains("'c' differs"), "{err}");
    }

    #[test]
    fn pieces_must_agree_along_dimensions_not_consolidated() {
        let grid = |x: u64, ny: usize| -> Chunk {
            let values = vec![x as i64; ny];
            let ds = Dataset::new()
                .with_data_var(
                    "v",
                    Variable::new(["x", "y"], Array::from_vec(vec![1, ny], values).unwrap())
                        .unwrap(),
                )
                .unwrap();
            (Key::from_offsets([("x", x)]), ds)
        };
        let (_, ds) = assemble(&[grid(0, 3), grid(1, 3)], 2).unwrap();
        assert_eq!(ds.data_var("v").unwrap().shape(), &[2, 3]);
        let err = assemble(&[grid(0, 3), grid(1, 2)], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data variable 'v': the chunks have different sizes along 'y', which is not consolidated: 3 and 2"
        );
        // a repeated variable (no `x`) that comes back smaller
        let with_c = |x: u64, n: usize| -> Chunk {
            let (k, ds) = piece(x, &[x as i64]);
            let c = Variable::new(["y"], Array::from_1d(vec![7i64; n])).unwrap();
            (k, ds.with_data_var("c", c).unwrap())
        };
        let err = assemble(&[with_c(0, 3), with_c(1, 2)], 2).unwrap_err();
        assert!(err.to_string().contains("along 'y'"), "{err}");
    }

    #[test]
    fn string_buffers_are_counted_as_strings() {
        let names = Variable::new(["x"], Array::from_1d(vec!["a".to_string(); 2])).unwrap();
        let ds = Dataset::new().with_data_var("s", names).unwrap();
        let extents = [("x".to_string(), 0, 5)];
        assert_eq!(
            Assembly::nbytes_for(&extents, &ds),
            5 * std::mem::size_of::<String>()
        );
        let (_, out) = assemble(&[(Key::from_offsets([("x", 0)]), ds)], 2).unwrap();
        assert_eq!(out.data_var("s").unwrap().shape(), &[2]);
    }

    #[test]
    fn different_variables_are_an_error() {
        let (k, ds) = piece(1, &[1]);
        let other = ds.rename(&[("v", "w")]).unwrap();
        let err = assemble(&[piece(0, &[0]), (k, other)], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot concatenate datasets with different data variables: ('v',) vs ('w',)"
        );
    }
}
