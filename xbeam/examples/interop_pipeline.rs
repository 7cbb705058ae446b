//! The pipeline side of `cargo xtask interop`: a store written by xarray,
//! read as chunks, converted from kelvin to degrees Celsius and written
//! back, all on the engine.
//!
//! ```text
//! interop_pipeline SRC DST
//! ```
//!
//! `DatasetToChunks` (the store's own chunks) → a map that subtracts
//! 273.15 from the float32 variable `t32` in float32 arithmetic (as NumPy
//! does for `float32_array - 273.15`), keeping its attributes but setting
//! `units` to `degC` → `ChunksToZarr` (same chunks and Zarr format as the
//! source). `xtask/interop/check_pipeline.py` has xarray do the same and
//! checks that the two are identical.

use std::error::Error;
use std::sync::Arc;

use serde_json::json;
use xbeam::prelude::*;

/// The variable converted, and its new units.
const VAR: &str = "t32";
const UNITS: &str = "degC";

/// `t32 - 273.15` in float32, attributes kept, units set.
fn to_celsius((key, ds): (Key, Dataset)) -> Result<(Key, Dataset), ChunkError> {
    let mut ds = ds;
    let var = ds.data_var(VAR)?;
    let kelvin = var.data().as_view::<f32>()?;
    let celsius = kelvin.mapv(|k| k - 273.15_f32);
    let mut converted = var.with_data(Array::from(celsius))?;
    converted.attrs_mut().insert("units".into(), json!(UNITS));
    ds.insert_data_var(VAR, converted)?;
    Ok((key, ds))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst] = args.as_slice() else {
        return Err("usage: interop_pipeline SRC DST".into());
    };
    let source = open_zarr(src)?;
    let format = source.format();
    let chunks = source.chunks().clone();
    let t = source.template();
    let mut data_vars = t.data_vars().clone();
    data_vars
        .get_mut(VAR)
        .ok_or_else(|| format!("{src} has no variable {VAR}"))?
        .attrs
        .insert("units".into(), json!(UNITS));
    let template = Template::new(
        t.sizes().clone(),
        data_vars,
        t.coords().clone(),
        t.attrs().clone(),
    )?;

    let p = Pipeline::new();
    p.apply("read", DatasetToChunks::native(Arc::new(source)))?
        .map("to celsius", to_celsius)
        .apply(
            "write",
            ChunksToZarr::new(dst, template)
                .options(SetupOptions::default().chunks(chunks).format(format)),
        )?;
    p.run(&Runner::local_with_workers(2).quiet())?;
    Ok(())
}
