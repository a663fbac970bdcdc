//! The `capsight` binary: a thin shell over [`capsight::cli`].

// mimalloc: under concurrent load the server's many short-lived allocations (messages,
// their strings and vectors) cost a third less time than with the system allocator;
// `cargo bench --bench grpc_load` uses the same allocator and shows it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    disable_transparent_huge_pages();
    purge_freed_memory_sooner();
    capsight::cli::main()
}

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the bindings do not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Gives freed memory back to the system after 100 ms instead of mimalloc 3's 1 s, unless
/// `MIMALLOC_PURGE_DELAY` says otherwise. After a write or an erasure the organisation's
/// insights are recomputed in the background, each with a working set of hundreds of
/// megabytes: with the default, one's freed pages were still held when the next began,
/// and the median resident memory through `cargo bench --bench scale`'s rounds was
/// 2,060 MiB; with 100 ms it was 1,829 MiB, at 5–15 % on a few first calls.
fn purge_freed_memory_sooner() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of the allocator; mimalloc reads it on each
        // purge decision, and no other thread runs yet.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100) };
    }
}

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` says
/// otherwise. With them, mimalloc's arenas are backed by 2 MiB pages and the first touch
/// of one zeroes all of it: opening a 100,000-person store (4M assessments decoded into
/// many small allocations) spent 57 % of its CPU in the kernel clearing pages (`perf`),
/// 3.4–4.3 s to SERVING against 2.0 s without, and resident memory grew in 2 MiB steps.
#[cfg(target_os = "linux")]
fn disable_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and reads or writes no
        // memory of this process; it fails harmlessly on kernels without it.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[cfg(not(target_os = "linux"))]
fn disable_transparent_huge_pages() {}
