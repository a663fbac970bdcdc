//! The `capsight` binary: a thin shell over [`capsight::cli`].

// mimalloc: under concurrent load the server's many short-lived allocations (messages,
// their strings and vectors) cost a third less time than with the system allocator;
// `cargo bench --bench grpc_load` uses the same allocator and shows it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    capsight::cli::main()
}
