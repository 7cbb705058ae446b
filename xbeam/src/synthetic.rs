//! The one synthetic ERA5-like dataset, behind `xbeam generate`, `xbeam
//! demo` and the benchmarks (like `shared/bench/make_dataset.py`).
//!
//! Dimensions `time` (hourly from 2020-01-01T00, or every `hours`
//! hours, stored as int64 `hours since 2020-01-01 00:00:00`), optional
//! `level`, `latitude` (90 to -90) and `longitude` (0 to 360); float32
//! `temperature` and `geopotential`: smooth seasonal, diurnal and wave fields plus seeded
//! Gaussian noise. The noise of time step `t` of variable `v` depends only
//! on `(seed, v, t)`, so values never depend on chunking, format or the
//! number of workers.
//!
//! ```
//! use xbeam::synthetic::Era5Like;
//!
//! let era5 = Era5Like { ntime: 48, nlat: 7, nlon: 12, ..Era5Like::default() };
//! let whole = era5.dataset()?;
//! let day2 = era5.block(24, 48)?;
//! assert!(day2.identical(&whole.isel([("time", 24..48)])?));
//! assert_eq!(era5.template()?.sizes()["time"], 48);
//!
//! // 6-hourly, as WeatherBench 2's climatologies take
//! use xbeam::chunk::TimeField;
//! let six = Era5Like { ntime: 5, hours: 6, nlat: 3, nlon: 4, ..Era5Like::default() };
//! let time = six.dataset()?.coord("time").unwrap().data().clone();
//! let hours = time.time_field(TimeField::Hour)?.to_f64()?;
//! assert_eq!(hours.as_slice().unwrap(), &[0.0, 6.0, 12.0, 18.0, 0.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::f64::consts::PI;

use serde_json::json;
use xbeam_chunk::calendar::{Calendar, TimeUnit};
use xbeam_chunk::{Array, Attrs, ChunkError, DType, Dataset, Template, VarSchema, Variable};

use crate::rng::SplitMix;

/// The pressure levels, as in ERA5 (hPa).
const PRESSURE_LEVELS: [i64; 17] = [
    1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 70, 50, 30, 20, 10,
];
const VARIABLES: [&str; 2] = ["temperature", "geopotential"];
/// Hours from 1970-01-01 to 2020-01-01.
const HOURS_1970_TO_2020: i64 = 438_288;

/// The shape and seed of an ERA5-like dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Era5Like {
    /// Time steps.
    pub ntime: u64,
    /// Hours from one time step to the next (1: hourly; WeatherBench 2's
    /// climatologies take 6-hourly data).
    pub hours: u64,
    /// Latitude points (121 = 1.5°).
    pub nlat: u64,
    /// Longitude points (240 = 1.5°).
    pub nlon: u64,
    /// Pressure levels; 0 = no level dimension.
    pub levels: u64,
    /// Noise seed.
    pub seed: u64,
}

impl Default for Era5Like {
    fn default() -> Self {
        Era5Like {
            ntime: 24,
            hours: 1,
            nlat: 121,
            nlon: 240,
            levels: 0,
            seed: 0,
        }
    }
}

fn attrs(pairs: &[(&str, serde_json::Value)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

impl Era5Like {
    /// Uncompressed bytes of one time step of both data variables, or
    /// `None` if that overflows.
    pub fn bytes_per_step(nlat: u64, nlon: u64, levels: u64) -> Option<u64> {
        [nlat, nlon, levels.max(1), 4]
            .into_iter()
            .try_fold(2u64, u64::checked_mul)
    }

    /// Uncompressed bytes of the data variables (saturating).
    pub fn nbytes(&self) -> u64 {
        Self::bytes_per_step(self.nlat, self.nlon, self.levels)
            .and_then(|b| b.checked_mul(self.ntime))
            .unwrap_or(u64::MAX)
    }

    fn coords(&self) -> (Vec<f64>, Vec<f64>, Vec<i64>) {
        let nlat = self.nlat.max(1);
        let lat: Vec<f64> = (0..nlat)
            .map(|i| {
                if nlat == 1 {
                    90.0
                } else {
                    90.0 - 180.0 * i as f64 / (nlat - 1) as f64
                }
            })
            .collect();
        let lon: Vec<f64> = (0..self.nlon)
            .map(|i| i as f64 * 360.0 / self.nlon as f64)
            .collect();
        let levels = self.levels as usize;
        let lev: Vec<i64> = if levels <= PRESSURE_LEVELS.len() {
            PRESSURE_LEVELS[..levels].to_vec()
        } else {
            (0..levels)
                .map(|i| (1000.0 - 999.0 * i as f64 / (levels - 1) as f64).round() as i64)
                .collect()
        };
        (lat, lon, lev)
    }

    fn dims(&self) -> Vec<&'static str> {
        if self.levels > 0 {
            vec!["time", "level", "latitude", "longitude"]
        } else {
            vec!["time", "latitude", "longitude"]
        }
    }

    /// The time coordinate of steps `t0..t1`, with its attributes and CF
    /// encoding.
    fn time(&self, t0: u64, t1: u64) -> Result<Variable, ChunkError> {
        let ticks: Vec<i64> = (t0 as i64..t1 as i64)
            .map(|t| t * self.hours as i64 + HOURS_1970_TO_2020)
            .collect();
        let data = Array::datetime(
            xbeam_chunk::ndarray::Array1::from(ticks).into_dyn(),
            TimeUnit::Hours,
            Calendar::ProlepticGregorian,
        );
        Ok(Variable::new(["time"], data)?
            .with_attr("long_name", json!("time"))
            .with_encoding(attrs(&[
                ("units", json!("hours since 2020-01-01 00:00:00")),
                ("calendar", json!("proleptic_gregorian")),
                ("dtype", json!("int64")),
            ])))
    }

    /// Every coordinate, for steps `t0..t1` of time.
    fn coord_dataset(&self, t0: u64, t1: u64) -> Result<Dataset, ChunkError> {
        let (lat, lon, lev) = self.coords();
        let mut ds = Dataset::new()
            .with_coord("time", self.time(t0, t1)?)?
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
        if self.levels > 0 {
            ds.insert_coord(
                "level",
                Variable::new(["level"], Array::from_1d(lev))?.with_attrs(attrs(&[
                    ("units", json!("millibars")),
                    ("long_name", json!("pressure_level")),
                ])),
            )?;
        }
        Ok(ds.with_attrs(attrs(&[
            (
                "title",
                json!("Synthetic ERA5-like benchmark dataset (xbeam generate)"),
            ),
            ("generator", json!("xbeam generate")),
            ("seed", json!(self.seed)),
        ])))
    }

    fn var_attrs(vi: usize) -> Attrs {
        if vi == 0 {
            attrs(&[
                ("units", json!("K")),
                ("long_name", json!("Temperature")),
                ("standard_name", json!("air_temperature")),
            ])
        } else {
            attrs(&[
                ("units", json!("m**2 s**-2")),
                ("long_name", json!("Geopotential")),
                ("standard_name", json!("geopotential")),
            ])
        }
    }

    /// The whole dataset's schema (coordinates loaded, no data).
    pub fn template(&self) -> Result<Template, ChunkError> {
        let ds = self.coord_dataset(0, self.ntime)?;
        let dims = self.dims();
        let data_vars = VARIABLES
            .iter()
            .enumerate()
            .map(|(vi, name)| {
                let schema = VarSchema {
                    dims: dims.iter().map(|s| (*s).to_owned()).collect(),
                    dtype: DType::F32,
                    attrs: Self::var_attrs(vi),
                    encoding: Attrs::new(),
                };
                ((*name).to_owned(), schema)
            })
            .collect();
        Template::new(
            ds.sizes(),
            data_vars,
            ds.coords().clone(),
            ds.attrs().clone(),
        )
    }

    /// The whole dataset in memory.
    pub fn dataset(&self) -> Result<Dataset, ChunkError> {
        self.block(0, self.ntime)
    }

    /// Time steps `t0..t1` of both variables, with every coordinate.
    pub fn block(&self, t0: u64, t1: u64) -> Result<Dataset, ChunkError> {
        let mut ds = self.coord_dataset(t0, t1)?;
        let mut shape = vec![(t1 - t0) as usize];
        if self.levels > 0 {
            shape.push(self.levels as usize);
        }
        shape.extend([self.nlat.max(1) as usize, self.nlon as usize]);
        for (vi, name) in VARIABLES.iter().enumerate() {
            let data = self.values(vi, t0, t1);
            ds.insert_data_var(
                *name,
                Variable::new(self.dims(), Array::from_vec(shape.clone(), data)?)?
                    .with_attrs(Self::var_attrs(vi)),
            )?;
        }
        Ok(ds)
    }

    /// The values of variable `vi` at steps `t0..t1`, in C order.
    fn values(&self, vi: usize, t0: u64, t1: u64) -> Vec<f32> {
        let (lat, lon, lev) = self.coords();
        let nlev = lev.len().max(1);
        let (ny, nx) = (lat.len(), lon.len());
        let per_step = nlev * ny * nx;
        let mut data = vec![0f32; (t1 - t0) as usize * per_step];
        let scale = if vi == 0 { 1.0 } else { 50.0 };
        for (i, t) in (t0..t1).enumerate() {
            let h = (t * self.hours) as f64;
            let doy = h / 24.0;
            let hod = h % 24.0;
            let seasonal = (2.0 * PI * (doy - 15.0) / 365.25).cos();
            let mut rng = SplitMix::for_step(self.seed, vi as u64, t);
            let step = &mut data[i * per_step..(i + 1) * per_step];
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
                        let field = if self.levels == 0 {
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
        data
    }
}
