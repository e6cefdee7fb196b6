//! The `wgrec data` subcommands: their arguments and how each is run (the work is in `data.rs`,
//! `ope.rs` and the library).

use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;

use super::{data, ope};

#[derive(Debug, Subcommand)]
pub(super) enum DataCommand {
    /// HashID codes of an embedding file (SimHash on the GPU, METHODS.md §1.3): one line
    /// `id<TAB>code<TAB>bits` per id, the code in decimal and in binary (bit 0 last).
    Hashid {
        /// The embedding file (.safetensors, .npy or text).
        #[arg(long)]
        embeddings: PathBuf,
        /// Bits per code, 1 to 32.
        #[arg(long)]
        bits: u32,
        /// Hyperplane seed (a hashid feature's `seed`).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The codes file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Download a bundled dataset (through pip) and write its splits under the protocol.
    Fetch {
        /// Which dataset.
        dataset: Bundled,
        /// The folder for `raw/`, `train.tsv`, `valid.tsv`, `test.tsv` and `schema.toml`.
        #[arg(long)]
        into: PathBuf,
        /// obd only: the campaign (default all).
        #[arg(long, value_enum)]
        campaign: Option<ope::CampaignChoice>,
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
        #[command(flatten)]
        tasks: data::SynthTasks,
        #[command(flatten)]
        content: data::SynthContent,
    },
    /// Turn an event log into a sample table with per-user behaviour sequences (hist_<item>,
    /// hist_<side>…, hist_time: the user's events strictly before each one, most recent last).
    Sequences {
        /// The event log (delimited text).
        #[arg(long)]
        events: PathBuf,
        /// The log's schema.toml.
        #[arg(long)]
        schema: PathBuf,
        /// The user column (categorical).
        #[arg(long)]
        user: String,
        /// The item column (categorical).
        #[arg(long)]
        item: String,
        /// The event time column (timestamp).
        #[arg(long)]
        time: String,
        /// An item attribute carried into each behaviour (categorical, or multi_hot: first id).
        #[arg(long)]
        side: Vec<String>,
        /// Which events are behaviours; `positive` needs --label.
        #[arg(long, value_enum, default_value_t = BehaviourChoice::All)]
        behaviours: BehaviourChoice,
        /// The label column deciding positive behaviours.
        #[arg(long)]
        label: Option<String>,
        /// Longest history kept.
        #[arg(long, default_value_t = 50)]
        max_len: usize,
        /// The sample table to write; its schema goes beside it as `<stem>.schema.toml`.
        #[arg(long)]
        out: PathBuf,
        /// Count malformed rows and go on instead of failing on the first.
        #[arg(long)]
        skip_bad_rows: bool,
    },
}

/// Which events of a log count as behaviours.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum BehaviourChoice {
    /// Every event.
    All,
    /// Events whose --label is 1.
    Positive,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Bundled {
    /// MovieLens-100K as click data (DATA.md §1), from the recbole 1.2.1 wheel.
    #[value(name = "ml-100k")]
    Ml100k,
    /// The Open Bandit Dataset sample (random and Bernoulli-TS logs), from the obp 0.4.1 wheel.
    Obd,
}

/// Runs a `wgrec data` command.
pub(super) fn run_data(command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Hashid {
            embeddings,
            bits,
            seed,
            out,
        } => data::hashid(&embeddings, bits, seed, &out),
        DataCommand::Fetch {
            dataset: Bundled::Ml100k,
            into,
            campaign: None,
        } => data::fetch_ml100k(&into),
        DataCommand::Fetch {
            dataset: Bundled::Ml100k,
            ..
        } => anyhow::bail!("--campaign is for obd only"),
        DataCommand::Fetch {
            dataset: Bundled::Obd,
            into,
            campaign,
        } => ope::fetch_obd(&into, campaign.unwrap_or(ope::CampaignChoice::All)),
        DataCommand::Synth {
            rows,
            out,
            criteo,
            seed,
            positive_rate,
            missing_rate,
            second_task,
            tasks,
            content,
        } => data::synth(data::SynthArgs {
            rows,
            out,
            criteo,
            seed,
            positive_rate,
            missing_rate,
            second_task,
            tasks,
            content,
        }),
        DataCommand::Sequences {
            events,
            schema,
            user,
            item,
            time,
            side,
            behaviours,
            label,
            max_len,
            out,
            skip_bad_rows,
        } => data::sequences(data::SequencesArgs {
            events,
            schema,
            user,
            item,
            time,
            side,
            positive: matches!(behaviours, BehaviourChoice::Positive),
            label,
            max_len,
            out,
            skip_bad_rows,
        }),
    }
}
