//! `wgrec online`: the streaming trainer (see `wgrec::online`) with its progress lines, signals and
//! summary.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use wgrec::data::IdMapStats;
use wgrec::online::rolling::WindowReport;
use wgrec::online::source::SourceSpec;
use wgrec::online::{
    OnlineObserver, OnlineOptions, OnlineReport, OnlineTrainer, PublishOptions, StopReason,
};
use wgrec::Gpu;

/// The arguments of `wgrec online`.
#[derive(Debug, Args)]
pub struct OnlineArgs {
    /// Where rows come from: a file (followed with --follow), a folder of time-partitioned files
    /// (read in name order, each once), or `-` for standard input.
    #[arg(long)]
    stream: String,
    /// The `train` run to warm-start from (its best checkpoint with optimizer state, and its
    /// vocabularies). A new online run needs it.
    #[arg(long, conflicts_with = "resume")]
    from: Option<PathBuf>,
    /// The online run's folder (checkpoint, stream.jsonl log, copies of the model and schema).
    #[arg(long)]
    out: PathBuf,
    /// Continue the online run in --out from its last checkpoint (after a stop or a crash).
    #[arg(long)]
    resume: bool,
    /// Replace an online run --out holds.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Wait for new rows at the end of the source (tail -f) until stopped.
    #[arg(long)]
    follow: bool,
    /// With --follow: end after this many seconds without a new row.
    #[arg(long, requires = "follow")]
    idle_exit: Option<f64>,
    /// Rows per window of the rolling progressive-validation metrics.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// Checkpoint every this many batches (and when the stream ends or is stopped).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    /// Publish serving snapshots into this folder (read by `wgrec serve`).
    #[arg(long)]
    publish: Option<PathBuf>,
    /// Publish every this many batches.
    #[arg(long, requires = "publish")]
    publish_every_steps: Option<u64>,
    /// Publish when this many seconds have passed since the last snapshot.
    #[arg(long, requires = "publish")]
    publish_every_secs: Option<f64>,
    /// Snapshots kept in the publish folder.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    keep: u64,
    /// Score only: the frozen model on the same stream (no training, no new ids; nothing to
    /// publish).
    #[arg(long, conflicts_with = "publish")]
    frozen: bool,
    /// Learn, but give new ids no rows (they read the OOV row): the baseline for admission.
    #[arg(long, conflicts_with = "frozen")]
    no_admission: bool,
    /// Count malformed rows and go on instead of stopping at the first.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Stop after this many batches of this invocation (checkpointed, resumable).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Print one JSON summary object as the last line of stdout.
    #[arg(long)]
    json: bool,
}

fn seconds(s: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| anyhow::anyhow!("{flag} {s}: not a duration"))
}

fn options(args: &OnlineArgs) -> anyhow::Result<OnlineOptions> {
    let publish = match &args.publish {
        None => None,
        Some(dir) => Some(PublishOptions {
            dir: dir.clone(),
            every_steps: args.publish_every_steps,
            every: args
                .publish_every_secs
                .map(|s| seconds(s, "--publish-every-secs"))
                .transpose()?,
            keep: args.keep as usize,
        }),
    };
    Ok(OnlineOptions {
        source: SourceSpec::parse(&args.stream),
        from: args.from.clone(),
        out: args.out.clone(),
        resume: args.resume,
        overwrite: args.overwrite,
        follow: args.follow,
        idle_exit: args
            .idle_exit
            .map(|s| seconds(s, "--idle-exit"))
            .transpose()?,
        window: args.window,
        checkpoint_every: args.checkpoint_every,
        publish,
        frozen: args.frozen,
        no_admission: args.no_admission,
        skip_bad_rows: args.skip_bad_rows,
        max_steps: args.max_steps,
    })
}

/// SIGINT and SIGTERM set the stop flag (the run finishes its batch, checkpoints and exits 0);
/// a second SIGINT while stopping ends the process at once.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(&stop))?;
    signal_hook::flag::register(SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(SIGTERM, Arc::clone(&stop))?;
    Ok(stop)
}

/// Prints a line per window and per snapshot on stderr.
struct Lines;

impl OnlineObserver for Lines {
    fn window(&mut self, w: &WindowReport, ids: &[IdMapStats], rows_per_sec: f64) {
        let mut line = format!("window {} rows {}-{}", w.window, w.rows[0], w.rows[1]);
        for (task, m) in &w.tasks {
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
            line.push_str(&format!(
                " | {task}: auc {} logloss {} calibration {}",
                f(m.auc),
                f(m.logloss),
                f(m.calibration)
            ));
        }
        for s in ids {
            line.push_str(&format!(
                " | {}: {} live, +{} admitted, {} evicted, {} expired, {} oov",
                s.name,
                s.live,
                s.counters.admitted,
                s.counters.evicted,
                s.counters.expired,
                s.counters.oov_lookups
            ));
        }
        eprintln!("{line} | {rows_per_sec:.0} rows/s");
    }

    fn published(&mut self, version: u64, path: &std::path::Path) {
        eprintln!("published snapshot {version}: {}", path.display());
    }
}

/// `wgrec online`.
pub fn run(args: OnlineArgs) -> anyhow::Result<()> {
    let options = options(&args)?;
    let stop = stop_flag()?;
    let gpu = super::tune::gpu()?;
    let mut trainer = OnlineTrainer::start(&gpu, options)?;
    eprintln!(
        "streaming {} into {} with {}",
        SourceSpec::parse(&args.stream).describe(),
        args.out.display(),
        gpu.describe()
    );
    let report = trainer.run(&stop, &mut Lines)?;
    summary(&report);
    if args.json {
        println!("{}", report_json(&report, &gpu));
    }
    Ok(())
}

fn summary(r: &OnlineReport) {
    let why = match r.reason {
        StopReason::SourceEnded => "the stream ended",
        StopReason::Stopped => "stopped by a signal",
        StopReason::StepLimit => "the step limit was reached",
    };
    eprintln!(
        "{why}: {} batches, {} rows ({:.0} rows/s), {} steps in all; checkpointed",
        r.steps, r.rows, r.rows_per_sec, r.total_steps
    );
    if r.bad_rows > 0 {
        eprintln!("{} malformed rows skipped", r.bad_rows);
    }
}

fn report_json(r: &OnlineReport, gpu: &Gpu) -> serde_json::Value {
    serde_json::json!({
        "reason": format!("{:?}", r.reason),
        "steps": r.steps,
        "rows": r.rows,
        "rows_per_sec": r.rows_per_sec,
        "total_steps": r.total_steps,
        "windows": r.windows,
        "ids": r.ids,
        "published": r.published,
        "bad_rows": r.bad_rows,
        "adapter": gpu.describe(),
    })
}

/// The arguments of `wgrec online-curves`.
#[derive(Debug, Args)]
pub struct CurvesArgs {
    /// A log to draw, as LABEL=PATH (an online run's stream.jsonl); repeat for several lines.
    #[arg(long = "log", required = true, value_name = "LABEL=PATH")]
    logs: Vec<String>,
    /// The window metric: auc, logloss, calibration, mean_p or observed_rate.
    #[arg(long, default_value = "auc")]
    metric: String,
    /// The task (default: the first task of the first log's first window).
    #[arg(long)]
    task: Option<String>,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
}

/// `wgrec online-curves`: a metric per window of several streaming logs in one PNG.
pub fn curves(args: CurvesArgs) -> anyhow::Result<()> {
    let logs = args
        .logs
        .iter()
        .map(|l| match l.split_once('=') {
            Some((label, path)) if !label.is_empty() && !path.is_empty() => {
                Ok((label.to_string(), PathBuf::from(path)))
            }
            _ => Err(anyhow::anyhow!("--log {l:?}: expected LABEL=PATH")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let task = match args.task {
        Some(t) => t,
        None => first_task(&logs[0].1)?,
    };
    wgrec::online::curves::plot_curves(&logs, &args.metric, &task, &args.out)?;
    eprintln!("wrote {} ({} of {task})", args.out.display(), args.metric);
    Ok(())
}

/// The first task named by a window line of `log`.
fn first_task(log: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(log)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", log.display()))?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<WindowReport>(l).ok())
        .find_map(|w| w.tasks.keys().next().cloned())
        .ok_or_else(|| anyhow::anyhow!("{}: no window line; say --task", log.display()))
}
