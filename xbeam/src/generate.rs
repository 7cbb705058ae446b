//! `xbeam generate`: a synthetic ERA5-like dataset written to Zarr in
//! parallel, like `shared/bench/make_dataset.py`.
//!
//! Dimensions `time` (hourly from 2020-01-01T00, stored as int64
//! `hours since 2020-01-01 00:00:00`), optional `level`, `latitude` (90 to
//! -90) and `longitude` (0 to 360); float32 `temperature` and
//! `geopotential`: smooth seasonal, diurnal and wave fields plus seeded
//! Gaussian noise. The noise of time step `t` of variable `v` depends only
//! on `(seed, v, t)`, so values never depend on chunking or format.
//!
//! ```
//! use xbeam::generate::{generate, GenerateOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("era5.zarr");
//! let options = GenerateOptions { ntime: Some(48), nlat: 7, nlon: 12, ..GenerateOptions::default() };
//! let summary = generate(&out, &options, None)?;
//! assert_eq!(summary.ntime, 48);
//! assert!(xbeam::io::verify(&out)?.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::f64::consts::PI;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde_json::json;
use xbeam_chunk::calendar::{Calendar, TimeUnit};
use xbeam_chunk::{Array, Attrs, DType, Dataset, Template, VarSchema, Variable};
use xbeam_io::{setup_zarr, IoError, SetupOptions, ZarrFormat};
use xbeam_key::Key;

use crate::rng::SplitMix;

/// The pressure levels, as in ERA5 (hPa).
const PRESSURE_LEVELS: [i64; 17] = [
    1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 70, 50, 30, 20, 10,
];
const VARIABLES: [&str; 2] = ["temperature", "geopotential"];

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Target uncompressed size of the data variables, in 1e9 bytes.
    pub gb: f64,
    /// An explicit number of hourly steps (overrides `gb`).
    pub ntime: Option<u64>,
    /// Latitude points (121 = 1.5°).
    pub nlat: u64,
    /// Longitude points (240 = 1.5°).
    pub nlon: u64,
    /// Pressure levels; 0 = no level dimension.
    pub levels: u64,
    /// Zarr chunk size per dimension (default: 24 hours × the full grid).
    pub chunks: Vec<(String, i64)>,
    /// Zarr format.
    pub format: ZarrFormat,
    /// Noise seed.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            gb: 1.0,
            ntime: None,
            nlat: 121,
            nlon: 240,
            levels: 0,
            chunks: vec![("time".into(), 24)],
            format: ZarrFormat::V2,
            seed: 0,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSummary {
    /// Hourly time steps.
    pub ntime: u64,
    /// Uncompressed bytes of the data variables.
    pub nbytes: u64,
    /// Chunks written (all variables together).
    pub chunks_written: u64,
}

fn attrs(pairs: &[(&str, serde_json::Value)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn coords(options: &GenerateOptions) -> (Vec<f64>, Vec<f64>, Vec<i64>) {
    let nlat = options.nlat.max(1);
    let lat: Vec<f64> = (0..nlat)
        .map(|i| {
            if nlat == 1 {
                90.0
            } else {
                90.0 - 180.0 * i as f64 / (nlat - 1) as f64
            }
        })
        .collect();
    let lon: Vec<f64> = (0..options.nlon)
        .map(|i| i as f64 * 360.0 / options.nlon as f64)
        .collect();
    let levels = options.levels as usize;
    let lev: Vec<i64> = if levels <= PRESSURE_LEVELS.len() {
        PRESSURE_LEVELS[..levels].to_vec()
    } else {
        (0..levels)
            .map(|i| (1000.0 - 999.0 * i as f64 / (levels - 1) as f64).round() as i64)
            .collect()
    };
    (lat, lon, lev)
}

/// The number of time steps for `options`.
pub fn n_time(options: &GenerateOptions) -> u64 {
    options.ntime.unwrap_or_else(|| {
        let per_step = 2 * options.nlat * options.nlon * options.levels.max(1) * 4;
        ((options.gb * 1e9 / per_step as f64).round() as u64).max(1)
    })
}

fn dims(levels: bool) -> Vec<&'static str> {
    if levels {
        vec!["time", "level", "latitude", "longitude"]
    } else {
        vec!["time", "latitude", "longitude"]
    }
}

fn hours(t0: u64, t1: u64) -> Array {
    let ticks: Vec<i64> = (t0 as i64..t1 as i64).map(|h| h + 438_288).collect(); // hours 1970 → 2020
    Array::datetime(
        xbeam_chunk::ndarray::Array1::from(ticks).into_dyn(),
        TimeUnit::Hours,
        Calendar::ProlepticGregorian,
    )
}

/// The full dataset's template.
fn template(options: &GenerateOptions, ntime: u64) -> Result<Template, IoError> {
    let (lat, lon, lev) = coords(options);
    let var_attrs = [
        attrs(&[
            ("units", json!("K")),
            ("long_name", json!("Temperature")),
            ("standard_name", json!("air_temperature")),
        ]),
        attrs(&[
            ("units", json!("m**2 s**-2")),
            ("long_name", json!("Geopotential")),
            ("standard_name", json!("geopotential")),
        ]),
    ];
    let time_encoding = attrs(&[
        ("units", json!("hours since 2020-01-01 00:00:00")),
        ("calendar", json!("proleptic_gregorian")),
        ("dtype", json!("int64")),
    ]);
    let mut ds = Dataset::new()
        .with_coord(
            "time",
            Variable::new(["time"], hours(0, ntime))?
                .with_attr("long_name", json!("time"))
                .with_encoding(time_encoding),
        )?
        .with_coord(
            "latitude",
            Variable::new(["latitude"], Array::from_1d(lat))?.with_attrs(attrs(&[
                ("units", json!("degrees_north")),
                ("long_name", json!("latitude")),
            ])),
        )?
        .with_coord(
            "longitude",
            Variable::new(["longitude"], Array::from_1d(lon))?.with_attrs(attrs(&[
                ("units", json!("degrees_east")),
                ("long_name", json!("longitude")),
            ])),
        )?;
    if options.levels > 0 {
        ds.insert_coord(
            "level",
            Variable::new(["level"], Array::from_1d(lev))?.with_attrs(attrs(&[
                ("units", json!("millibars")),
                ("long_name", json!("pressure_level")),
            ])),
        )?;
    }
    let d = dims(options.levels > 0);
    let data_vars = VARIABLES
        .iter()
        .zip(var_attrs)
        .map(|(name, a)| {
            let schema = VarSchema {
                dims: d.iter().map(|s| (*s).to_owned()).collect(),
                dtype: DType::F32,
                attrs: a,
                encoding: Attrs::new(),
            };
            ((*name).to_owned(), schema)
        })
        .collect();
    let global = attrs(&[
        (
            "title",
            json!("Synthetic ERA5-like benchmark dataset (xbeam generate)"),
        ),
        ("generator", json!("xbeam generate")),
        ("seed", json!(options.seed)),
    ]);
    Ok(Template::new(
        ds.sizes(),
        data_vars,
        ds.coords().clone(),
        global,
    )?)
}

/// The block of time steps `t0..t1` of both variables.
fn block(options: &GenerateOptions, t0: u64, t1: u64) -> Result<Dataset, IoError> {
    let (lat, lon, lev) = coords(options);
    let nlev = lev.len().max(1);
    let (ny, nx) = (lat.len(), lon.len());
    let nt = (t1 - t0) as usize;
    let d = dims(options.levels > 0);
    let mut shape = vec![nt];
    if options.levels > 0 {
        shape.push(nlev);
    }
    shape.extend([ny, nx]);
    let mut ds = Dataset::new();
    for (vi, name) in VARIABLES.iter().enumerate() {
        let mut data = vec![0f32; nt * nlev * ny * nx];
        let scale = if vi == 0 { 1.0 } else { 50.0 };
        for (i, t) in (t0..t1).enumerate() {
            let h = t as f64;
            let doy = h / 24.0;
            let hod = h % 24.0;
            let seasonal = (2.0 * PI * (doy - 15.0) / 365.25).cos();
            let mut rng = SplitMix::for_step(options.seed, vi as u64, t);
            let step = &mut data[i * nlev * ny * nx..(i + 1) * nlev * ny * nx];
            let mut spare: Option<f32> = None;
            for (y, &la) in lat.iter().enumerate() {
                let latr = la.to_radians();
                let (cl, sl) = (latr.cos(), latr.sin());
                for (x, &lo) in lon.iter().enumerate() {
                    let lonr = lo.to_radians();
                    let diurnal = (2.0 * PI * hod / 24.0 + lonr).cos();
                    let wave = (3.0 * lonr + 2.0 * PI * doy / 7.0).sin() * cl * cl;
                    let base = if vi == 0 {
                        250.0 + 40.0 * cl - 15.0 * seasonal * sl + 4.0 * diurnal * cl + 3.0 * wave
                    } else {
                        55000.0 + 3000.0 * cl * cl - 800.0 * seasonal * sl
                            + 200.0 * diurnal * cl
                            + 400.0 * wave
                    };
                    for (l, &p) in lev
                        .iter()
                        .chain(std::iter::once(&1000))
                        .take(nlev)
                        .enumerate()
                    {
                        let p = p as f64 / 1000.0;
                        let field = if options.levels == 0 {
                            base
                        } else if vi == 0 {
                            base * (0.75 + 0.25 * p)
                        } else {
                            base * (1.0 + 4.0 * (1.0 - p))
                        };
                        let noise = if let Some(n) = spare.take() {
                            n
                        } else {
                            let (a, b) = rng.normals();
                            spare = Some(b);
                            a
                        };
                        step[(l * ny + y) * nx + x] = field as f32 + scale * noise;
                    }
                }
            }
        }
        ds.insert_data_var(
            *name,
            Variable::new(d.clone(), Array::from_vec(shape.clone(), data)?)?,
        )?;
    }
    ds.insert_coord("time", Variable::new(["time"], hours(t0, t1))?)?;
    Ok(ds)
}

/// Writes the dataset to `out` (replacing a store there), chunk by chunk
/// in parallel; `progress` is called with (chunks done, chunks in all).
pub fn generate(
    out: &Path,
    options: &GenerateOptions,
    progress: Option<&(dyn Fn(u64, u64) + Sync)>,
) -> Result<GenerateSummary, IoError> {
    let ntime = n_time(options);
    let template = template(options, ntime)?;
    let setup = SetupOptions {
        chunks: options.chunks.iter().cloned().collect(),
        format: options.format,
        ..SetupOptions::default()
    };
    let sink = setup_zarr(&template, out, &setup)?;
    let tc = sink.zarr_chunks()["time"];
    let starts: Vec<u64> = (0..ntime).step_by(tc as usize).collect();
    let done = AtomicU64::new(0);
    let total = starts.len() as u64;
    starts
        .par_iter()
        .try_for_each(|&t0| -> Result<(), IoError> {
            let t1 = (t0 + tc).min(ntime);
            let chunk = block(options, t0, t1)?;
            let chunk = chunk.with_coord(
                "time",
                Variable::new(
                    ["time"],
                    template.coords()["time"]
                        .data()
                        .slice_axis(0, t0 as usize..t1 as usize)?,
                )?,
            )?;
            sink.write_chunk(&Key::new().with_offset("time", t0), &chunk)?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = progress {
                p(n, total);
            }
            Ok(())
        })?;
    let per_step = 2 * options.nlat * options.nlon * options.levels.max(1) * 4;
    Ok(GenerateSummary {
        ntime,
        nbytes: ntime * per_step,
        chunks_written: total * 2,
    })
}
