//! Python-style text for keys and error messages.
//!
//! xarray-beam's messages print dicts and sets as Python does; these helpers
//! write the same text so messages read identically in both libraries.

use std::fmt::{Display, Write};

/// A string quoted as Python's `repr` quotes it: single quotes unless the
/// text holds a single quote and no double quote.
///
/// ```
/// assert_eq!(xbeam_key::repr::quote("x"), "'x'");
/// assert_eq!(xbeam_key::repr::quote("it's"), "\"it's\"");
/// assert_eq!(xbeam_key::repr::quote("a\u{1b}[0m\r"), "'a\\x1b[0m\\r'");
/// ```
pub fn quote(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            // as Python's repr: other control characters by their code
            c if c.is_control() && u32::from(c) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// A map written as a Python dict with string keys: `{'x': 0, 'y': 10}`.
///
/// ```
/// let m = [("x", 0), ("y", 10)];
/// assert_eq!(xbeam_key::repr::dict(m.iter().map(|(k, v)| (*k, v))), "{'x': 0, 'y': 10}");
/// ```
pub fn dict<'a, K, V, I>(entries: I) -> String
where
    K: AsRef<str> + 'a,
    V: Display,
    I: IntoIterator<Item = (K, V)>,
{
    let mut out = String::from("{");
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}: {v}", quote(k.as_ref()));
    }
    out.push('}');
    out
}

/// A set of names written as a Python set: `{'bar', 'foo'}`; the empty set is
/// `set()` as in Python.
///
/// ```
/// assert_eq!(xbeam_key::repr::set(["foo", "bar"]), "{'foo', 'bar'}");
/// assert_eq!(xbeam_key::repr::set(Vec::<String>::new()), "set()");
/// ```
pub fn set<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    let items: Vec<String> = names.into_iter().map(|n| quote(n.as_ref())).collect();
    if items.is_empty() {
        "set()".to_owned()
    } else {
        format!("{{{}}}", items.join(", "))
    }
}

/// A sequence of names written as a Python tuple: `('foo', 'bar')`, `('foo',)`.
///
/// ```
/// assert_eq!(xbeam_key::repr::tuple(["foo"]), "('foo',)");
/// assert_eq!(xbeam_key::repr::tuple(["a", "b"]), "('a', 'b')");
/// ```
pub fn tuple<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    let items: Vec<String> = names.into_iter().map(|n| quote(n.as_ref())).collect();
    match items.len() {
        1 => format!("({},)", items[0]),
        _ => format!("({})", items.join(", ")),
    }
}
