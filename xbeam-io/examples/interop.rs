//! The Rust side of `cargo xtask interop`.
//!
//! ```text
//! interop dump STORE OUT.json        decoded values of every variable, as JSON
//! interop copy SRC DST [--format 2|3] [--chunks d=n,...] [--shards d=n,...]
//!                                    re-write SRC chunk by chunk with xbeam
//! ```
//!
//! `xtask/interop/compare.py` checks the dumps against xarray and opens the
//! copies with xarray.

use std::error::Error;
use std::ops::Range;

use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use xbeam_chunk::{Array, Attrs, DType, Variable};
use xbeam_io::{open_zarr, setup_zarr, SetupOptions, ZarrFormat};
use xbeam_key::Key;

fn attrs_json(a: &Attrs) -> Value {
    Value::Object(
        a.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Map<_, _>>(),
    )
}

fn values(a: &Array) -> Value {
    let n = a.len();
    let items: Vec<Value> = match a.dtype() {
        DType::String => a
            .as_view::<String>()
            .unwrap()
            .iter()
            .map(|x| json!(x))
            .collect(),
        DType::DateTime(..) | DType::TimeDelta(_) => (0..n)
            .map(|i| a.format_value(i).map_or(Value::Null, Value::String))
            .collect(),
        DType::I64 => a
            .as_view::<i64>()
            .unwrap()
            .iter()
            .map(|&x| json!(x))
            .collect(),
        DType::U64 => a
            .as_view::<u64>()
            .unwrap()
            .iter()
            .map(|&x| json!(x))
            .collect(),
        DType::Bool => a
            .as_view::<bool>()
            .unwrap()
            .iter()
            .map(|&x| json!(x))
            .collect(),
        _ => a
            .to_f64()
            .unwrap()
            .iter()
            .map(|&x| if x.is_nan() { Value::Null } else { json!(x) })
            .collect(),
    };
    Value::Array(items)
}

fn var_json(v: &Variable, coord: bool) -> Value {
    json!({
        "dims": v.dims(),
        "dtype": xbeam_io::numpy_dtype(v.dtype()),
        "shape": v.shape(),
        "attrs": attrs_json(v.attrs()),
        "coord": coord,
        "values": values(v.data()),
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dump") => {
            let source = open_zarr(&args[1])?;
            let ds = source.read(&IndexMap::new(), None)?;
            let mut vars = Map::new();
            for (n, v) in ds.coords() {
                vars.insert(n.clone(), var_json(v, true));
            }
            for (n, v) in ds.data_vars() {
                vars.insert(n.clone(), var_json(v, false));
            }
            let out = json!({
                "format": source.format().number(),
                "attrs": attrs_json(ds.attrs()),
                "chunks": source.chunks(),
                "vars": vars,
            });
            std::fs::write(&args[2], serde_json::to_string_pretty(&out)?)?;
        }
        Some("copy") => {
            let source = open_zarr(&args[1])?;
            let mut options = SetupOptions::default().format(source.format());
            let mut i = 3;
            while i < args.len() {
                match args[i].as_str() {
                    "--format" => options.format = ZarrFormat::from_number(args[i + 1].parse()?)?,
                    "--chunks" => options = options.chunks_str(&args[i + 1])?,
                    "--shards" => options = options.shards_str(&args[i + 1])?,
                    other => return Err(format!("unknown option {other}").into()),
                }
                i += 2;
            }
            if options.chunks.is_empty() {
                options = options.chunks(source.chunks().clone());
            }
            let sink = setup_zarr(source.template(), &args[2], &options)?;
            let grid = sink.zarr_shards().unwrap_or(sink.zarr_chunks()).clone();
            let sizes = source.template().sizes().clone();
            let dims: Vec<&String> = sizes.keys().collect();
            let mut starts: Vec<Vec<u64>> = Vec::new();
            for d in &dims {
                starts.push((0..sizes[*d]).step_by(grid[*d] as usize).collect());
            }
            let mut idx = vec![0usize; dims.len()];
            'outer: loop {
                if starts.iter().all(|s| !s.is_empty()) {
                    let mut region: IndexMap<String, Range<u64>> = IndexMap::new();
                    let mut key = Key::new();
                    for (k, d) in dims.iter().enumerate() {
                        let s = starts[k][idx[k]];
                        region.insert((*d).clone(), s..(s + grid[*d]).min(sizes[*d]));
                        key = key.with_offset((*d).clone(), s);
                    }
                    let chunk = source.read(&region, None)?;
                    sink.write_chunk(&key, &chunk)?;
                } else {
                    break;
                }
                for k in (0..dims.len()).rev() {
                    idx[k] += 1;
                    if idx[k] < starts[k].len() {
                        continue 'outer;
                    }
                    idx[k] = 0;
                }
                break;
            }
            let missing = xbeam_io::verify(&args[2])?.problems;
            if !missing.is_empty() {
                return Err(format!(
                    "{} chunks missing after copy: {}",
                    missing.len(),
                    missing[0]
                )
                .into());
            }
        }
        _ => return Err("usage: interop dump STORE OUT.json | copy SRC DST [options]".into()),
    }
    Ok(())
}
