//! The `wgrec` binary: parses arguments, runs a command, prints errors as one message (no panic, no
//! backtrace) and exits non-zero on failure.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::quiet_mesa_runtime_dir();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
