//! The command line: argument parsing and the commands. The only place that prints.

mod bench;
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
    /// Time the kernel suite on this device beside its copy-bandwidth and FMA ceilings.
    Bench {
        /// Shapes about 16× smaller: a smoke run.
        #[arg(long)]
        quick: bool,
        /// Timed runs per kernel (the median is reported).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeats: u32,
        /// Only kernels whose name contains this (the ceilings always run).
        #[arg(long)]
        filter: Option<String>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devices { json } => devices::run(json),
        Command::Bench {
            quick,
            repeats,
            filter,
            json,
        } => bench::run(
            wgrec::bench::BenchOptions {
                quick,
                repeats,
                filter,
            },
            json,
        ),
    }
}
