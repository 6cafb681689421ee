//! The `marketsync` binary: everything lives in the library; see `src/lib.rs` for the map.

fn main() {
    // glibc gives every thread that allocates its own arena (up to 8 per core), and memory freed
    // in one is not reused by another: a long-running daemon's RSS creeps up with its thread
    // count. Two arenas keep it flat: the 50k-product push peaks at 35-47 MB instead of 50-60,
    // with CPU within the benchmark's run-to-run noise.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    std::process::exit(marketsync::cli::main());
}
