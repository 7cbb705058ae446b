//! What a store that `ingest` wrote holds: [`RECORD`](super::RECORD), the
//! files ingested (resolved path, size, modification time, length along
//! the concat dimension), and an append in progress.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::{json, Value};

use crate::error::Error;

/// One ingested file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recorded {
    /// The resolved path.
    pub(super) path: String,
    pub(super) bytes: u64,
    /// Nanoseconds since 1970 of the last modification, where known.
    pub(super) modified: Option<u64>,
    /// Steps along the concat dimension.
    pub(super) length: u64,
}

impl Recorded {
    /// The file at `path` as it is now (length 0 until known).
    pub(super) fn of(path: &Path) -> Result<Recorded, Error> {
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::Input {
            path: path.to_path_buf(),
            source: xbeam_io::IoError::Invalid(format!("cannot resolve the path: {e}")),
        })?;
        let meta = std::fs::metadata(&canonical).ok();
        let modified = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_nanos()).ok());
        Ok(Recorded {
            path: canonical.display().to_string(),
            bytes: meta.map_or(0, |m| m.len()),
            modified,
            length: 0,
        })
    }

    /// Whether `now` is this file unchanged.
    pub(super) fn unchanged(&self, now: &Recorded) -> bool {
        self.path == now.path
            && self.bytes == now.bytes
            && (self.modified.is_none() || self.modified == now.modified)
    }

    fn json(&self) -> Value {
        json!({"path": self.path, "bytes": self.bytes, "modified_ns": self.modified, "length": self.length})
    }

    fn parse(v: &Value) -> Option<Recorded> {
        Some(Recorded {
            path: v["path"].as_str()?.to_owned(),
            bytes: v["bytes"].as_u64()?,
            modified: v["modified_ns"].as_u64(),
            length: v["length"].as_u64()?,
        })
    }
}

/// The record of a store.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub(super) concat_dim: String,
    pub(super) files: Vec<Recorded>,
    /// An append that started and has not finished: the store's length
    /// along the concat dimension before it, and the files it adds.
    pub(super) pending: Option<(u64, Vec<Recorded>)>,
}

impl Record {
    /// The record of the store at `dst`; a usage error when there is none
    /// (only stores `ingest` wrote can be appended to).
    pub(super) fn read(dst: &Path) -> Result<Record, Error> {
        let path = dst.join(super::RECORD);
        let bad = |what: String| {
            Error::Usage(format!(
                "--append needs a store that xbeam ingest wrote: {} {what}",
                path.display()
            ))
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot be read ({e})")))?;
        let doc: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("is not JSON ({e})")))?;
        let concat_dim = doc["concat_dim"]
            .as_str()
            .ok_or_else(|| bad("has no concat_dim".into()))?
            .to_owned();
        let list = |v: &Value| -> Option<Vec<Recorded>> {
            v.as_array()?.iter().map(Recorded::parse).collect()
        };
        let files = list(&doc["files"]).ok_or_else(|| bad("has a malformed file list".into()))?;
        let pending = match &doc["pending"] {
            Value::Null => None,
            p => Some(
                p["from"]
                    .as_u64()
                    .zip(list(&p["files"]))
                    .ok_or_else(|| bad("has a malformed pending append".into()))?,
            ),
        };
        Ok(Record {
            concat_dim,
            files,
            pending,
        })
    }

    /// Writes the record into `dst`, atomically (a new file renamed over
    /// the old one).
    pub(super) fn write(&self, dst: &Path) -> Result<(), Error> {
        let mut doc = json!({
            "written_by": "xbeam ingest",
            "concat_dim": self.concat_dim,
            "files": self.files.iter().map(Recorded::json).collect::<Vec<_>>(),
        });
        if let Some((from, files)) = &self.pending {
            doc["pending"] = json!({
                "from": from,
                "files": files.iter().map(Recorded::json).collect::<Vec<_>>(),
            });
        }
        let path = dst.join(super::RECORD);
        let tmp = dst.join(format!("{}.{}.tmp", super::RECORD, std::process::id()));
        let output = |e: std::io::Error| Error::Output {
            path: path.clone(),
            source: xbeam_io::IoError::Invalid(format!("cannot write the ingest record: {e}")),
        };
        let text = serde_json::to_vec_pretty(&doc).map_err(|e| output(std::io::Error::other(e)))?;
        std::fs::write(&tmp, text).map_err(output)?;
        std::fs::rename(&tmp, &path).map_err(output)
    }

    /// The files of `files` the record does not hold; a file it holds that
    /// has changed since (size or modification time) is an error, as the
    /// store cannot take its new contents by appending.
    pub(super) fn new_files(&self, files: Vec<PathBuf>) -> Result<Vec<PathBuf>, Error> {
        let mut new = Vec::new();
        for f in files {
            let now = Recorded::of(&f)?;
            match self.files.iter().find(|r| r.path == now.path) {
                Some(r) if r.unchanged(&now) => {}
                Some(_) => {
                    return Err(Error::Usage(format!(
                        "{} was ingested into the store before and has changed since (its size or modification time differs): appending cannot replace what the store holds of it; ingest all the files again",
                        f.display()
                    )))
                }
                None => new.push(f),
            }
        }
        Ok(new)
    }
}

/// The files of a source as the record lists them.
pub(super) fn recorded(paths: &[PathBuf], lengths: &[u64]) -> Result<Vec<Recorded>, Error> {
    paths
        .iter()
        .zip(lengths)
        .map(|(p, &length)| {
            Ok(Recorded {
                length,
                ..Recorded::of(p)?
            })
        })
        .collect()
}
