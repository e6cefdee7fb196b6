//! The command line: argument parsing and the commands. The only place that prints.

mod analyze;
mod bench;
mod data;
mod devices;
mod eval;
mod online;
mod ope;
mod pretrain;
mod progress;
mod report;
mod serve;
mod train;

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
        /// TIM time vs sequence length; whole-model samples/s and memory vs batch, tables, sequence
        /// length and table rows) and write JSON and PNG charts into this folder.
        #[arg(long, value_name = "DIR")]
        scaling: Option<std::path::PathBuf>,
        /// Instead of the suite, write the whole bench model (model.json, initial state, batches)
        /// and wgrec's samples/s on it into this folder, for benches/torch/model.py to rebuild and
        /// time the same model on the same batches.
        #[arg(long, value_name = "DIR")]
        export_model: Option<std::path::PathBuf>,
        /// With --export-model: the bench model's architecture; every one but `single` (the
        /// one-task model) has the tasks click and like, a tower each.
        #[arg(long, requires = "export_model", default_value = "single",
              value_parser = ["single", "shared", "mmoe", "ple", "stem", "ame"])]
        architecture: String,
    },
    /// Train a model file on a data folder (schema.toml, train.tsv, valid.tsv, test.tsv); checkpoints
    /// and metrics go to --out.
    Train {
        /// The model file (TOML; see docs/config.md).
        #[arg(long)]
        config: PathBuf,
        /// The data folder (default: data/<config file stem>/).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Output folder for checkpoints, vocabularies, copies of the config and schema, and the
        /// run log (timings.json); locked while the run writes it.
        #[arg(long, default_value = "runs/latest")]
        out: PathBuf,
        /// Print one JSON object (test_auc, test_gauc, test_logloss, train_samples_per_sec,
        /// adapter, …) as the last line of stdout.
        #[arg(long)]
        json: bool,
        /// Report the compiled step (dispatches per step, parameters).
        #[arg(long)]
        verbose: bool,
        /// Count malformed rows and go on (reported at the end) instead of stopping at the first.
        #[arg(long)]
        skip_bad_rows: bool,
        /// Continue the run in --out from its last checkpoint.
        #[arg(long)]
        resume: bool,
        /// Replace the run --out holds (a best or last checkpoint); refused without it.
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
    },
    /// Learn online from a stream of rows (a followed file, a folder of partitions or stdin),
    /// warm-started from a `train` run: progressive validation, new ids admitted, snapshots
    /// published for `wgrec serve`.
    Online(online::OnlineArgs),
    /// Draw a progressive-validation metric per window of several `wgrec online` logs (PNG).
    OnlineCurves(online::CurvesArgs),
    /// Off-policy evaluation of a target policy on a bandit log: IPS, SNIPS and DR estimates of its
    /// click rate with bootstrap intervals, beside the log's on-policy rate (docs/ope.md).
    Ope(ope::OpeArgs),
    /// Pre-train embeddings for the content and graph features (`pretrain graphsage`).
    Pretrain {
        #[command(subcommand)]
        command: pretrain::PretrainCommand,
    },
    /// Score a split (or any file in the model's schema) with a trained model and print its metrics.
    Eval {
        /// The training output folder.
        #[arg(long)]
        checkpoint: PathBuf,
        /// train, valid, test, or a file path.
        #[arg(long, default_value = "test")]
        split: String,
        /// The data folder (default: the one the model was trained on).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
        /// Count malformed rows and go on.
        #[arg(long)]
        skip_bad_rows: bool,
    },
    /// Write the predicted probabilities (one column per task) of every row of a file.
    Predict {
        /// The training output folder.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Rows in the model's schema.
        #[arg(long)]
        input: PathBuf,
        /// Where the probabilities go (TSV with a header p_<task>…), written atomically; refused
        /// when it is the input or lies inside a run folder.
        #[arg(long)]
        output: PathBuf,
        /// Count malformed rows and go on.
        #[arg(long)]
        skip_bad_rows: bool,
    },
    /// Serve a model over HTTP (JSON): micro-batched scoring, hot reload of published snapshots.
    Serve(serve::ServeArgs),
    /// Measure a trained run: dimensional collapse (spectra, information abundance), TIM's
    /// semantic-temporal correlation, task entanglement, loss gradients; writes report.md,
    /// report.json and PNG/SVG figures.
    Analyze {
        /// The training output folder.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The data folder (default: the one the model was trained on).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The report folder (default: <checkpoint>-analysis beside the run folder); a previous
        /// report there is replaced, any other non-empty folder is refused.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the report's numbers as one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Datasets: fetch the bundled one, write synthetic ones.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DataCommand {
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
enum BehaviourChoice {
    /// Every event.
    All,
    /// Events whose --label is 1.
    Positive,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Bundled {
    /// MovieLens-100K as click data (DATA.md §1), from the recbole 1.2.1 wheel.
    #[value(name = "ml-100k")]
    Ml100k,
    /// The Open Bandit Dataset sample (random and Bernoulli-TS logs), from the obp 0.4.1 wheel.
    Obd,
}

/// Mesa prints "XDG_RUNTIME_DIR is invalid or not set" twice on stderr when the variable is unset,
/// which reads as a wgrec error. Point it at a private 0700 folder under the temp dir (only one we
/// own and nobody else can enter, so no other user can plant a display socket there). Called first
/// in `main`, before any thread exists, which is what makes `set_var` sound.
pub fn quiet_mesa_runtime_dir() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let usable = |p: &std::path::Path| p.is_dir();
        if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| usable(std::path::Path::new(&v))) {
            return;
        }
        let Ok(me) = std::fs::metadata("/proc/self") else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("wgrec-runtime-{}", me.uid()));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let private = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == me.uid() && m.mode() & 0o077 == 0);
        if private {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devices { json } => devices::run(json),
        Command::Train {
            config,
            data,
            out,
            json,
            verbose,
            skip_bad_rows,
            resume,
            overwrite,
        } => train::train(train::TrainArgs {
            config,
            data,
            out,
            json,
            verbose,
            skip_bad_rows,
            resume,
            overwrite,
        }),
        Command::Eval {
            checkpoint,
            split,
            data,
            json,
            skip_bad_rows,
        } => eval::eval(&checkpoint, data, &split, json, skip_bad_rows),
        Command::Predict {
            checkpoint,
            input,
            output,
            skip_bad_rows,
        } => eval::predict(&checkpoint, &input, &output, skip_bad_rows),
        Command::Serve(args) => serve::serve(args),
        Command::Analyze {
            checkpoint,
            data,
            out,
            json,
        } => analyze::analyze(&checkpoint, data.as_deref(), out, json),
        Command::Bench {
            quick,
            repeats,
            filter,
            json,
            scaling,
            export_model,
            architecture,
        } => match (scaling, export_model) {
            (Some(dir), _) => bench::scaling(&dir, quick, repeats, json),
            (None, Some(dir)) => bench::export_model(&dir, quick, &architecture, json),
            (None, None) => bench::run(
                wgrec::bench::BenchOptions {
                    quick,
                    repeats,
                    filter,
                },
                json,
            ),
        },
        Command::Data { command } => run_data(command),
        Command::Pretrain { command } => pretrain::run(command),
        Command::Online(args) => online::run(args),
        Command::OnlineCurves(args) => online::curves(args),
        Command::Ope(args) => ope::run(args),
    }
}

/// Runs a `wgrec data` command.
fn run_data(command: DataCommand) -> anyhow::Result<()> {
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
