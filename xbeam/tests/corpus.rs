//! The malformed-input corpus: more than a hundred broken, hostile or edge
//! stores and flags, each built from a good store by one edit, run through
//! the `xbeam` binary under a 1 GB address-space limit and a deadline.
//! Every case asserts its exit code and a fragment of its message: no
//! panic, no abort, no hang, no runaway memory and no wrong answer with
//! exit 0. Categories follow the hardening issue: metadata (v2 and v3,
//! consolidated and per array), CF attributes, chunks, special files, flags
//! and paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The address-space limit of every case, in KiB (a runaway allocation
/// fails instead of swapping, and the case's exit code says so).
const LIMIT_KIB: u64 = 1_000_000;
/// A case still running after this long is a hang.
const DEADLINE: Duration = Duration::from_secs(30);

/// One edit of a copy of the base store.
enum Edit {
    /// Set (or, with `None`, remove) the value at a JSON pointer of a file.
    Json(&'static str, &'static str, Option<Value>),
    /// Replace a file's bytes.
    Write(&'static str, Vec<u8>),
    /// Cut a file to this length.
    Truncate(&'static str, u64),
    /// Add bytes at a file's end.
    Append(&'static str, Vec<u8>),
    /// Remove a file.
    Remove(&'static str),
    /// Replace a file with a FIFO.
    Fifo(&'static str),
    /// Replace a file with a symbolic link to a path.
    Symlink(&'static str, &'static str),
    /// Replace a file with a directory.
    Dir(&'static str),
    /// Copy one file over another.
    Copy(&'static str, &'static str),
    /// Replace the bytes of every chunk file of a v2 array.
    AllChunks(&'static str, Vec<u8>),
}

/// Which good store a case starts from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Base {
    /// Zarr v2 with consolidated metadata.
    V2,
    /// Zarr v2 without `.zmetadata`.
    V2Plain,
    /// Zarr v3 with inline consolidated metadata.
    V3,
    /// Zarr v3 without consolidated metadata.
    V3Plain,
    /// No store (flag and path cases).
    None,
}

struct Case {
    name: &'static str,
    base: Base,
    edits: Vec<Edit>,
    /// Arguments; `{S}` is the store, `{D}` an output path beside it, `{E}`
    /// an empty directory.
    args: &'static [&'static str],
    code: i32,
    fragment: &'static str,
}

fn case(
    name: &'static str,
    base: Base,
    edits: Vec<Edit>,
    args: &'static [&'static str],
    code: i32,
    fragment: &'static str,
) -> Case {
    Case {
        name,
        base,
        edits,
        args,
        code,
        fragment,
    }
}

fn set(file: &'static str, pointer: &'static str, v: Value) -> Edit {
    Edit::Json(file, pointer, Some(v))
}

fn del(file: &'static str, pointer: &'static str) -> Edit {
    Edit::Json(file, pointer, None)
}

const INFO: &[&str] = &["info", "{S}"];
const STATS: &[&str] = &["info", "--stats", "{S}"];
const VERIFY: &[&str] = &["verify", "{S}"];
const COPY: &[&str] = &["copy", "{S}", "{D}"];

/// The v2 consolidated entry of the temperature array.
const T2: &str = "/metadata/temperature~1.zarray";
/// ... and its attributes.
const T2A: &str = "/metadata/temperature~1.zattrs";
/// The v3 consolidated entry of the temperature array.
const T3: &str = "/consolidated_metadata/metadata/temperature";

fn ptr(prefix: &str, rest: &str) -> &'static str {
    Box::leak(format!("{prefix}{rest}").into_boxed_str())
}

#[allow(clippy::too_many_lines)] // the corpus is one table
fn cases() -> Vec<Case> {
    use Base::{V2Plain, V3Plain, V2, V3};
    let zm = ".zmetadata";
    let zj = "zarr.json";
    let c2 = "temperature/0.0.0.0";
    let c3 = "temperature/c/0/0/0/0";
    let mut v = vec![
        // ---- v2 metadata, consolidated
        case(
            "v2 .zmetadata not JSON",
            V2,
            vec![Edit::Write(zm, b"{not json".to_vec())],
            INFO,
            3,
            ".zmetadata",
        ),
        case(
            "v2 .zmetadata empty",
            V2,
            vec![Edit::Write(zm, Vec::new())],
            INFO,
            3,
            ".zmetadata",
        ),
        case(
            "v2 .zmetadata a list",
            V2,
            vec![Edit::Write(zm, b"[1, 2]".to_vec())],
            INFO,
            3,
            ".zmetadata",
        ),
        case(
            "v2 .zmetadata truncated",
            V2,
            vec![Edit::Truncate(zm, 100)],
            INFO,
            3,
            ".zmetadata",
        ),
        case(
            "v2 .zmetadata without metadata",
            V2,
            vec![del(zm, "/metadata")],
            INFO,
            3,
            "metadata",
        ),
        case(
            "v2 shape negative",
            V2,
            vec![set(zm, ptr(T2, "/shape/0"), json!(-5))],
            INFO,
            3,
            "non-negative integers, found [-5,2,7,12]",
        ),
        case(
            "v2 shape 2^62",
            V2,
            vec![set(zm, ptr(T2, "/shape/0"), json!(1u64 << 62))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 shape a string",
            V2,
            vec![set(zm, ptr(T2, "/shape"), json!("149"))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 shape of another rank",
            V2,
            vec![set(zm, ptr(T2, "/shape"), json!([149, 2, 7]))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 shape disagrees with the other variable",
            V2,
            vec![set(zm, ptr(T2, "/shape/0"), json!(150))],
            INFO,
            3,
            "time",
        ),
        case(
            "v2 chunks zero",
            V2,
            vec![set(zm, ptr(T2, "/chunks/0"), json!(0))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 chunks of another rank",
            V2,
            vec![set(zm, ptr(T2, "/chunks"), json!([5, 2]))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 chunks 2^62",
            V2,
            vec![set(zm, ptr(T2, "/chunks/1"), json!(1u64 << 62))],
            STATS,
            3,
            "inconsistent chunk sizes",
        ),
        case(
            "v2 chunks missing",
            V2,
            vec![del(zm, ptr(T2, "/chunks"))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 dtype unknown",
            V2,
            vec![set(zm, ptr(T2, "/dtype"), json!("<q9"))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 dtype missing",
            V2,
            vec![del(zm, ptr(T2, "/dtype"))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 dtype a number",
            V2,
            vec![set(zm, ptr(T2, "/dtype"), json!(4))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 compressor unknown",
            V2,
            vec![set(zm, ptr(T2, "/compressor"), json!({"id": "lzma9000"}))],
            STATS,
            3,
            "lzma9000",
        ),
        case(
            "v2 compressor a string",
            V2,
            vec![set(zm, ptr(T2, "/compressor"), json!("blosc"))],
            STATS,
            3,
            "temperature",
        ),
        case(
            "v2 filters unknown",
            V2,
            vec![set(zm, ptr(T2, "/filters"), json!([{"id": "rot13"}]))],
            STATS,
            3,
            "rot13",
        ),
        case(
            "v2 fill_value a word",
            V2,
            vec![set(zm, ptr(T2, "/fill_value"), json!("lots"))],
            STATS,
            3,
            "temperature",
        ),
        case(
            "v2 order F",
            V2,
            vec![set(zm, ptr(T2, "/order"), json!("F"))],
            STATS,
            0,
            "temperature",
        ),
        case(
            "v2 order unknown",
            V2,
            vec![set(zm, ptr(T2, "/order"), json!("Q"))],
            STATS,
            3,
            "temperature",
        ),
        case(
            "v2 zarr_format 4",
            V2,
            vec![set(zm, ptr(T2, "/zarr_format"), json!(4))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 dimension_separator unknown",
            V2,
            vec![set(zm, ptr(T2, "/dimension_separator"), json!("x"))],
            STATS,
            3,
            "temperature",
        ),
        case(
            "v2 _ARRAY_DIMENSIONS missing",
            V2,
            vec![del(zm, ptr(T2A, "/_ARRAY_DIMENSIONS"))],
            INFO,
            3,
            "_ARRAY_DIMENSIONS",
        ),
        case(
            "v2 _ARRAY_DIMENSIONS too short",
            V2,
            vec![set(zm, ptr(T2A, "/_ARRAY_DIMENSIONS"), json!(["time"]))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 _ARRAY_DIMENSIONS not strings",
            V2,
            vec![set(zm, ptr(T2A, "/_ARRAY_DIMENSIONS"), json!([1, 2, 3, 4]))],
            INFO,
            3,
            "list of names, found [1,2,3,4]",
        ),
        case(
            "v2 _ARRAY_DIMENSIONS repeated",
            V2,
            vec![set(
                zm,
                ptr(T2A, "/_ARRAY_DIMENSIONS"),
                json!(["time", "time", "latitude", "longitude"]),
            )],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 .zattrs of an array a list",
            V2,
            vec![set(zm, T2A, json!([1]))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 array entry not an object",
            V2,
            vec![set(zm, T2, json!(7))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v2 consolidated entry of an array missing",
            V2,
            vec![del(zm, T2)],
            INFO,
            3,
            "temperature",
        ),
        // ---- v2 metadata, per array (no consolidated metadata)
        case(
            "v2 plain .zarray not JSON",
            V2Plain,
            vec![Edit::Write("temperature/.zarray", b"]]".to_vec())],
            INFO,
            3,
            "temperature/.zarray",
        ),
        case(
            "v2 plain .zarray missing",
            V2Plain,
            vec![Edit::Remove("temperature/.zarray")],
            INFO,
            3,
            "neither .zarray nor .zgroup",
        ),
        case(
            "v2 plain .zarray empty",
            V2Plain,
            vec![Edit::Write("temperature/.zarray", Vec::new())],
            INFO,
            3,
            "temperature/.zarray",
        ),
        case(
            "v2 plain .zattrs not JSON",
            V2Plain,
            vec![Edit::Write("temperature/.zattrs", b"nope".to_vec())],
            INFO,
            3,
            "temperature/.zattrs",
        ),
        case(
            "v2 plain .zgroup missing",
            V2Plain,
            vec![Edit::Remove(".zgroup")],
            INFO,
            3,
            "zgroup",
        ),
        case(
            "v2 plain .zgroup not JSON",
            V2Plain,
            vec![Edit::Write(".zgroup", b"x".to_vec())],
            INFO,
            3,
            ".zgroup",
        ),
        case(
            "v2 plain .zarray a FIFO",
            V2Plain,
            vec![Edit::Fifo("temperature/.zarray")],
            INFO,
            3,
            "FIFO",
        ),
        case(
            "v2 plain .zarray a directory",
            V2Plain,
            vec![Edit::Dir("temperature/.zarray")],
            INFO,
            3,
            "temperature/.zarray",
        ),
        case(
            "v2 plain .zarray linked to /dev/zero",
            V2Plain,
            vec![Edit::Symlink("temperature/.zarray", "/dev/zero")],
            INFO,
            3,
            "device",
        ),
        case(
            "v2 plain .zarray 300 MiB",
            V2Plain,
            vec![Edit::Append("temperature/.zarray", vec![b' '; 300 << 20])],
            INFO,
            3,
            "MiB",
        ),
        case(
            "v2 .zmetadata a FIFO",
            V2,
            vec![Edit::Fifo(zm)],
            INFO,
            3,
            "FIFO",
        ),
        case(
            "v2 .zmetadata linked to /dev/zero",
            V2,
            vec![Edit::Symlink(zm, "/dev/zero")],
            INFO,
            3,
            "device",
        ),
        // ---- CF attributes
        case(
            "units not CF",
            V2,
            vec![set(
                zm,
                "/metadata/time~1.zattrs/units",
                json!("fortnights after lunch"),
            )],
            INFO,
            0,
            "fortnights after lunch",
        ),
        case(
            "units since a bad date",
            V2,
            vec![set(
                zm,
                "/metadata/time~1.zattrs/units",
                json!("hours since 2020-13-45"),
            )],
            INFO,
            3,
            "2020-13-45",
        ),
        case(
            "calendar unknown",
            V2,
            vec![set(
                zm,
                "/metadata/time~1.zattrs/calendar",
                json!("martian"),
            )],
            INFO,
            3,
            "martian",
        ),
        case(
            "calendar a number",
            V2,
            vec![set(zm, "/metadata/time~1.zattrs/calendar", json!(360))],
            INFO,
            3,
            "calendar",
        ),
        case(
            "units a number",
            V2,
            vec![set(zm, "/metadata/time~1.zattrs/units", json!(5))],
            INFO,
            0,
            "units: 5",
        ),
        case(
            "scale_factor a string",
            V2,
            vec![set(zm, ptr(T2A, "/scale_factor"), json!("two"))],
            INFO,
            3,
            "scale_factor",
        ),
        case(
            "add_offset a list",
            V2,
            vec![set(zm, ptr(T2A, "/add_offset"), json!([1, 2]))],
            INFO,
            3,
            "add_offset",
        ),
        case(
            "_FillValue a word",
            V2,
            vec![set(zm, ptr(T2A, "/_FillValue"), json!("none"))],
            INFO,
            3,
            "_FillValue",
        ),
        case(
            "scale_factor zero",
            V2,
            vec![set(zm, ptr(T2A, "/scale_factor"), json!(0))],
            STATS,
            0,
            "temperature",
        ),
        case(
            "time units on a data variable",
            V2,
            vec![set(zm, ptr(T2A, "/units"), json!("days since 2000-01-01"))],
            STATS,
            0,
            "temperature",
        ),
        case(
            "string coordinate not UTF-8",
            V2,
            vec![set(zm, "/metadata/level~1.zarray/dtype", json!("|S8"))],
            INFO,
            3,
            "not valid UTF-8",
        ),
        case(
            "time encoded far past int64",
            V2,
            vec![
                set(
                    zm,
                    "/metadata/time~1.zattrs/units",
                    json!("days since 0001-01-01"),
                ),
                set(zm, "/metadata/time~1.zattrs/calendar", json!("noleap")),
            ],
            INFO,
            0,
            "0001-01-01",
        ),
        // ---- chunks
        case(
            "chunk missing: info",
            V2,
            vec![Edit::Remove(c2)],
            INFO,
            0,
            "temperature",
        ),
        case(
            "chunk missing: verify",
            V2,
            vec![Edit::Remove(c2)],
            VERIFY,
            3,
            "written, then removed",
        ),
        case(
            "chunk empty",
            V2,
            vec![Edit::Write(c2, Vec::new())],
            STATS,
            3,
            "temperature/0.0.0.0",
        ),
        case(
            "chunk truncated",
            V2,
            vec![Edit::Truncate(c2, 40)],
            STATS,
            3,
            "temperature/0.0.0.0",
        ),
        case(
            "chunk random bytes",
            V2,
            vec![Edit::Write(
                c2,
                (0..3000u32).map(|i| (i * 7919 % 251) as u8).collect(),
            )],
            STATS,
            3,
            "temperature/0.0.0.0",
        ),
        case(
            "chunk with garbage appended",
            V2,
            vec![Edit::Append(c2, vec![0xAB; 1000])],
            VERIFY,
            3,
            "corrupt",
        ),
        case(
            "chunk bytes flipped",
            V2,
            vec![Edit::Write(c2, vec![0xFF; 16])],
            STATS,
            3,
            "temperature/0.0.0.0",
        ),
        case(
            "chunk a directory",
            V2,
            vec![Edit::Dir(c2)],
            STATS,
            3,
            "directory",
        ),
        case("chunk a FIFO", V2, vec![Edit::Fifo(c2)], STATS, 3, "FIFO"),
        case(
            "chunk linked to /dev/zero",
            V2,
            vec![Edit::Symlink(c2, "/dev/zero")],
            STATS,
            3,
            "device",
        ),
        case(
            "chunk of another variable",
            V2,
            vec![Edit::Copy("geopotential/0.0.0.0", c2)],
            VERIFY,
            3,
            "corrupt",
        ),
        case(
            "coordinate chunk missing",
            V2,
            vec![Edit::Remove("time/0")],
            INFO,
            3,
            "time/0",
        ),
        case(
            "coordinate chunk truncated",
            V2,
            vec![Edit::Truncate("time/0", 10)],
            INFO,
            3,
            "time/0",
        ),
        case(
            "last chunk missing: verify",
            V2,
            vec![Edit::Remove("temperature/29.0.0.0")],
            VERIFY,
            3,
            "temperature/29.0.0.0",
        ),
        // ---- v3 metadata
        case(
            "v3 zarr.json not JSON",
            V3,
            vec![Edit::Write(zj, b"{{".to_vec())],
            INFO,
            3,
            "zarr.json",
        ),
        case(
            "v3 zarr.json empty",
            V3,
            vec![Edit::Write(zj, Vec::new())],
            INFO,
            3,
            "zarr.json",
        ),
        case(
            "v3 zarr_format 2 in zarr.json",
            V3,
            vec![set(zj, "/zarr_format", json!(2))],
            INFO,
            3,
            "zarr_format",
        ),
        case(
            "v3 node_type unknown",
            V3,
            vec![set(zj, "/node_type", json!("forest"))],
            INFO,
            3,
            "node_type",
        ),
        case(
            "v3 shape negative",
            V3,
            vec![set(zj, ptr(T3, "/shape/0"), json!(-1))],
            INFO,
            3,
            "non-negative integers",
        ),
        case(
            "v3 shape 2^62",
            V3,
            vec![set(zj, ptr(T3, "/shape/0"), json!(1u64 << 62))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 data_type unknown",
            V3,
            vec![set(zj, ptr(T3, "/data_type"), json!("float128"))],
            INFO,
            3,
            "float128",
        ),
        case(
            "v3 data_type missing",
            V3,
            vec![del(zj, ptr(T3, "/data_type"))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 chunk_grid unknown",
            V3,
            vec![set(zj, ptr(T3, "/chunk_grid/name"), json!("hexagonal"))],
            INFO,
            3,
            "hexagonal",
        ),
        case(
            "v3 chunk_shape zero",
            V3,
            vec![set(
                zj,
                ptr(T3, "/chunk_grid/configuration/chunk_shape/0"),
                json!(0),
            )],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 chunk_shape of another rank",
            V3,
            vec![set(
                zj,
                ptr(T3, "/chunk_grid/configuration/chunk_shape"),
                json!([5]),
            )],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 chunk_key_encoding unknown",
            V3,
            vec![set(zj, ptr(T3, "/chunk_key_encoding/name"), json!("morse"))],
            STATS,
            3,
            "morse",
        ),
        case(
            "v3 codec unknown",
            V3,
            vec![set(zj, ptr(T3, "/codecs/1/name"), json!("lzma9000"))],
            STATS,
            3,
            "lzma9000",
        ),
        case(
            "v3 codecs empty",
            V3,
            vec![set(zj, ptr(T3, "/codecs"), json!([]))],
            STATS,
            3,
            "temperature",
        ),
        case(
            "v3 codecs not a list",
            V3,
            vec![set(zj, ptr(T3, "/codecs"), json!({"name": "bytes"}))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 bytes codec endian unknown",
            V3,
            vec![set(
                zj,
                ptr(T3, "/codecs/0/configuration/endian"),
                json!("middle"),
            )],
            STATS,
            3,
            "temperature",
        ),
        case(
            "v3 fill_value a word",
            V3,
            vec![set(zj, ptr(T3, "/fill_value"), json!("lots"))],
            STATS,
            3,
            "temperature",
        ),
        case(
            "v3 dimension_names too short",
            V3,
            vec![set(zj, ptr(T3, "/dimension_names"), json!(["time"]))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 dimension_names missing",
            V3,
            vec![del(zj, ptr(T3, "/dimension_names"))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 must_understand extension",
            V3,
            vec![set(
                zj,
                ptr(T3, "/future_thing"),
                json!({"name": "x", "must_understand": true}),
            )],
            INFO,
            3,
            "future_thing",
        ),
        case(
            "v3 storage transformer",
            V3,
            vec![set(
                zj,
                ptr(T3, "/storage_transformers"),
                json!([{"name": "mirror"}]),
            )],
            INFO,
            3,
            "storage transformer",
        ),
        case(
            "v3 consolidated entry not an object",
            V3,
            vec![set(zj, T3, json!("temperature"))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 consolidated metadata not an object",
            V3,
            vec![set(zj, "/consolidated_metadata/metadata", json!([]))],
            INFO,
            3,
            "consolidated",
        ),
        case(
            "v3 attributes a list",
            V3,
            vec![set(zj, ptr(T3, "/attributes"), json!([1]))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 node_type of an array group",
            V3,
            vec![set(zj, ptr(T3, "/node_type"), json!("group"))],
            INFO,
            3,
            "temperature",
        ),
        case(
            "v3 plain zarr.json of an array not JSON",
            V3Plain,
            vec![Edit::Write("temperature/zarr.json", b"[".to_vec())],
            INFO,
            3,
            "temperature/zarr.json",
        ),
        case(
            "v3 plain zarr.json of an array a FIFO",
            V3Plain,
            vec![Edit::Fifo("temperature/zarr.json")],
            INFO,
            3,
            "FIFO",
        ),
        case(
            "v3 plain root zarr.json missing",
            V3Plain,
            vec![Edit::Remove("zarr.json")],
            INFO,
            3,
            "zarr.json",
        ),
        case(
            "v3 plain data_type unknown",
            V3Plain,
            vec![set(
                "temperature/zarr.json",
                "/data_type",
                json!("complex512"),
            )],
            INFO,
            3,
            "complex512",
        ),
        case(
            "v3 chunk truncated",
            V3,
            vec![Edit::Truncate(c3, 30)],
            STATS,
            3,
            "temperature/c/0/0/0/0",
        ),
        case(
            "v3 chunk empty",
            V3,
            vec![Edit::Write(c3, Vec::new())],
            STATS,
            3,
            "temperature/c/0/0/0/0",
        ),
        case(
            "v3 chunk a FIFO",
            V3,
            vec![Edit::Fifo(c3)],
            STATS,
            3,
            "FIFO",
        ),
        case(
            "v3 chunk missing: verify",
            V3,
            vec![Edit::Remove(c3)],
            VERIFY,
            3,
            "written, then removed",
        ),
        case(
            "v3 chunk corrupted: verify",
            V3,
            vec![Edit::Copy("geopotential/c/0/0/0/0", c3)],
            VERIFY,
            3,
            "corrupt",
        ),
        // ---- manifests
        case(
            "manifest not a manifest",
            V2,
            vec![Edit::Write(".xbeam-manifest", b"hello".to_vec())],
            VERIFY,
            3,
            "manifest",
        ),
        case(
            "manifest line bad",
            V2,
            vec![Edit::Append(".xbeam-manifest", b"zz 1 \"k\"\n".to_vec())],
            VERIFY,
            3,
            "line",
        ),
        case(
            "manifest says writing",
            V2,
            vec![set_manifest_status("writing")],
            VERIFY,
            3,
            "did not finish",
        ),
        case(
            "manifest says writing: info",
            V2,
            vec![set_manifest_status("writing")],
            INFO,
            0,
            "INCOMPLETE",
        ),
        case(
            "manifest a FIFO",
            V2,
            vec![Edit::Fifo(".xbeam-manifest")],
            VERIFY,
            3,
            "FIFO",
        ),
        // ---- copying broken stores writes nothing
        case(
            "copy of a store with a truncated chunk",
            V2,
            vec![Edit::Truncate(c2, 40)],
            COPY,
            3,
            "temperature/0.0.0.0",
        ),
        case(
            "chunk a gzip bomb",
            V2,
            bomb_edits(),
            STATS,
            3,
            "decompression bomb",
        ),
        case(
            "copy of a store with a gzip bomb",
            V2,
            bomb_edits(),
            COPY,
            3,
            "decompression bomb",
        ),
        // ---- what the budget bounds beyond decoded sizes
        case(
            "string chunk decompressing past the budget",
            V2Plain,
            string_bomb_edits(),
            &["copy", "--max-mem", "32MiB", "--workers", "1", "{S}", "{D}"],
            3,
            "more than the 33554432 bytes a chunk of variable-length values may take",
        ),
        case(
            "coordinate of 2^32 elements in chunks of 1 (fuzz finding)",
            V2Plain,
            vec![
                Edit::Write(
                    "big/.zarray",
                    json!({
                        "zarr_format": 2, "shape": [4_294_967_296u64], "chunks": [1],
                        "dtype": "<f8", "compressor": null, "fill_value": null,
                        "filters": null, "order": "C",
                    })
                    .to_string()
                    .into_bytes(),
                ),
                Edit::Write("big/.zattrs", br#"{"_ARRAY_DIMENSIONS": ["big"]}"#.to_vec()),
                Edit::Write("big/0", vec![0; 8]),
            ],
            INFO,
            3,
            "(the memory budget, as coordinates are read whole), found [4294967296] elements",
        ),
        case(
            "chunk file larger than the budget",
            V2,
            vec![Edit::Write(c2, vec![0; 3 << 20])],
            &["info", "--stats", "--max-mem", "2MiB", "{S}"],
            3,
            "expected to read at most 2097152 bytes (the memory budget) of a chunk file",
        ),
        case(
            "manifest recording more chunks than half the budget indexes",
            V2,
            vec![Edit::Append(".xbeam-manifest", many_manifest_lines(30_000))],
            &["verify", "--max-mem", "1MiB", "{S}"],
            3,
            "lines, more than the 21845 chunks half the memory budget indexes",
        ),
    ];
    v.extend(flag_cases());
    v
}

/// A v2 array `names` of one variable-length string, gzipped: 288 MiB of
/// `a` in about 300 kB.
fn string_bomb_edits() -> Vec<Edit> {
    // vlen-utf8: the item count, then each item's length and bytes
    let out = Command::new("sh")
        .args([
            "-c",
            r"{ printf '\001\000\000\000\000\000\000\022'; head -c 301989888 /dev/zero | tr '\000' a; } | gzip -1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.len() > 1000);
    let zarray = json!({
        "zarr_format": 2, "shape": [1], "chunks": [1], "dtype": "|O",
        "compressor": {"id": "gzip", "level": 1}, "fill_value": null,
        "filters": [{"id": "vlen-utf8"}], "order": "C",
    });
    vec![
        Edit::Write("names/.zarray", zarray.to_string().into_bytes()),
        Edit::Write(
            "names/.zattrs",
            br#"{"_ARRAY_DIMENSIONS": ["names"]}"#.to_vec(),
        ),
        Edit::Write("names/0", out.stdout),
    ]
}

/// `n` manifest lines of made-up chunks.
fn many_manifest_lines(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("00000000 1 \"x/{i}\"\n").into_bytes())
        .collect()
}

/// The manifest's first line with another status.
fn set_manifest_status(status: &'static str) -> Edit {
    Edit::Write(
        ".xbeam-manifest",
        format!("{{\"xbeam_manifest\": 1, \"status\": \"{status}\"}}\n").into_bytes(),
    )
}

/// 256 MiB of zeros, gzipped (about 250 kB): a decompression bomb for a
/// chunk that holds 3360 bytes.
fn gzip_bomb() -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", "head -c 268435456 /dev/zero | gzip -1"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.len() > 1000);
    out.stdout
}

/// The temperature array of the v2 base gzipped, every chunk a bomb.
fn bomb_edits() -> Vec<Edit> {
    vec![
        set(
            ".zmetadata",
            ptr(T2, "/compressor"),
            json!({"id": "gzip", "level": 1}),
        ),
        Edit::AllChunks("temperature", gzip_bomb()),
    ]
}

#[allow(clippy::too_many_lines)] // the corpus is one table
fn flag_cases() -> Vec<Case> {
    use Base::{None as N, V2};
    let gen = |name, args, fragment| case(name, N, vec![], args, 2, fragment);
    vec![
        gen(
            "generate --gb 0",
            &["generate", "--gb", "0", "--out", "{D}"],
            "--gb",
        ),
        gen(
            "generate --gb -1",
            &["generate", "--gb", "-1", "--out", "{D}"],
            "'-1'",
        ),
        gen(
            "generate --gb NaN",
            &["generate", "--gb", "NaN", "--out", "{D}"],
            "--gb",
        ),
        gen(
            "generate --gb inf",
            &["generate", "--gb", "inf", "--out", "{D}"],
            "--gb",
        ),
        gen(
            "generate --gb words",
            &["generate", "--gb", "lots", "--out", "{D}"],
            "--gb",
        ),
        gen(
            "generate --nlat 0",
            &["generate", "--nlat", "0", "--out", "{D}"],
            "--nlat",
        ),
        gen(
            "generate --levels 2^62",
            &[
                "generate",
                "--levels",
                "4611686018427387904",
                "--out",
                "{D}",
            ],
            "--levels",
        ),
        gen(
            "generate --chunks time=0",
            &[
                "generate", "--gb", "0.0002", "--chunks", "time=0", "--out", "{D}",
            ],
            "time",
        ),
        gen(
            "generate --chunks unknown dim",
            &[
                "generate", "--gb", "0.0002", "--chunks", "depth=3", "--out", "{D}",
            ],
            "depth",
        ),
        gen(
            "generate --chunks garbage",
            &["generate", "--chunks", "time", "--out", "{D}"],
            "--chunks",
        ),
        gen(
            "generate --format 4",
            &["generate", "--format", "4", "--out", "{D}"],
            "--format",
        ),
        gen(
            "generate --workers 0",
            &["generate", "--workers", "0", "--out", "{D}"],
            "--workers",
        ),
        gen(
            "generate --max-mem 0",
            &["generate", "--max-mem", "0", "--out", "{D}"],
            "--max-mem",
        ),
        gen(
            "generate --max-mem words",
            &["generate", "--max-mem", "lots", "--out", "{D}"],
            "--max-mem",
        ),
        gen(
            "generate without --out",
            &["generate", "--gb", "1"],
            "--out",
        ),
        gen(
            "generate --out /",
            &["generate", "--gb", "0.0002", "--out", "/"],
            "root",
        ),
        gen(
            "generate --out .",
            &["generate", "--gb", "0.0002", "--out", "."],
            "current directory",
        ),
        gen(
            "generate --resume --overwrite",
            &["generate", "--resume", "--overwrite", "--out", "{D}"],
            "cannot be used with",
        ),
        gen("unknown subcommand", &["frobnicate"], "frobnicate"),
        gen("unknown flag", &["info", "--colour", "{S}"], "--colour"),
        case(
            "info of a missing path",
            N,
            vec![],
            &["info", "/nonexistent/xbeam/store.zarr"],
            3,
            "/nonexistent/xbeam/store.zarr",
        ),
        case(
            "info of a file",
            N,
            vec![],
            &["info", "/etc/hostname"],
            3,
            "/etc/hostname",
        ),
        case(
            "info of an empty directory",
            N,
            vec![],
            &["info", "{E}"],
            3,
            "not a Zarr group",
        ),
        case(
            "verify of a missing path",
            N,
            vec![],
            &["verify", "/nonexistent/xbeam/store.zarr"],
            3,
            "/nonexistent",
        ),
        case(
            "rechunk --target-chunks garbage",
            V2,
            vec![],
            &["rechunk", "{S}", "{D}", "--target-chunks", "time"],
            2,
            "--target-chunks",
        ),
        case(
            "rechunk --target-chunks unknown dim",
            V2,
            vec![],
            &["rechunk", "{S}", "{D}", "--target-chunks", "depth=4"],
            2,
            "depth",
        ),
        case(
            "rechunk --target-chunks time=-5",
            V2,
            vec![],
            &["rechunk", "{S}", "{D}", "--target-chunks", "time=-5"],
            2,
            "time",
        ),
        case(
            "rechunk --max-mem too small",
            V2,
            vec![],
            &[
                "rechunk",
                "{S}",
                "{D}",
                "--target-chunks",
                "time=-1",
                "--max-mem",
                "1KB",
            ],
            2,
            "max-mem",
        ),
        case(
            "rechunk into its input",
            V2,
            vec![],
            &["rechunk", "{S}", "{S}", "--target-chunks", "time=-1"],
            2,
            "input store",
        ),
        case(
            "rechunk into a file",
            V2,
            vec![],
            &[
                "rechunk",
                "{S}",
                "/etc/hostname",
                "--target-chunks",
                "time=-1",
            ],
            2,
            "not a directory",
        ),
        case(
            "copy --codec unknown",
            V2,
            vec![],
            &["copy", "{S}", "{D}", "--codec", "lzma9000"],
            2,
            "lzma9000",
        ),
        case(
            "copy --clevel out of range",
            V2,
            vec![],
            &["copy", "{S}", "{D}", "--codec", "zstd", "--clevel", "99"],
            2,
            "--clevel",
        ),
        case(
            "copy --shards without v3",
            V2,
            vec![],
            &["copy", "{S}", "{D}", "--shards", "time=10", "--format", "2"],
            2,
            "--shards",
        ),
        case(
            "climatology --groupby unknown",
            V2,
            vec![],
            &["climatology", "{S}", "{D}", "--groupby", "time.fortnight"],
            2,
            "time.fortnight",
        ),
        case(
            "climatology --stat unknown",
            V2,
            vec![],
            &[
                "climatology",
                "{S}",
                "{D}",
                "--groupby",
                "time.month",
                "--stat",
                "median-ish",
            ],
            2,
            "median-ish",
        ),
        case(
            "climatology --window on month",
            V2,
            vec![],
            &[
                "climatology",
                "{S}",
                "{D}",
                "--groupby",
                "time.month",
                "--window",
                "61",
            ],
            2,
            "window",
        ),
        case(
            "climatology --quantiles 2",
            V2,
            vec![],
            &[
                "climatology",
                "{S}",
                "{D}",
                "--groupby",
                "time.month",
                "--quantiles",
                "2",
            ],
            2,
            "quantile",
        ),
        case(
            "stats --over unknown dim",
            V2,
            vec![],
            &["stats", "{S}", "{D}", "--over", "depth"],
            2,
            "depth",
        ),
        case(
            "resample --time garbage",
            V2,
            vec![],
            &["resample", "{S}", "{D}", "--time", "fortnightly"],
            2,
            "fortnightly",
        ),
        case(
            "ingest of no files",
            N,
            vec![],
            &["ingest", "/nonexistent/xbeam/*.nc", "{D}"],
            3,
            "no file",
        ),
        case(
            "ingest --concat-dim unknown",
            N,
            vec![],
            &["ingest", "/etc/hostname", "{D}", "--concat-dim", "time"],
            3,
            "/etc/hostname",
        ),
    ]
}

/// The good stores, made once per run.
fn bases(dir: &Path) -> [(Base, PathBuf); 4] {
    let make = |name: &str, format: &str| {
        let path = dir.join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_xbeam"))
            .args([
                "generate", "--gb", "0.0002", "--nlat", "7", "--nlon", "12", "--levels", "2",
                "--chunks", "time=5", "--quiet", "--format", format, "--out",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    };
    let v2 = make("base_v2.zarr", "2");
    let v3 = make("base_v3.zarr", "3");
    let v2_plain = make("base_v2_plain.zarr", "2");
    std::fs::remove_file(v2_plain.join(".zmetadata")).unwrap();
    let v3_plain = make("base_v3_plain.zarr", "3");
    let root = v3_plain.join("zarr.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&root).unwrap()).unwrap();
    doc.as_object_mut().unwrap().remove("consolidated_metadata");
    std::fs::write(&root, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    [
        (Base::V2, v2),
        (Base::V3, v3),
        (Base::V2Plain, v2_plain),
        (Base::V3Plain, v3_plain),
    ]
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn apply(store: &Path, edit: &Edit) {
    let at = |f: &str| store.join(f);
    let replace = |f: &str| {
        let p = at(f);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else if p.exists() || p.is_symlink() {
            std::fs::remove_file(&p).unwrap();
        }
        p
    };
    match edit {
        Edit::Json(f, pointer, value) => {
            let mut doc: Value = serde_json::from_slice(&std::fs::read(at(f)).unwrap()).unwrap();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let key = key.replace("~1", "/").replace("~0", "~");
            let slot = doc
                .pointer_mut(parent)
                .unwrap_or_else(|| panic!("{f}{pointer}"));
            match (slot, value) {
                (Value::Object(m), Some(v)) => {
                    m.insert(key, v.clone());
                }
                (Value::Object(m), None) => {
                    m.remove(&key);
                }
                (Value::Array(a), Some(v)) => a[key.parse::<usize>().unwrap()] = v.clone(),
                (other, _) => panic!("{f}{pointer}: cannot edit {other}"),
            }
            std::fs::write(at(f), serde_json::to_vec(&doc).unwrap()).unwrap();
        }
        Edit::Write(f, bytes) => {
            std::fs::create_dir_all(at(f).parent().unwrap()).unwrap();
            std::fs::write(at(f), bytes).unwrap();
        }
        Edit::Truncate(f, n) => std::fs::OpenOptions::new()
            .write(true)
            .open(at(f))
            .unwrap()
            .set_len(*n)
            .unwrap(),
        Edit::Append(f, bytes) => {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(at(f))
                .unwrap()
                .write_all(bytes)
                .unwrap();
        }
        Edit::Remove(f) => std::fs::remove_file(at(f)).unwrap(),
        Edit::Fifo(f) => {
            let p = replace(f);
            let ok = Command::new("mkfifo").arg(&p).status().unwrap();
            assert!(ok.success());
        }
        Edit::Symlink(f, target) => {
            let p = replace(f);
            std::os::unix::fs::symlink(target, p).unwrap();
        }
        Edit::Dir(f) => {
            let p = replace(f);
            std::fs::create_dir_all(p).unwrap();
        }
        Edit::Copy(from, to) => {
            std::fs::copy(at(from), at(to)).unwrap();
        }
        Edit::AllChunks(array, bytes) => {
            for entry in std::fs::read_dir(at(array)).unwrap() {
                let entry = entry.unwrap();
                if !entry.file_name().to_string_lossy().starts_with('.') {
                    std::fs::write(entry.path(), bytes).unwrap();
                }
            }
        }
    }
}

/// Runs one case: exit code and stderr+stdout, or `None` on a hang.
fn run(args: &[String], dir: &Path) -> Option<(i32, String)> {
    let script = format!("ulimit -v {LIMIT_KIB} && exec \"$0\" \"$@\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_xbeam"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
            return Some((out.status.code().unwrap_or(-1), text));
        }
        if started.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn every_malformed_input_gets_its_exit_code_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let bases = bases(dir.path());
    let cases = cases();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let print = std::env::var_os("XBEAM_CORPUS_PRINT").is_some();
    for (i, c) in cases.iter().enumerate() {
        let work = dir.path().join(format!("case{i}"));
        std::fs::create_dir_all(&work).unwrap();
        let store = work.join("s.zarr");
        if let Some((_, base)) = bases.iter().find(|(b, _)| *b == c.base) {
            copy_dir(base, &store);
            for e in &c.edits {
                apply(&store, e);
            }
        }
        let dst = work.join("out.zarr");
        let empty = work.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| {
                a.replace("{S}", store.to_str().unwrap())
                    .replace("{D}", dst.to_str().unwrap())
                    .replace("{E}", empty.to_str().unwrap())
            })
            .collect();
        let result = run(&args, &work);
        if print {
            eprintln!("CASE {:?}: {:?}", c.name, result);
        }
        match result {
            None => failures.push(format!("{}: hung (over {DEADLINE:?})", c.name)),
            Some((code, text)) => {
                let panicked = text.contains("panicked") || text.contains("memory allocation");
                if code != c.code || !text.contains(c.fragment) || panicked {
                    failures.push(format!(
                        "{}: expected exit {} with {:?}, found exit {code}: {text}",
                        c.name, c.code, c.fragment
                    ));
                }
                // a failed write leaves no store behind that looks whole
                if code != 0 && dst.join(".xbeam-manifest").is_file() {
                    let m = std::fs::read_to_string(dst.join(".xbeam-manifest")).unwrap();
                    if m.contains("\"complete\"") {
                        failures.push(format!(
                            "{}: failed, but left a complete-looking store",
                            c.name
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
