//! The `xbeam` command-line tool.

use std::process::ExitCode;

mod cli;

/// jemalloc, keeping freed pages for reuse (see the `jemalloc` feature).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    cli::main()
}
