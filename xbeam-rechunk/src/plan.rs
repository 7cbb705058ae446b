//! The Rechunker multi-stage plan on regular chunks: stage chunks spaced
//! geometrically between read and write chunks, as many stages as it takes
//! for the intermediate chunks to reach `min_mem`.

use std::fmt;

use crate::chunks::DimChunks;
use crate::consolidate::{chunk_mem, consolidate_chunks, ChunkLimit};
use crate::error::RechunkError;
use crate::io_ops::{check_chunks, io_ops};
use crate::pyrepr;

/// The most stages [`multistage_rechunking_plan`] tries, plus one (the loop
/// runs `1..MAX_STAGES`): not a tight bound, a guarantee that it ends.
pub const MAX_STAGES: usize = 100;

/// One stage of a multi-stage plan: chunks are split from `read` into
/// `intermediate` pieces and consolidated into `write` chunks (Rechunker's
/// `(read_chunks, int_chunks, write_chunks)` tuple).
///
/// ```
/// use xbeam_rechunk::{rechunking_plan, Stage};
///
/// let stage = rechunking_plan(&[8, 8], &[1, 8], &[8, 1], 4, 64)?;
/// assert_eq!(stage, Stage { read: vec![2, 8], intermediate: vec![2, 2], write: vec![8, 2] });
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stage {
    /// The chunks this stage reads.
    pub read: Vec<u64>,
    /// The pieces it cuts them into: per axis the smaller of read and
    /// write, so each piece fits in both.
    pub intermediate: Vec<u64>,
    /// The chunks it writes.
    pub write: Vec<u64>,
}

/// A multi-stage plan, with the warning the search may end with.
///
/// ```
/// use xbeam_rechunk::multistage_rechunking_plan;
///
/// let plan = multistage_rechunking_plan(&[100, 100], &[100, 1], &[1, 100], 1, 10, 100)?;
/// assert_eq!(plan.stages.len(), 2);
/// assert!(plan.warning.is_none());
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Plan {
    /// The stages, in order: each stage's `write` is the next one's `read`.
    pub stages: Vec<Stage>,
    /// Set when the search stopped short of `min_mem` because more stages
    /// would have cost more IO (Rechunker's `ExcessiveIOWarning`).
    pub warning: Option<ExcessiveIo>,
}

/// The search for a plan stopped before its intermediate chunks reached
/// `min_mem`, because another stage would have cost more IO operations
/// than it saved (Rechunker's `ExcessiveIOWarning`). The plan is still
/// valid; its smallest intermediate chunks are below `min_mem`.
///
/// ```
/// use xbeam_rechunk::multistage_rechunking_plan;
///
/// let plan = multistage_rechunking_plan(&[100, 100], &[100, 1], &[1, 100], 1, 90, 100)?;
/// let warning = plan.warning.unwrap();
/// assert!(warning.to_string().starts_with("Search for multi-stage rechunking plan terminated"));
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExcessiveIo {
    /// Bytes of the smallest intermediate chunk of the plan with one more
    /// stage, the one that was rejected (as Rechunker reports it).
    pub int_mem: u128,
    /// The `min_mem` asked for.
    pub min_mem: u64,
    /// The `max_mem` asked for.
    pub max_mem: u64,
}

impl fmt::Display for ExcessiveIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Search for multi-stage rechunking plan terminated before achieving the minimum \
             memory requirement due to increasing IO requirements. Smallest intermediates have \
             size {}. Consider decreasing min_mem ({}) or increasing max_mem ({}) to find a more \
             efficient plan.",
            self.int_mem, self.min_mem, self.max_mem
        )
    }
}

/// The chunks after each of `stage_count - 1` intermediate stages between
/// `read` and `write` chunks: per axis, the interior points of a geometric
/// sequence from read to write, rounded down (Rechunker's
/// `calculate_stage_chunks`, `numpy.geomspace` computed the same way in
/// `f64`).
///
/// ```
/// use xbeam_rechunk::calculate_stage_chunks;
///
/// assert_eq!(calculate_stage_chunks(&[100, 1], &[1, 100], 2)?, vec![vec![10, 10]]);
/// assert_eq!(
///     calculate_stage_chunks(&[1_000_000, 1], &[1, 1_000_000], 3)?,
///     vec![vec![10_000, 100], vec![100, 10_000]],
/// );
/// assert!(calculate_stage_chunks(&[100, 1], &[1, 100], 1)?.is_empty());
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
pub fn calculate_stage_chunks(
    read: &[u64],
    write: &[u64],
    stage_count: usize,
) -> Result<Vec<Vec<u64>>, RechunkError> {
    check_chunks("read_chunks", read, read.len())?;
    check_chunks("write_chunks", write, read.len())?;
    let n = stage_count as f64;
    let logs: Vec<(f64, f64)> = read
        .iter()
        .zip(write)
        .map(|(&r, &w)| ((r as f64).log10(), (w as f64).log10()))
        .collect();
    // numpy.linspace multiplies by the step (delta / n) unless some step is
    // zero; then it divides first and multiplies by delta, for every axis.
    let any_step_zero = logs.iter().any(|(lr, lw)| (lw - lr) / n == 0.0);
    Ok((1..stage_count)
        .map(|k| {
            let k = k as f64;
            logs.iter()
                .map(|&(lr, lw)| {
                    let y = if any_step_zero {
                        k / n * (lw - lr) + lr
                    } else {
                        k * ((lw - lr) / n) + lr
                    };
                    // Never below 1, which only rounding could reach.
                    (10f64.powf(y).floor() as u64).max(1)
                })
                .collect()
        })
        .collect())
}

/// A plan that rechunks an array of `shape` from `source` to `target`
/// chunks in one or more split-and-consolidate stages, no chunk larger than
/// `max_mem` bytes and, where possible, no intermediate piece smaller than
/// `min_mem` bytes (Rechunker's `multistage_rechunking_plan`).
///
/// Write chunks are the target chunks consolidated up to `max_mem`; read
/// chunks are the source chunks consolidated along the axes where the write
/// chunks are larger, up to them. Then for 1, 2, ... stages the stage chunks
/// are spaced geometrically between read and write: the first plan whose
/// smallest intermediate piece reaches `min_mem` is returned; if the total
/// IO of a plan grows over the previous one's, the previous plan is
/// returned with an [`ExcessiveIo`] warning.
///
/// ```
/// use xbeam_rechunk::{multistage_rechunking_plan, Stage};
///
/// let plan = multistage_rechunking_plan(&[100, 100], &[100, 1], &[1, 100], 1, 10, 100)?;
/// assert_eq!(
///     plan.stages,
///     vec![
///         Stage { read: vec![100, 1], intermediate: vec![10, 1], write: vec![10, 10] },
///         Stage { read: vec![10, 10], intermediate: vec![1, 10], write: vec![1, 100] },
///     ],
/// );
///
/// let err = multistage_rechunking_plan(&[100, 100], &[100, 1], &[1, 100], 1, 101, 100);
/// assert_eq!(err.unwrap_err().to_string(), "max_mem (100) cannot be smaller than min_mem (101)");
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
pub fn multistage_rechunking_plan(
    shape: &[u64],
    source: &[u64],
    target: &[u64],
    itemsize: u64,
    min_mem: u64,
    max_mem: u64,
) -> Result<Plan, RechunkError> {
    plan_with_max_stages(
        shape, source, target, itemsize, min_mem, max_mem, MAX_STAGES,
    )
}

/// [`multistage_rechunking_plan`] with the stage bound as a parameter, so
/// tests can exhaust it.
pub(crate) fn plan_with_max_stages(
    shape: &[u64],
    source: &[u64],
    target: &[u64],
    itemsize: u64,
    min_mem: u64,
    max_mem: u64,
    max_stages: usize,
) -> Result<Plan, RechunkError> {
    check_chunks("source_chunks", source, shape.len())?;
    check_chunks("target_chunks", target, shape.len())?;
    let budget = u128::from(max_mem);
    let mem = chunk_mem(source, itemsize);
    if mem > budget {
        return Err(RechunkError::SourceMem { mem, max_mem });
    }
    let mem = chunk_mem(target, itemsize);
    if mem > budget {
        return Err(RechunkError::TargetMem { mem, max_mem });
    }
    if max_mem < min_mem {
        return Err(RechunkError::MinMem { min_mem, max_mem });
    }

    let write = consolidate_chunks(shape, target, itemsize, max_mem, None)?;
    let read_limits: Vec<ChunkLimit> = source
        .iter()
        .zip(&write)
        .map(|(&s, &w)| {
            if w > s {
                ChunkLimit::At(w)
            } else {
                ChunkLimit::Keep
            }
        })
        .collect();
    let read = consolidate_chunks(shape, source, itemsize, max_mem, Some(&read_limits))?;

    let mut previous: Option<(u128, Vec<Stage>)> = None;
    for stage_count in 1..max_stages {
        let stages = stages_between(&read, &write, stage_count)?;
        let int_mem = stages
            .iter()
            .map(|s| chunk_mem(&s.intermediate, itemsize))
            .min()
            .unwrap_or(0);
        if int_mem >= u128::from(min_mem) {
            return Ok(Plan {
                stages,
                warning: None,
            });
        }
        let mut io = 0u128;
        for s in &stages {
            io = io.saturating_add(u128::from(io_ops(shape, &s.read, &s.write)?));
        }
        if let Some((previous_io, previous_stages)) = previous.take() {
            if io > previous_io {
                return Ok(Plan {
                    stages: previous_stages,
                    warning: Some(ExcessiveIo {
                        int_mem,
                        min_mem,
                        max_mem,
                    }),
                });
            }
        }
        previous = Some((io, stages));
    }
    Err(RechunkError::NoFeasiblePlan {
        shape: pyrepr::tuple(shape),
        source_chunks: pyrepr::tuple(source),
        target_chunks: pyrepr::tuple(target),
        itemsize,
        min_mem,
        max_mem,
    })
}

/// The stages of a plan with `stage_count` stages from `read` to `write`.
fn stages_between(
    read: &[u64],
    write: &[u64],
    stage_count: usize,
) -> Result<Vec<Stage>, RechunkError> {
    let middle = calculate_stage_chunks(read, write, stage_count)?;
    let pre = std::iter::once(read.to_vec()).chain(middle.iter().cloned());
    let post = middle
        .iter()
        .cloned()
        .chain(std::iter::once(write.to_vec()));
    Ok(pre
        .zip(post)
        .map(|(read, write)| Stage {
            intermediate: read.iter().zip(&write).map(|(&r, &w)| r.min(w)).collect(),
            read,
            write,
        })
        .collect())
}

/// The single-stage plan: [`multistage_rechunking_plan`] with `min_mem`
/// equal to `itemsize`, which one stage always reaches (Rechunker's
/// `rechunking_plan`).
///
/// ```
/// use xbeam_rechunk::rechunking_plan;
///
/// let stage = rechunking_plan(&[16], &[3], &[7], 4, 32)?;
/// assert_eq!((stage.read, stage.intermediate, stage.write), (vec![7], vec![7], vec![7]));
/// # Ok::<(), xbeam_rechunk::RechunkError>(())
/// ```
pub fn rechunking_plan(
    shape: &[u64],
    source: &[u64],
    target: &[u64],
    itemsize: u64,
    max_mem: u64,
) -> Result<Stage, RechunkError> {
    let plan = multistage_rechunking_plan(shape, source, target, itemsize, itemsize, max_mem)?;
    // Every piece holds at least one element, so one stage reaches
    // min_mem = itemsize.
    Ok(plan
        .stages
        .into_iter()
        .next()
        .expect("a plan has at least one stage"))
}

/// Chunkings of several dimensions as a Python tuple: `(1, (365, 366))`.
pub(crate) fn chunkings_repr(chunks: &[DimChunks]) -> String {
    let items: Vec<String> = chunks.iter().map(DimChunks::py_repr).collect();
    pyrepr::tuple(&items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(read: &[u64], intermediate: &[u64], write: &[u64]) -> Stage {
        Stage {
            read: read.to_vec(),
            intermediate: intermediate.to_vec(),
            write: write.to_vec(),
        }
    }

    #[test]
    fn reference_stage_chunks() {
        type Case<'a> = (&'a [u64], &'a [u64], usize, Vec<Vec<u64>>);
        let cases: Vec<Case<'_>> = vec![
            (&[100, 1], &[1, 100], 1, vec![]),
            (&[100, 1], &[1, 100], 2, vec![vec![10, 10]]),
            (&[100, 1], &[1, 100], 3, vec![vec![21, 4], vec![4, 21]]),
            (&[1_000_000, 1], &[1, 1_000_000], 2, vec![vec![1000, 1000]]),
            (
                &[1_000_000, 1],
                &[1, 1_000_000],
                3,
                vec![vec![10000, 100], vec![100, 10000]],
            ),
            (
                &[1_000_000, 1],
                &[1, 1_000_000],
                4,
                vec![vec![31622, 31], vec![1000, 1000], vec![31, 31622]],
            ),
            (&[10, 10], &[1, 100], 2, vec![vec![3, 31]]),
        ];
        for (read, write, n, expected) in cases {
            assert_eq!(
                calculate_stage_chunks(read, write, n).unwrap(),
                expected,
                "{read:?} -> {write:?} in {n}"
            );
        }
    }

    #[test]
    fn reference_single_stage_plans_1d() {
        // (shape, itemsize, source, target, max_mem, read = int = write)
        for (shape, itemsize, source, target, max_mem, expected) in [
            (8, 4, 1, 1, 4, 1),
            (8, 4, 1, 1, 8, 2),
            (8, 4, 1, 2, 8, 2),
            (8, 4, 1, 2, 16, 4),
            (8, 4, 1, 2, 17, 4),
            (16, 4, 3, 7, 32, 7),
        ] {
            let s = rechunking_plan(&[shape], &[source], &[target], itemsize, max_mem).unwrap();
            assert_eq!(s, stage(&[expected], &[expected], &[expected]));
        }
    }

    #[test]
    fn reference_single_stage_plans_2d() {
        for (max_mem, expected) in [
            (32, stage(&[1, 8], &[1, 1], &[8, 1])),
            (64, stage(&[2, 8], &[2, 2], &[8, 2])),
            (256, stage(&[8, 8], &[8, 8], &[8, 8])),
            (512, stage(&[8, 8], &[8, 8], &[8, 8])),
        ] {
            assert_eq!(
                rechunking_plan(&[8, 8], &[1, 8], &[8, 1], 4, max_mem).unwrap(),
                expected,
                "max_mem {max_mem}"
            );
        }
    }

    #[test]
    fn reference_multistage_plans() {
        let plan =
            multistage_rechunking_plan(&[100, 100], &[100, 1], &[1, 100], 1, 1, 100).unwrap();
        assert_eq!(plan.stages, vec![stage(&[100, 1], &[1, 1], &[1, 100])]);
        assert_eq!(plan.warning, None);

        let plan =
            multistage_rechunking_plan(&[100, 100], &[100, 1], &[1, 100], 1, 10, 100).unwrap();
        assert_eq!(
            plan.stages,
            vec![
                stage(&[100, 1], &[10, 1], &[10, 10]),
                stage(&[10, 10], &[1, 10], &[1, 100]),
            ]
        );
        assert_eq!(plan.warning, None);
    }

    #[test]
    fn excessive_io_returns_the_previous_plan_with_a_warning() {
        let plan =
            multistage_rechunking_plan(&[100, 100], &[100, 1], &[1, 100], 1, 90, 100).unwrap();
        let warning = plan.warning.expect("an ExcessiveIO warning");
        assert!(warning
            .to_string()
            .starts_with("Search for multi-stage rechunking plan terminated"));
        assert_eq!((warning.min_mem, warning.max_mem), (90, 100));
        assert!(warning.int_mem < 90);
        // The returned plan is valid but its intermediates miss min_mem.
        let smallest = plan
            .stages
            .iter()
            .map(|s| chunk_mem(&s.intermediate, 1))
            .min()
            .unwrap();
        assert!(smallest < 90);
    }

    #[test]
    fn no_feasible_plan_when_the_stage_bound_is_exhausted() {
        let err =
            plan_with_max_stages(&[100, 100], &[100, 1], &[1, 100], 1, 10, 100, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Failed to find a feasible multi-staging rechunking scheme satisfying min_mem (10) \
             and max_mem (100) constraints. Please file a bug report on GitHub: \
             https://github.com/xbeam-rs/xbeam/issues\n\nInclude the following debugging info:\n\
             shape=(100, 100), source_chunks=(100, 1), target_chunks=(1, 100), itemsize=1, \
             min_mem=10, max_mem=100, consolidate_reads=True, consolidate_writes=True"
        );
    }

    #[test]
    fn reference_errors() {
        let plan = |source: &[u64], target: &[u64], min_mem, max_mem| {
            multistage_rechunking_plan(&[100, 100], source, target, 1, min_mem, max_mem)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            plan(&[100, 1], &[1, 100], 101, 100),
            "max_mem (100) cannot be smaller than min_mem (101)"
        );
        assert_eq!(
            plan(&[100, 2], &[1, 100], 1, 100),
            "Source chunk memory (200) exceeds max_mem (100)"
        );
        assert_eq!(
            plan(&[100, 1], &[2, 100], 1, 100),
            "Target chunk memory (200) exceeds max_mem (100)"
        );
        assert_eq!(
            plan(&[100], &[1, 100], 1, 100),
            "source_chunks (100,) must have length 2"
        );
        assert_eq!(
            plan(&[100, 1], &[1, 100, 1], 1, 100),
            "target_chunks (1, 100, 1) must have length 2"
        );
    }

    #[test]
    fn xarray_beam_rechunking_plans() {
        // rechunk.rechunking_plan({x:10,y:20}, {x:1,y:20}, {x:10,y:1}, 1, max_mem=200)
        let plan = multistage_rechunking_plan(&[10, 20], &[1, 20], &[10, 1], 1, 0, 200).unwrap();
        assert_eq!(plan.stages, vec![stage(&[10, 20], &[10, 20], &[10, 20])]);

        // {t:1000,x:200,y:300}, t1 -> (t1000, x20, y20), itemsize 8, max 1e7
        let shape = [1000, 200, 300];
        let (source, target) = ([1, 200, 300], [1000, 20, 20]);
        let plan = multistage_rechunking_plan(&shape, &source, &target, 8, 0, 10_000_000).unwrap();
        assert_eq!(plan.stages.len(), 1);
        let Stage { read, write, .. } = &plan.stages[0];
        assert!(read[0] > 1);
        assert_eq!((read[1], read[2]), (200, 300));
        assert_eq!(write[0], 1000);
        let plan =
            multistage_rechunking_plan(&shape, &source, &target, 8, 1_000_000, 10_000_000).unwrap();
        assert!(plan.stages.len() > 1);
    }

    #[test]
    fn replanning_from_the_intermediate_chunks_is_one_chunking() {
        // rechunker issue 115: intermediate chunks must fit the target's
        // memory when re-planned.
        let shape = [175_320, 721, 1440];
        let first = rechunking_plan(
            &shape,
            &[24, 721, 1440],
            &[21915, 103, 10],
            4,
            12_000_000_000,
        )
        .unwrap();
        let second = rechunking_plan(
            &shape,
            &first.intermediate,
            &[21915, 103, 10],
            4,
            12_000_000_000,
        )
        .unwrap();
        assert_eq!(second.read, second.intermediate);
        assert_eq!(second.intermediate, second.write);
    }
}
