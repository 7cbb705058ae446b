//! `Display` for datasets, variables and templates, close to xarray's repr.

use std::fmt::{self, Write};

use crate::{Array, Attrs, Dataset, Template, Variable};

const DISPLAY_WIDTH: usize = 80;

/// Bytes in xarray's short form: `80B`, `2kB`, `3MB` (decimal units).
///
/// ```
/// assert_eq!(xbeam_chunk::display::human_bytes(80), "80B");
/// assert_eq!(xbeam_chunk::display::human_bytes(2_800_000), "3MB");
/// ```
pub fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.0}{}B", UNITS[unit])
}

/// A float formatted as Python's `f"{x:.4}"` (xarray's float64 items).
///
/// ```
/// use xbeam_chunk::display::python_g4;
/// assert_eq!(python_g4(1.0), "1.0");
/// assert_eq!(python_g4(0.123456), "0.1235");
/// assert_eq!(python_g4(12345.678), "1.235e+04");
/// assert_eq!(python_g4(f64::NAN), "nan");
/// ```
pub fn python_g4(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{x:.3e}");
    let (mantissa, exp) = sci.split_once('e').expect("`e` formatting has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if (-4..4).contains(&exp) {
        let fixed = format!("{x:.*}", (3 - exp) as usize);
        let trimmed = fixed.trim_end_matches('0');
        if trimmed.ends_with('.') {
            format!("{trimmed}0")
        } else {
            trimmed.to_owned()
        }
    } else {
        let m = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// A float32 as NumPy prints it (shortest round-trip form): `1.0`, `0.1`,
/// `nan`. `debug` is Rust's `{:?}` of the value.
pub(crate) fn shortest_float(x: f64, debug: &str) -> String {
    if x.is_nan() {
        "nan".into()
    } else {
        debug.to_owned()
    }
}

/// The values of `array`, flattened, fitted into `max_width` characters
/// with ` ... ` in the middle when they do not fit (xarray's
/// `format_array_flat`).
pub fn format_array_flat(array: &Array, max_width: usize) -> String {
    let size = array.len();
    let relevant = size.max(1).min(max_width.div_ceil(2).max(2));
    let n_front = relevant.div_ceil(2).min(size);
    let n_back = (relevant / 2).min(size);
    let front: Vec<String> = (0..n_front).filter_map(|i| array.format_value(i)).collect();
    let back: Vec<String> = (size - n_back..size)
        .filter_map(|i| array.format_value(i))
        .collect();
    let mut interleaved = Vec::new();
    for i in 0..front.len().max(back.len()) {
        if let Some(f) = front.get(i) {
            interleaved.push(f);
        }
        if let Some(b) = back.iter().rev().nth(i) {
            interleaved.push(b);
        }
    }
    interleaved.truncate(relevant);
    let mut cum = Vec::with_capacity(interleaved.len());
    let mut total = 0usize;
    for s in &interleaved {
        total += s.chars().count() + 1;
        cum.push(total - 1);
    }
    let (count, padding) = if size > 2 && (relevant < size || cum.iter().any(|&c| c > max_width)) {
        let padding = " ... ";
        let max_len = cum
            .iter()
            .position(|&c| c + padding.len() - 1 > max_width)
            .unwrap_or(0)
            .max(2);
        (size.min(max_len), padding)
    } else {
        (size, if size <= 1 { "" } else { " " })
    };
    let num_front = count.div_ceil(2);
    let num_back = count - num_front;
    let mut out = front[..num_front.min(front.len())].join(" ");
    out.push_str(padding);
    out.push_str(&back[back.len() - num_back.min(back.len())..].join(" "));
    if out.chars().count() > max_width {
        out = out
            .chars()
            .take(max_width.saturating_sub(3))
            .collect::<String>()
            + "...";
    }
    out
}

/// The dtype as NumPy's repr names it: strings are `<U{longest}`.
fn repr_dtype(array: &Array) -> String {
    match array {
        Array::String(a) => format!(
            "<U{}",
            a.iter().map(|s| s.chars().count()).max().unwrap_or(0)
        ),
        other => other.dtype().name(),
    }
}

fn col_width<'a>(names: impl Iterator<Item = &'a String>) -> usize {
    names.map(|n| n.chars().count()).max().unwrap_or(0).max(7) + 6
}

fn pad(s: &str, width: usize) -> String {
    format!("{s:<width$}")
}

/// One variable's summary line: name, dims, dtype, size and values (or
/// `...` when `values` is `None`).
fn summarize(
    name: &str,
    dims: &[String],
    dtype: &str,
    nbytes: usize,
    values: Option<&Array>,
    width: usize,
    is_index: bool,
) -> String {
    let marker = if is_index { '*' } else { ' ' };
    let first = pad(&format!("  {marker} {name} "), width);
    let dims = if dims.is_empty() {
        String::new()
    } else {
        format!("({}) ", dims.join(", "))
    };
    let front = format!("{first}{dims}{dtype} {} ", human_bytes(nbytes));
    let values = match values {
        Some(a) => format_array_flat(a, DISPLAY_WIDTH.saturating_sub(front.chars().count())),
        None => "...".into(),
    };
    format!("{front}{values}")
}

fn attrs_section(f: &mut fmt::Formatter<'_>, attrs: &Attrs) -> fmt::Result {
    if attrs.is_empty() {
        return Ok(());
    }
    write!(f, "\nAttributes:")?;
    let width = col_width(attrs.keys());
    for (k, v) in attrs {
        let value = match v {
            serde_json::Value::String(s) => s.replace('\t', "\\t").replace('\n', "\\n"),
            other => other.to_string(),
        };
        let mut line = format!("{} {value}", pad(&format!("    {k}:"), width));
        if line.chars().count() > DISPLAY_WIDTH {
            line = line.chars().take(DISPLAY_WIDTH - 3).collect::<String>() + "...";
        }
        write!(f, "\n{line}")?;
    }
    Ok(())
}

/// A data variable's line: name, dims, dtype, bytes, values (if any).
type VarLine<'a> = (String, Vec<String>, String, usize, Option<&'a Array>);

/// What the dataset and template reprs share.
struct Summary<'a> {
    kind: &'a str,
    nbytes: usize,
    sizes: indexmap::IndexMap<String, u64>,
    coords: Vec<(&'a String, &'a Variable)>,
    data_vars: Vec<VarLine<'a>>,
    attrs: &'a Attrs,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = col_width(
            self.coords
                .iter()
                .map(|(n, _)| *n)
                .chain(self.data_vars.iter().map(|v| &v.0)),
        );
        write!(
            f,
            "<xbeam.{}> Size: {}",
            self.kind,
            human_bytes(self.nbytes)
        )?;
        let dims: Vec<String> = self
            .sizes
            .iter()
            .map(|(d, n)| format!("{d}: {n}"))
            .collect();
        write!(f, "\n{}({})", pad("Dimensions:", width), dims.join(", "))?;
        if !self.coords.is_empty() {
            write!(f, "\nCoordinates:")?;
            for (name, v) in &self.coords {
                let is_index = v.is_index(name);
                let line = summarize(
                    name,
                    v.dims(),
                    &repr_dtype(v.data()),
                    v.nbytes(),
                    Some(v.data()),
                    width,
                    is_index,
                );
                write!(f, "\n{line}")?;
            }
        }
        let unindexed: Vec<&String> = self
            .sizes
            .keys()
            .filter(|d| !self.coords.iter().any(|(n, v)| *n == *d && v.is_index(n)))
            .collect();
        if !unindexed.is_empty() {
            let names: Vec<&str> = unindexed.iter().map(|s| s.as_str()).collect();
            write!(f, "\nDimensions without coordinates: {}", names.join(", "))?;
        }
        write!(f, "\nData variables:")?;
        if self.data_vars.is_empty() {
            write!(f, "\n    *empty*")?;
        }
        for (name, dims, dtype, nbytes, values) in &self.data_vars {
            write!(
                f,
                "\n{}",
                summarize(name, dims, dtype, *nbytes, *values, width, false)
            )?;
        }
        attrs_section(f, self.attrs)
    }
}

impl fmt::Display for Dataset {
    /// ```
    /// use xbeam_chunk::{Array, Dataset, Variable};
    /// let ds = Dataset::new().with_data_var("foo", Variable::new(["x"], Array::from_1d((0..10i64).collect()))?)?;
    /// assert_eq!(ds.to_string(), "\
    /// <xbeam.Dataset> Size: 80B
    /// Dimensions:  (x: 10)
    /// Dimensions without coordinates: x
    /// Data variables:
    ///     foo      (x) int64 80B 0 1 2 3 4 5 6 7 8 9");
    /// # Ok::<(), xbeam_chunk::ChunkError>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Summary {
            kind: "Dataset",
            nbytes: self.nbytes(),
            sizes: self.sizes(),
            coords: self.coords().iter().collect(),
            data_vars: self
                .data_vars()
                .iter()
                .map(|(n, v)| {
                    (
                        n.clone(),
                        v.dims().to_vec(),
                        repr_dtype(v.data()),
                        v.nbytes(),
                        Some(v.data()),
                    )
                })
                .collect(),
            attrs: self.attrs(),
        }
        .fmt(f)
    }
}

impl fmt::Display for Template {
    /// Like a dataset's repr, with `...` for the values of data variables
    /// (a template has none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Summary {
            kind: "Template",
            nbytes: self.nbytes(),
            sizes: self.sizes().clone(),
            coords: self.coords().iter().collect(),
            data_vars: self
                .data_vars()
                .iter()
                .map(|(n, v)| {
                    (
                        n.clone(),
                        v.dims.clone(),
                        v.dtype.name(),
                        self.var_nbytes(v),
                        None,
                    )
                })
                .collect(),
            attrs: self.attrs(),
        }
        .fmt(f)
    }
}

impl fmt::Display for Variable {
    /// ```
    /// use xbeam_chunk::{Array, Variable};
    /// let v = Variable::new(["x"], Array::from_1d(vec![0.5f64, 1.0]))?.with_attr("units", "m");
    /// assert_eq!(v.to_string(), "<xbeam.Variable (x: 2)> Size: 16B\n0.5 1.0\nAttributes:\n    units:    m");
    /// # Ok::<(), xbeam_chunk::ChunkError>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.sizes().map(|(d, n)| format!("{d}: {n}")).collect();
        write!(
            f,
            "<xbeam.Variable ({})> Size: {}",
            dims.join(", "),
            human_bytes(self.nbytes())
        )?;
        write!(f, "\n{}", format_array_flat(self.data(), DISPLAY_WIDTH))?;
        attrs_section(f, self.attrs())
    }
}

/// `text` with every line indented by `prefix` (for nesting reprs in
/// error messages).
pub(crate) fn indent(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "{prefix}{line}");
    }
    out
}
