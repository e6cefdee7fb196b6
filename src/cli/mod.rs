//! The command line: argument parsing and the commands. The only place that prints.

mod analyze;
mod bench;
mod data;
mod data_command;
mod devices;
mod eval;
mod memory;
mod online;
mod ope;
mod policy;
mod pretrain;
mod progress;
mod report;
mod serve;
mod simulate;
mod train;
mod tune;

use clap::{Parser, Subcommand};
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
        /// Also show each kernel family's variants and the tune cache's choices for each adapter.
        #[arg(long)]
        verbose: bool,
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
        /// With --scaling: only this kernel sweep (no whole-model sweeps); writes
        /// scaling_<sweep>.json and its chart into DIR, leaving a whole run's scaling.json there.
        #[arg(long, requires = "scaling", value_parser = ["rows", "batch", "tim"])]
        sweep: Option<String>,
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
        /// Instead of the suite, profile the bench model's training step per layer (batch 1024;
        /// 256 with --quick): each layer's forward, backward and update, the loss, the optimizer
        /// and the parameter copies, with their share of the step and their rate against the
        /// ceilings.
        #[arg(long, conflicts_with_all = ["scaling", "export_model"])]
        profile: bool,
        /// Profiled steps of --profile (each row is their median).
        #[arg(long, requires = "profile", default_value_t = 10,
              value_parser = clap::value_parser!(u32).range(1..=1000))]
        profile_steps: u32,
    },
    /// Train a model file on a data folder (schema.toml, train.tsv, valid.tsv, test.tsv); checkpoints
    /// and metrics go to --out.
    Train(train::TrainArgs),
    /// Time each kernel's variants on this device with a model file's own training step and batches,
    /// and keep the fastest in the tune cache (keyed by adapter, driver, wgrec version and shape
    /// class) for every later compile on this device.
    Tune(tune::TuneArgs),
    /// State the memory a model file needs on a data folder (bytes per table, storage group,
    /// activations, dense parameters, total) and whether this device holds it, without training;
    /// exits non-zero when it does not fit.
    Plan(memory::PlanArgs),
    /// Learn online from a stream of rows (a followed file, a folder of partitions or stdin),
    /// warm-started from a `train` run: progressive validation, new ids admitted, snapshots
    /// published for `wgrec serve`.
    Online(online::OnlineArgs),
    /// Draw a progressive-validation metric per window of several `wgrec online` logs (PNG).
    OnlineCurves(online::CurvesArgs),
    /// Off-policy evaluation of a target policy on a bandit log: IPS, SNIPS and DR estimates of its
    /// click rate with bootstrap intervals, beside the log's on-policy rate (docs/ope.md).
    Ope(ope::OpeArgs),
    /// Greedy, ε-greedy, UCB or Thompson ranking policies over a trained model, written as `wgrec
    /// ope`'s policy and reward-model files (docs/ope.md).
    Policy(policy::PolicyArgs),
    /// Closed-loop simulation with a planted truth: greedy, ε-greedy, UCB and Thompson sampling
    /// against an oracle over several seeds; regret and click curves (docs/simulate.md).
    Simulate(simulate::SimulateArgs),
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
        /// Rank the rows as requests by this policy (greedy, epsilon:<ε>, ucb:<c>, thompson)
        /// and add score_<task>, rank_<task> and, with an uncertainty head, mean_<task> and
        /// sd_<task> (logits) after the unchanged p_<task> columns.
        #[arg(long, value_parser = wgrec::explore::Policy::parse)]
        policy: Option<wgrec::explore::Policy>,
        /// The seed of the policy's draws.
        #[arg(long, default_value_t = 1, requires = "policy")]
        seed: u64,
        /// With --policy: consecutive rows with the same value in this column are one request
        /// (one Thompson draw, one ε coin); without it each row is its own request.
        #[arg(long, requires = "policy")]
        request_column: Option<String>,
        /// With --policy: rank by bid · score, the bid of each row read from this numeric column
        /// of the file (a column of the model's schema; finite and ≥ 0).
        #[arg(long, requires = "policy")]
        bid_column: Option<String>,
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
        command: data_command::DataCommand,
    },
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
        Command::Devices { json, verbose } => devices::run(json, verbose),
        Command::Tune(args) => tune::run(args),
        Command::Train(args) => train::train(args),
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
            policy,
            seed,
            request_column,
            bid_column,
        } => {
            let ranking = policy.map(|policy| wgrec::serve::rank::FileRanking {
                policy,
                seed,
                request_column,
                bid_column,
            });
            eval::predict(&checkpoint, &input, &output, skip_bad_rows, ranking)
        }
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
            sweep,
            export_model,
            architecture,
            profile,
            profile_steps,
        } => match (scaling, export_model) {
            _ if profile => bench::profile(quick, profile_steps, json),
            (Some(dir), _) => bench::scaling(&dir, (quick, repeats), sweep.as_deref(), json),
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
        Command::Data { command } => data_command::run_data(command),
        Command::Pretrain { command } => pretrain::run(command),
        Command::Plan(args) => memory::plan(args),
        Command::Online(args) => online::run(args),
        Command::OnlineCurves(args) => online::curves(args),
        Command::Ope(args) => ope::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Simulate(args) => simulate::run(args),
    }
}
