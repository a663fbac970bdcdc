//! The `capsight` binary: a thin shell over [`capsight::cli`].

fn main() -> std::process::ExitCode {
    capsight::cli::main()
}
