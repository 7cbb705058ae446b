//! What the CLI prints besides a job's own output: the one-line summary
//! and errors with their causes.

use std::borrow::Cow;
use std::error::Error as _;
use std::fmt::Write as _;

use xbeam::error::Error;
use xbeam::jobs::Summary;

/// `xbeam <job>: in … GB, out … GB, … chunks, … s, … GB/s, peak RSS … MB` on stderr
/// (stdout may carry JSON).
pub(crate) fn summary(job: &str, summary: &Summary, quiet: bool) {
    if !quiet {
        eprintln!("xbeam {job}: {summary}");
    }
}

/// After a job run with `--resume`: how many chunk files it found already
/// written with the bytes it would write, and kept.
pub(crate) fn resumed(dst: &std::path::Path, resume: bool, quiet: bool) {
    let kept = xbeam::io::skipped_on_resume(dst);
    if resume && !quiet {
        eprintln!("note: resumed: {kept} chunk file(s) already written with the same bytes were kept, the rest written");
    }
}

/// `error: <one sentence>` and a `caused by:` line per source (text from
/// a store escaped, see [`printable`]).
pub(crate) fn error(e: &Error) {
    eprintln!("error: {}", printable(&e.to_string()));
    let mut source = e.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {}", printable(&cause.to_string()));
        source = cause.source();
    }
}

/// `text` safe for a terminal: control characters other than newlines and
/// tabs (an escape sequence in a variable name, a carriage return in an
/// attribute; `char::is_control` is C0, DEL and C1) written as `\x1b` /
/// `\x9b`, so that names and attributes
/// from a store cannot move the cursor, recolour or rewrite what is shown.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            // control characters are all below U+0100
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("t2m (K)\n\tok"), "t2m (K)\n\tok");
        assert_eq!(printable("t\x1b[31m"), "t\\x1b[31m");
        assert_eq!(printable("a\rb\u{9b}c"), "a\\x0db\\x9bc");
        assert_eq!(printable("\u{2028}"), "\u{2028}");
    }
}
