//! `wgrec train`: the trainer on a model file and a data folder, its progress and its summary.

use std::path::{Path, PathBuf};

use wgrec::train::{Report, TrainOptions, Trainer};
use wgrec::Gpu;

use super::progress::Progress;
use super::report::{metric_line, report_json};

/// The arguments of `wgrec train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The model file (TOML; see docs/config.md).
    #[arg(long)]
    pub config: PathBuf,
    /// The data folder (default: data/<config file stem>/).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output folder for checkpoints, vocabularies, copies of the config and schema, and the
    /// run log (timings.json); locked while the run writes it.
    #[arg(long, default_value = "runs/latest")]
    pub out: PathBuf,
    /// Print one JSON object (test_auc, test_gauc, test_logloss, train_samples_per_sec,
    /// adapter, …) as the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Report the compiled step (dispatches per step, parameters).
    #[arg(long)]
    pub verbose: bool,
    /// Count malformed rows and go on (reported at the end) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Replace the run --out holds (a best or last checkpoint); refused without it.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Never tune kernels on first use (the tune cache's choices still apply; see `wgrec tune`).
    #[arg(long)]
    pub no_tune: bool,
    /// Profile the training step per layer: after one warm-up step, --profile-steps profiled
    /// steps alternate with as many plain ones (the run is otherwise unchanged, bit for bit);
    /// the table (or, with --json, the "profile" object) follows the run's summary.
    #[arg(long)]
    pub profile: bool,
    /// Profiled steps of --profile (each row is their median).
    #[arg(long, requires = "profile", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub profile_steps: u32,
}

/// `wgrec train`.
pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    // Bounded read: a model file over the size limit is refused before it is read whole.
    let text = wgrec::config::ModelConfig::read_text(&args.config)?;
    let data = match &args.data {
        Some(d) => d.clone(),
        None => default_data(&args.config)?,
    };
    let gpu = super::tune::gpu()?;
    let mut trainer = new_trainer(&gpu, &args, &text, &data)?;
    report_leftovers(trainer.removed_leftovers());
    let missing = trainer.encoder().missing_content();
    report_missing_content(&missing);
    let config = trainer.graph().config();
    let tasks = config.metric_names();
    let outputs = config.outputs().into_iter().map(|o| o.name).collect();
    let memory = memory_report(&gpu, trainer.graph());
    if args.verbose {
        eprint!("{}", super::memory::memory_table(&memory));
    }
    eprintln!("training on {} with {}", data.display(), gpu.describe());
    let mut progress = Progress::new(tasks.clone(), outputs, args.verbose);
    if let Some(steps) = args.profile.then_some(args.profile_steps) {
        // Step 1 (of this run) warms up; then the window.
        let first = trainer.graph().step() + 2;
        let request = wgrec::graph::ProfileRequest {
            first,
            steps,
            host_timing: false,
        };
        trainer.graph_mut().start_profile(request);
    }
    let report = trainer.run(&mut progress)?;
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    print_summary(&report, &tasks, &args.out);
    let profile = (args.profile.then_some(args.profile_steps))
        .map(|_| profile_report(&gpu, trainer.graph_mut()))
        .transpose()?;
    if let (Some(p), false) = (&profile, args.json) {
        print!("{}", wgrec::bench::profile::table(p));
    }
    if args.json {
        let mut json = report_json(&report);
        if let Some(p) = &profile {
            json["profile"] = serde_json::to_value(p)?;
        }
        json["memory"] = super::memory::memory_json(&memory);
        json["kernels"] = serde_json::json!(wgrec::tune::choices_in_force(&gpu));
        add_missing_content(&mut json, &missing);
        println!("{json}");
    }
    Ok(())
}

/// The run's trainer on `gpu` (whose tune cache is applied), after a first-use tune of a fresh
/// run's untuned kernel choices where that is on (`super::tune::first_use_enabled`).
fn new_trainer<'g>(
    gpu: &'g Gpu,
    args: &TrainArgs,
    text: &str,
    data: &Path,
) -> anyhow::Result<Trainer<'g>> {
    let before = gpu.allocated_bytes();
    let options = TrainOptions {
        skip_bad_rows: args.skip_bad_rows,
        resume: args.resume,
        overwrite: args.overwrite,
        stop_after_epochs: None,
    };
    let name = args.config.display().to_string();
    let mut trainer = Trainer::new(gpu, text, &name, data, &args.out, options)?;
    if !args.resume && super::tune::first_use_enabled(gpu, !args.no_tune)? {
        super::tune::first_use(gpu, &mut trainer, gpu.allocated_bytes() - before)?;
    }
    Ok(trainer)
}

/// The content features' missing ids, under "missing_content" (none: no key).
fn add_missing_content(
    json: &mut serde_json::Value,
    missing: &[(String, wgrec::data::encode::MissingIds)],
) {
    if !missing.is_empty() {
        json["missing_content"] = serde_json::json!(missing
            .iter()
            .map(|(name, m)| (name.clone(), serde_json::json!(m)))
            .collect::<serde_json::Map<_, _>>());
    }
}

/// The profile window's report, with the ceilings measured now on the same device.
fn profile_report(
    gpu: &Gpu,
    graph: &mut wgrec::graph::Graph,
) -> anyhow::Result<wgrec::bench::profile::ProfileReport> {
    let profile = graph.take_profile().ok_or_else(|| {
        anyhow::anyhow!("--profile: the run ended before a step was profiled (it needs 2 steps)")
    })?;
    eprintln!("measuring the copy and FMA ceilings for the profile …");
    let ceilings = wgrec::bench::profile::ceilings(gpu, false, 10)?;
    Ok(wgrec::bench::profile::report(
        gpu.describe(),
        &profile,
        ceilings,
    ))
}

/// The statement of the compiled graph, as its memory check judged it.
fn memory_report(gpu: &Gpu, graph: &wgrec::graph::Graph) -> wgrec::graph::MemoryReport {
    let config = graph.config();
    let optimizers = wgrec::train::policy::TrainPolicy::new(&config.train).optimizers();
    let binding = wgrec::graph::MemoryLimits::of(gpu).binding;
    let shapes = &graph.plan().shapes;
    wgrec::graph::MemoryReport::new(config, shapes, graph.max_batch(), &optimizers, binding)
}

/// Per content feature (HashID, similarity), the training ids with no vector in its embedding
/// file: they encode as the feature's missing value 0.
fn report_missing_content(missing: &[(String, wgrec::data::encode::MissingIds)]) {
    for (name, m) in missing {
        eprintln!(
            "{name}: {} of {} training rows ({} distinct ids) have no embedding vector",
            m.missing_rows, m.rows, m.missing_ids
        );
    }
}

/// Names the temporaries of interrupted writes that taking the run folder removed.
fn report_leftovers(leftovers: &[PathBuf]) {
    if leftovers.is_empty() {
        return;
    }
    let names: Vec<String> = leftovers.iter().map(|p| p.display().to_string()).collect();
    eprintln!(
        "removed {} temporary file(s) left by an interrupted write: {}",
        names.len(),
        names.join(", ")
    );
}

/// The run's outcome on stderr: test metrics, throughput, where the checkpoints are, the rows.
fn print_summary(report: &Report, tasks: &[String], out: &Path) {
    if let Some(test) = &report.test {
        eprintln!(
            "test (best epoch {}): {}",
            report.state.best_epoch,
            metric_line(tasks, test)
        );
    }
    eprintln!(
        "{:.0} training samples/s on {}; checkpoints in {}{}",
        report.train_samples_per_sec,
        report.adapter,
        out.display(),
        if report.bad_rows > 0 {
            format!("; {} bad rows skipped", report.bad_rows)
        } else {
            String::new()
        }
    );
    let rows: Vec<String> = wgrec::data::SPLIT_NAMES
        .iter()
        .filter_map(|split| report.rows.get(*split).map(|r| (split, r)))
        .map(|(split, r)| format!("{split} {}/{}/{}", r.read, r.used(), r.skipped))
        .collect();
    eprintln!("rows read/used/skipped: {}", rows.join(", "));
}

/// With no `--data`, a model file `configs/<name>.toml` reads `data/<name>/`.
pub(super) fn default_data(config: &Path) -> anyhow::Result<PathBuf> {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let guess = PathBuf::from("data").join(&stem);
    if guess.join("schema.toml").is_file() {
        return Ok(guess);
    }
    let splits: Vec<String> = wgrec::data::SPLIT_NAMES
        .iter()
        .map(|s| format!("{s}.tsv"))
        .collect();
    anyhow::bail!(
        "no --data given and {} has no schema.toml: pass --data <folder with schema.toml, {}>",
        guess.display(),
        splits.join(", ")
    )
}
