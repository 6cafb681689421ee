//! The `marketsync` binary: everything lives in the library; see `src/lib.rs` for the map.

fn main() {
    std::process::exit(marketsync::cli::main());
}
