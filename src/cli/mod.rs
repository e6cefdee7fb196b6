//! The command line: argument parsing and the commands. The only place that prints.

mod bench;
mod data;
mod devices;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
        /// Instead of the suite, run the scaling sweeps (embedding GB/s vs table rows and batch,
        /// TIM time vs sequence length) and write scaling.json and PNG charts into this folder.
        #[arg(long, value_name = "DIR")]
        scaling: Option<std::path::PathBuf>,
    },
    /// Datasets: fetch the bundled one, write synthetic ones.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Download a bundled dataset (through pip) and write its splits under the protocol.
    Fetch {
        /// Which dataset.
        dataset: Bundled,
        /// The folder for `raw/`, `train.tsv`, `valid.tsv`, `test.tsv` and `schema.toml`.
        #[arg(long)]
        into: PathBuf,
    },
    /// Write synthetic data with a planted model (train/valid/test 80/10/10 and schema.toml).
    Synth {
        /// Rows in all.
        #[arg(long)]
        rows: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// The Criteo layout: label, 13 integers, 26 hashed categorical, no header.
        #[arg(long)]
        criteo: bool,
        /// Seed; the same seed writes the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Mean planted click probability.
        #[arg(long, default_value_t = 0.2)]
        positive_rate: f64,
        /// Share of empty categorical and numeric values (default 0, or 0.05 with --criteo).
        #[arg(long)]
        missing_rate: Option<f64>,
        /// Add a second correlated task `love` with this positive rate (sample-table layout only).
        #[arg(long)]
        second_task: Option<f64>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Bundled {
    /// MovieLens-100K as click data (DATA.md §1), from the recbole 1.2.1 wheel.
    #[value(name = "ml-100k")]
    Ml100k,
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
            scaling,
        } => match scaling {
            Some(dir) => bench::scaling(&dir, quick, repeats, json),
            None => bench::run(
                wgrec::bench::BenchOptions {
                    quick,
                    repeats,
                    filter,
                },
                json,
            ),
        },
        Command::Data { command } => match command {
            DataCommand::Fetch {
                dataset: Bundled::Ml100k,
                into,
            } => data::fetch_ml100k(&into),
            DataCommand::Synth {
                rows,
                out,
                criteo,
                seed,
                positive_rate,
                missing_rate,
                second_task,
            } => data::synth(data::SynthArgs {
                rows,
                out,
                criteo,
                seed,
                positive_rate,
                missing_rate,
                second_task,
            }),
        },
    }
}
