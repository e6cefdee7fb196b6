//! `wgrec tune`: times each kernel's variants on this device with the model at hand and stores the
//! winners in the tune cache, which every later `train`, `eval`, `serve` and `bench` on the device
//! compiles with (`wgrec::tune` has the method).

use std::path::PathBuf;

use clap::Args;
use wgrec::tune::{self, TuneCache, TuneOptions, TuneReport};
use wgrec::Gpu;

/// The arguments of `wgrec tune`.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// The model file to tune for.
    #[arg(
        long,
        required_unless_present = "bench_model",
        conflicts_with = "bench_model"
    )]
    config: Option<PathBuf>,
    /// The data folder (default: data/<config file stem>/); its training split's first batches are
    /// the timed batches.
    #[arg(long, conflicts_with = "bench_model")]
    data: Option<PathBuf>,
    /// Tune the bench model instead (`wgrec bench --export-model`'s, the one compared with PyTorch)
    /// on its synthetic batches.
    #[arg(long)]
    bench_model: bool,
    /// With --bench-model: its smoke size (as `wgrec bench --quick`).
    #[arg(long, requires = "bench_model")]
    quick: bool,
    /// With --bench-model: its architecture (as `wgrec bench --architecture`).
    #[arg(long, requires = "bench_model", default_value = "single")]
    architecture: String,
    /// The tune cache to update (default: $WGREC_TUNE_CACHE, else ~/.cache/wgrec/tune.json).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Training steps per timed window.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    steps: u32,
    /// Interleaved rounds (each variant timed once per round; the median decides).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Batches of the training split to cycle through.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    batches: u32,
    /// A variant must beat the default by more than this fraction of its step time.
    #[arg(long, default_value_t = 0.03)]
    margin: f64,
    /// Count malformed rows and go on instead of stopping at the first.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `wgrec tune`.
pub fn run(args: TuneArgs) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&args.margin) {
        anyhow::bail!("--margin {} must be in [0, 1)", args.margin);
    }
    let cache_path = args
        .cache
        .clone()
        .or_else(tune::cache::default_path)
        .ok_or_else(|| {
            anyhow::anyhow!("no tune cache path: pass --cache or set WGREC_TUNE_CACHE or HOME")
        })?;
    let gpu = Gpu::new()?;
    let (inputs, what) = inputs(&gpu, &args)?;
    eprintln!("tuning {what} on {}", gpu.describe());
    let options = TuneOptions {
        steps: args.steps as usize,
        rounds: args.rounds as usize,
        margin: args.margin,
    };
    let device = tune::DeviceKey::of(&gpu);
    let report = tune::tune_with(&gpu, &inputs.model(), options, &mut |t| {
        eprintln!("{}", trial_line(t));
        // Saved as it goes: a tune cut short (a timeout, Ctrl-C) keeps what it measured.
        if let Err(e) = save_entries(&cache_path, vec![t.entry(&device)]) {
            eprintln!("warning: {e:#}");
        }
    })?;
    save(&cache_path, &report)?;
    if args.json {
        let json = serde_json::json!({"cache": cache_path, "report": report});
        println!("{json}");
    } else {
        print!("{}", table(&report));
        println!("cache: {}", cache_path.display());
    }
    Ok(())
}

/// The model to tune and its name: the model file on its data, or the bench model.
fn inputs(gpu: &Gpu, args: &TuneArgs) -> anyhow::Result<(wgrec::train::TuneInputs, String)> {
    let batches = args.batches as usize;
    let Some(config) = &args.config else {
        let shape = super::bench::shape(args.quick, &args.architecture)?;
        let inputs = wgrec::bench::train::tune_inputs(&shape, batches)?;
        return Ok((inputs, "the bench model".into()));
    };
    let text = wgrec::config::ModelConfig::read_text(config)?;
    let data = match &args.data {
        Some(d) => d.clone(),
        None => super::train::default_data(config)?,
    };
    let file = config.display().to_string();
    let inputs = wgrec::train::tune_inputs(gpu, &text, &file, &data, args.skip_bad_rows, batches)?;
    Ok((inputs, file))
}

/// Merges `report` into the cache at `path` (a corrupt one is replaced, with its warning printed).
pub fn save(path: &std::path::Path, report: &TuneReport) -> anyhow::Result<()> {
    save_entries(path, report.entries())
}

/// Merges `entries` into the cache at `path` (a corrupt one is replaced, with its warning printed).
fn save_entries(path: &std::path::Path, entries: Vec<tune::Entry>) -> anyhow::Result<()> {
    let (mut cache, warnings) = TuneCache::load(path);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    cache.merge(entries);
    cache.save(path)?;
    Ok(())
}

/// One measured choice: each variant's median step, the one kept.
fn trial_line(t: &tune::Trial) -> String {
    let times: Vec<String> = (t.ms.iter())
        .map(|(v, ms)| format!("{v} {ms:.3} ms"))
        .collect();
    format!(
        "{} {}: {} → {}",
        t.family.name(),
        t.class,
        times.join(", "),
        t.winner
    )
}

/// The report as a table: each choice, each variant's median step, the winner.
pub fn table(report: &TuneReport) -> String {
    let mut out = String::new();
    for t in &report.trials {
        out += &trial_line(t);
        out.push('\n');
    }
    for (family, class, why) in &report.skipped {
        out += &format!("{} {}: not tuned ({why})\n", family.name(), class);
    }
    if report.trials.is_empty() && report.skipped.is_empty() {
        out += "this model makes no kernel choice\n";
    }
    out
}

/// The largest model (bytes wgrec allocated to compile it) a first-use tune measures: tuning
/// compiles the model once per variant tried, which for bigger models belongs in an explicit
/// `wgrec tune`, not in the first minutes of a training run.
const FIRST_USE_MAX_BYTES: u64 = 2 << 30;

/// Gives `gpu` the tune cache's choices for it before a model compiles; prints the cache's warnings.
pub fn apply_cache(gpu: &Gpu) {
    for w in tune::cache::apply(gpu, None) {
        eprintln!("warning: {w}");
    }
}

/// The device every command that compiles kernels uses: the chosen adapter with the tune cache's
/// choices for it (`WGREC_VARIANT` overrides both).
pub fn gpu() -> anyhow::Result<Gpu> {
    let gpu = Gpu::new()?;
    apply_cache(&gpu);
    Ok(gpu)
}

/// Whether a fresh `train` tunes the kernels it has no cached choice for: `--no-tune` says no;
/// else `WGREC_TUNE` (1/on or 0/off); else yes on a GPU and no on a CPU driver (lavapipe), where
/// the variants' differences are within the noise of a shared CPU and a tune would make a fresh
/// machine's results depend on that noise (`wgrec tune` still tunes there when asked).
pub fn first_use_enabled(gpu: &Gpu, allowed: bool) -> anyhow::Result<bool> {
    if !allowed {
        return Ok(false);
    }
    match std::env::var("WGREC_TUNE").ok().as_deref() {
        None | Some("") => Ok(gpu.info().device_type != wgpu::DeviceType::Cpu),
        Some("1" | "on" | "true") => Ok(true),
        Some("0" | "off" | "false") => Ok(false),
        Some(other) => anyhow::bail!("WGREC_TUNE={other:?} is not valid: use 1/on or 0/off"),
    }
}

/// The first-use tune of a fresh run (see [`first_use_enabled`]): measures the choices the compiled
/// model makes that the cache does not answer, stores the winners and recompiles the model with them.
pub fn first_use(
    gpu: &Gpu,
    trainer: &mut wgrec::train::Trainer<'_>,
    model_bytes: u64,
) -> anyhow::Result<()> {
    let missing = tune::untuned(gpu);
    if missing.is_empty() {
        return Ok(());
    }
    let Some(path) = tune::cache::default_path() else {
        eprintln!("note: no tune cache path (set WGREC_TUNE_CACHE or HOME): default kernels");
        return Ok(());
    };
    if model_bytes > FIRST_USE_MAX_BYTES {
        eprintln!(
            "note: {} kernel choice(s) untuned; the model is too large for a first-use tune: \
             run `wgrec tune` once for it",
            missing.len()
        );
        return Ok(());
    }
    eprintln!(
        "tuning this model's kernel choices on {} ({} not in the tune cache: first use of these \
         shapes here; --no-tune skips)",
        gpu.describe(),
        missing.len()
    );
    let device = tune::DeviceKey::of(gpu);
    let report = trainer.tune_kernels(TuneOptions::default(), &mut |t| {
        eprintln!("{}", trial_line(t));
        if let Err(e) = save_entries(&path, vec![t.entry(&device)]) {
            eprintln!("warning: {e:#}");
        }
    })?;
    for (family, class, why) in &report.skipped {
        eprintln!("{} {}: not tuned ({why})", family.name(), class);
    }
    save(&path, &report)
}
