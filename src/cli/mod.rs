//! The command line: argument parsing and the commands. The only place that prints.

mod devices;

use clap::{Parser, Subcommand};

/// wgrec — train and serve ads-ranking models on any GPU.
#[derive(Debug, Parser)]
#[command(name = "wgrec", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every GPU adapter wgpu can see, with its limits and features.
    Devices {
        /// Print one JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devices { json } => devices::run(json),
    }
}
