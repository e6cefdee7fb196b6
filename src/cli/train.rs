//! `wgrec train`, `wgrec eval`, `wgrec predict`: the trainer and the predictor on files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use wgrec::data::ReadOptions;
use wgrec::metrics::TaskMetrics;
use wgrec::run::RunFolder;
use wgrec::serve::Predictor;
use wgrec::train::{Event, Observer, Report, TrainOptions, Trainer};
use wgrec::Gpu;

/// The arguments of `wgrec train`.
pub struct TrainArgs {
    pub config: PathBuf,
    pub data: Option<PathBuf>,
    pub out: PathBuf,
    pub json: bool,
    pub verbose: bool,
    pub skip_bad_rows: bool,
    pub resume: bool,
    pub overwrite: bool,
}

/// Draws a progress bar on a terminal, prints plain lines otherwise (all on stderr).
struct Progress {
    bar: Option<ProgressBar>,
    verbose: bool,
    tasks: Vec<String>,
    started: Instant,
}

impl Progress {
    fn new(tasks: Vec<String>, verbose: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .expect("a valid template"),
            );
            bar
        });
        Progress {
            bar,
            verbose,
            tasks,
            started: Instant::now(),
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

fn metric_line(tasks: &[String], metrics: &[TaskMetrics]) -> String {
    let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    tasks
        .iter()
        .zip(metrics)
        .map(|(t, m)| {
            format!(
                "{t}: auc {} gauc {} logloss {} calibration {}",
                fmt(m.auc),
                fmt(m.gauc.map(|g| g.value)),
                fmt(m.logloss),
                fmt(m.calibration)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Observer for Progress {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Compiled {
                dispatches,
                dense_params,
                embedding_rows,
            } => {
                if self.verbose {
                    self.line(format!(
                        "compiled: {dispatches} dispatches and 1 submit per training step, \
                         {dense_params} dense parameters, {embedding_rows} embedding rows"
                    ));
                }
            }
            Event::Step {
                epoch,
                step,
                samples,
                samples_per_sec,
                loss,
            } => {
                let loss: Vec<String> = self
                    .tasks
                    .iter()
                    .zip(loss)
                    .map(|(t, l)| format!("{t} {l:.4}"))
                    .collect();
                let text = format!(
                    "epoch {epoch} step {step}: {samples} samples, {samples_per_sec:.0} samples/s, \
                     loss {}",
                    loss.join(", ")
                );
                match &self.bar {
                    Some(bar) => bar.set_message(text),
                    None => eprintln!("{text}"),
                }
            }
            Event::Epoch {
                epoch,
                valid,
                best,
                samples_per_sec,
            } => {
                self.line(format!(
                    "epoch {epoch} done ({samples_per_sec:.0} samples/s, {:.0} s in all): valid {}{}",
                    self.started.elapsed().as_secs_f64(),
                    metric_line(&self.tasks, valid),
                    if best { " (best)" } else { "" }
                ));
            }
        }
    }
}

/// `{"name": value}` per task when there are several, the value itself for one.
fn per_task(tasks: &[String], values: Vec<Value>) -> Value {
    if tasks.len() == 1 {
        return values.into_iter().next().unwrap_or(Value::Null);
    }
    let mut map = Map::new();
    for (t, v) in tasks.iter().zip(values) {
        map.insert(t.clone(), v);
    }
    Value::Object(map)
}

fn metrics_json(
    prefix: &str,
    tasks: &[String],
    metrics: &[TaskMetrics],
    out: &mut Map<String, Value>,
) {
    let pick = |f: &dyn Fn(&TaskMetrics) -> Option<f64>| -> Value {
        per_task(tasks, metrics.iter().map(|m| json!(f(m))).collect())
    };
    out.insert(format!("{prefix}_auc"), pick(&|m| m.auc));
    out.insert(format!("{prefix}_gauc"), pick(&|m| m.gauc.map(|g| g.value)));
    out.insert(format!("{prefix}_logloss"), pick(&|m| m.logloss));
    out.insert(format!("{prefix}_calibration"), pick(&|m| m.calibration));
    out.insert(
        format!("{prefix}_rows"),
        json!(metrics.first().map_or(0, |m| m.rows)),
    );
}

fn report_json(report: &Report) -> Value {
    let mut out = Map::new();
    if let Some(test) = &report.test {
        metrics_json("test", &report.tasks, test, &mut out);
    }
    if let Some(valid) = &report.valid {
        metrics_json("valid", &report.tasks, valid, &mut out);
    }
    out.insert(
        "train_samples_per_sec".into(),
        json!(report.train_samples_per_sec),
    );
    out.insert("adapter".into(), json!(report.adapter));
    out.insert("epochs".into(), json!(report.state.epochs_done));
    out.insert("best_epoch".into(), json!(report.state.best_epoch));
    out.insert("steps".into(), json!(report.steps));
    out.insert(
        "dispatches_per_step".into(),
        json!(report.dispatches_per_step),
    );
    out.insert("bad_rows".into(), json!(report.bad_rows));
    let rows: serde_json::Map<String, Value> = report
        .rows
        .iter()
        .map(|(split, r)| {
            let counts = json!({"read": r.read, "used": r.used(), "skipped": r.skipped});
            (split.clone(), counts)
        })
        .collect();
    out.insert("rows".into(), Value::Object(rows));
    Value::Object(out)
}

/// `wgrec train`.
pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    // Bounded read: a model file over the size limit is refused before it is read whole.
    let text = wgrec::config::ModelConfig::read_text(&args.config)?;
    let data = match args.data {
        Some(d) => d,
        None => default_data(&args.config)?,
    };
    let gpu = Gpu::new()?;
    let mut trainer = Trainer::new(
        &gpu,
        &text,
        &args.config.display().to_string(),
        &data,
        &args.out,
        TrainOptions {
            skip_bad_rows: args.skip_bad_rows,
            resume: args.resume,
            overwrite: args.overwrite,
            stop_after_epochs: None,
        },
    )?;
    let leftovers = trainer.removed_leftovers();
    if !leftovers.is_empty() {
        let names: Vec<String> = leftovers.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "removed {} temporary file(s) left by an interrupted write: {}",
            names.len(),
            names.join(", ")
        );
    }
    let tasks: Vec<String> = trainer
        .graph()
        .config()
        .tasks
        .iter()
        .map(|t| t.name.clone())
        .collect();
    eprintln!("training on {} with {}", data.display(), gpu.describe());
    let mut progress = Progress::new(tasks.clone(), args.verbose);
    let report = trainer.run(&mut progress)?;
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    if let Some(test) = &report.test {
        eprintln!(
            "test (best epoch {}): {}",
            report.state.best_epoch,
            metric_line(&tasks, test)
        );
    }
    eprintln!(
        "{:.0} training samples/s on {}; checkpoints in {}{}",
        report.train_samples_per_sec,
        report.adapter,
        args.out.display(),
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
    if args.json {
        println!("{}", report_json(&report));
    }
    Ok(())
}

/// With no `--data`, a model file `configs/<name>.toml` reads `data/<name>/`.
fn default_data(config: &Path) -> anyhow::Result<PathBuf> {
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

/// `wgrec eval`.
pub fn eval(
    checkpoint: &Path,
    data: Option<PathBuf>,
    split: &str,
    json_out: bool,
    skip_bad_rows: bool,
) -> anyhow::Result<()> {
    let gpu = Gpu::new()?;
    let mut predictor = Predictor::load(&gpu, checkpoint)?;
    let file = if Path::new(split).is_file() {
        PathBuf::from(split)
    } else {
        match split {
            "train" | "valid" | "test" => {}
            other => anyhow::bail!(
                "--split {other:?}: train, valid, test or a file in the model's schema"
            ),
        };
        let data = match data {
            Some(d) => d,
            None => {
                let recorded = RunFolder::new(checkpoint).data_path_file();
                PathBuf::from(std::fs::read_to_string(&recorded).with_context(|| {
                    format!("no --data given and {} is unreadable", recorded.display())
                })?)
            }
        };
        wgrec::data::split_path(&data, split)?
    };
    let tasks: Vec<String> = predictor.tasks().iter().map(|s| s.to_string()).collect();
    let options = ReadOptions {
        batch_rows: predictor.max_batch() as usize,
        skip_bad_rows,
        ..ReadOptions::default()
    };
    let (metrics, bad) = predictor.evaluate_file(&gpu, &file, options)?;
    eprintln!(
        "{} ({}): {}",
        file.display(),
        predictor.checkpoint().display(),
        metric_line(&tasks, &metrics)
    );
    if bad > 0 {
        eprintln!("{bad} bad rows skipped");
    }
    if json_out {
        let mut out = Map::new();
        metrics_json(metric_prefix(split, &file), &tasks, &metrics, &mut out);
        out.insert("split".into(), json!(split));
        out.insert("adapter".into(), json!(gpu.describe()));
        out.insert("bad_rows".into(), json!(bad));
        println!("{}", Value::Object(out));
    }
    Ok(())
}

/// The prefix of `eval`'s JSON metrics: the split's name (`test_auc`, `valid_auc`,
/// `train_auc`), or `file` for a file given by path, whose role wgrec cannot know.
fn metric_prefix(split: &str, file: &Path) -> &'static str {
    match split {
        _ if Path::new(split) == file => "file",
        "train" => "train",
        "valid" => "valid",
        _ => "test",
    }
}

/// `wgrec predict`.
pub fn predict(
    checkpoint: &Path,
    input: &Path,
    output: &Path,
    skip_bad_rows: bool,
) -> anyhow::Result<()> {
    let gpu = Gpu::new()?;
    let mut predictor = Predictor::load(&gpu, checkpoint)?;
    let start = Instant::now();
    let (rows, bad) = predictor.predict_file(&gpu, input, output, skip_bad_rows)?;
    eprintln!(
        "{rows} rows scored into {} ({:.0} rows/s){}",
        output.display(),
        rows as f64 / start.elapsed().as_secs_f64().max(1e-9),
        if bad.count > 0 {
            format!("; {} bad rows skipped", bad.count)
        } else {
            String::new()
        }
    );
    Ok(())
}
