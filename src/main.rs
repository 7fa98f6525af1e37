//! The `netrun` command line: everything it does is in `src/cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
