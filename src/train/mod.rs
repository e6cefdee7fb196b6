//! The trainer: a model file and a data folder in, a trained model and its metrics out.
//!
//! # Files
//! The data folder holds `schema.toml` and the splits `train.tsv`, `valid.tsv`, `test.tsv` (what
//! `wgrec data fetch` and `wgrec data synth` write). The output folder (the run folder, see
//! [`run_folder`]) is not touched until everything that can fail before training has succeeded:
//! the encoder is fitted in memory and the graph built first. Then [`Trainer::new`] takes the
//! folder's `lock` (one writer per folder; held until the trainer is dropped), removes
//! temporaries of interrupted writes, and writes `config.toml` and `schema.toml` (copies),
//! `encoder/` (vocabularies and numeric fits, fitted on the training split and never changed) and
//! `data-path.txt` (the data folder, for `eval`). Per epoch [`Trainer::run`] writes
//! `last.safetensors` (the whole training state: tables with their Adagrad accumulators, dense
//! weights, Adam moments, BatchNorm statistics, step and epoch counters), `best.safetensors` when
//! validation AUC improves, and `timings.json` (wall-clock seconds per epoch, kept out of the
//! checkpoints so that identical runs give byte-identical checkpoints). Each of these is written
//! to a temporary file, fsynced and renamed (`checkpoint::write_atomically`), so a crash leaves
//! the previous one intact.
//!
//! # Schedule
//! Epochs walk the training split `batch_size` rows per step, in file order (time order for the
//! bundled protocol, as online learning would see it) or, with `shuffle_window > 0`, shuffled
//! within windows of that many batches (a streaming shuffle: one window in memory, reseeded each
//! epoch from the run's seed); the last batch of a window may be smaller. After each epoch the validation split is scored;
//! training stops early after `patience` epochs without a better validation AUC (of the first
//! task), or after `steps` steps in all. The test split is scored with the best checkpoint.
//!
//! # Resume
//! [`TrainOptions::resume`] continues from `last.safetensors`: the state it restores is everything a
//! step reads, dropout masks are keyed by (seed, step) and the data order is the file's, so
//! 1 epoch + stop + resume 1 epoch gives the same bytes as 2 epochs straight (a test checks it).
//! A resume with a model file other than the run's is refused before anything is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub mod policy;
pub mod run_folder;
pub mod timings;

use run_folder::{RunLock, BEST, LAST, TIMINGS};
use timings::Timings;

use crate::checkpoint::Checkpoint;
use crate::config::{FeatureKind, ModelConfig};
use crate::data::encode::Encoder;
use crate::data::loader::{Loader, Shuffle};
use crate::data::{ReadOptions, Schema};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::graph::{FeatureShape, Graph, Prepared};
use crate::metrics::{self, MetricsAccumulator, TaskMetrics, UserIds};

/// The split files of a data folder.
pub const SPLITS: [&str; 3] = ["train.tsv", "valid.tsv", "test.tsv"];
/// Ids per sample a bag feature's buffers are sized for, on average over a batch (a batch of `B`
/// rows holds up to `B · BAG_IDS` ids per bag feature; single bags may be longer). 64 × 4 bytes per
/// row and table: small beside the activations.
pub const BAG_IDS: u32 = 64;
/// Batches the loader thread prepares ahead of the GPU.
pub const PREFETCH: usize = 4;

/// Run-level choices that are not part of the model file.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Count malformed rows and go on instead of failing on the first.
    pub skip_bad_rows: bool,
    /// Continue from `out/last.safetensors`.
    pub resume: bool,
    /// Replace a run the output folder already holds (otherwise refused).
    pub overwrite: bool,
    /// Stop after this many epochs of this invocation (as if interrupted), keeping the checkpoint.
    pub stop_after_epochs: Option<u32>,
}

/// Counters of a run, stored in every checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Epochs completed.
    pub epochs_done: u32,
    /// Best validation AUC so far (first task).
    pub best_auc: Option<f64>,
    /// Epoch (1-based) of the best validation AUC.
    pub best_epoch: u32,
    /// Epochs since the best.
    pub since_best: u32,
    /// Training samples seen.
    pub samples: u64,
    /// Whether the run is over (early stop, step budget or all epochs).
    pub finished: bool,
}

/// What happens during a run, for a progress display.
#[derive(Debug)]
pub enum Event<'a> {
    /// The model is compiled.
    Compiled {
        /// Dispatches per training step.
        dispatches: u64,
        /// Dense parameters.
        dense_params: u64,
        /// Embedding rows in all tables.
        embedding_rows: u64,
    },
    /// A training step finished (reported every `log_every` steps, with the loss read back).
    Step {
        /// 1-based epoch.
        epoch: u32,
        /// Global step.
        step: u64,
        /// Samples this epoch so far.
        samples: u64,
        /// Training throughput this epoch.
        samples_per_sec: f64,
        /// Loss per task of this step.
        loss: &'a [f32],
    },
    /// An epoch ended and the validation split was scored.
    Epoch {
        /// 1-based epoch.
        epoch: u32,
        /// Validation metrics per task.
        valid: &'a [TaskMetrics],
        /// Whether this is the best so far (checkpoint kept).
        best: bool,
        /// Training throughput of the epoch.
        samples_per_sec: f64,
    },
}

/// Receives [`Event`]s (the CLI draws a progress bar or prints lines).
pub trait Observer {
    /// One event.
    fn event(&mut self, event: Event<'_>);
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _: Event<'_>) {}
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Task names, in head order.
    pub tasks: Vec<String>,
    /// Test metrics of the best checkpoint, per task (absent when training stopped before).
    pub test: Option<Vec<TaskMetrics>>,
    /// Validation metrics of the best epoch.
    pub valid: Option<Vec<TaskMetrics>>,
    /// Run counters.
    pub state: RunState,
    /// Training samples per second over the whole run, resumed parts included (from the run
    /// folder's `timings.json`; evaluation excluded).
    pub train_samples_per_sec: f64,
    /// The adapter it ran on.
    pub adapter: String,
    /// Dispatches per training step.
    pub dispatches_per_step: u64,
    /// Steps taken.
    pub steps: u64,
    /// Rows skipped as malformed (with `skip_bad_rows`), each counted once however many epochs
    /// read it.
    pub bad_rows: u64,
    /// Rows read, used and skipped per split file (keyed by its stem: train, valid, test).
    pub rows: std::collections::BTreeMap<String, crate::data::SplitRows>,
}

/// A training run over a data folder.
pub struct Trainer<'g> {
    gpu: &'g Gpu,
    config: ModelConfig,
    /// The model file as given (stored in every checkpoint).
    config_text: String,
    schema: Schema,
    data: PathBuf,
    out: PathBuf,
    options: TrainOptions,
    encoder: Arc<Encoder>,
    graph: Graph,
    state: RunState,
    /// Rows read and skipped per file (a file read every epoch counts its rows once).
    bad_rows: std::collections::BTreeMap<PathBuf, crate::data::SplitRows>,
    /// Wall-clock seconds per epoch of the whole run (read back on resume).
    timings: Timings,
    /// Temporaries of interrupted writes removed from the run folder when this run took it.
    removed_leftovers: Vec<PathBuf>,
    /// The run folder's lock, held for the trainer's life.
    _lock: RunLock,
}

/// Fits the encoder on the training split, in memory (the run folder is written later).
fn fit_encoder(
    config: &ModelConfig,
    schema: &Schema,
    schema_file: &str,
    data: &Path,
    skip_bad_rows: bool,
) -> Result<Encoder> {
    let read = ReadOptions {
        batch_rows: config.train.batch_size as usize,
        skip_bad_rows,
        ..ReadOptions::default()
    };
    Encoder::fit_file(
        config,
        schema,
        schema_file,
        &crate::data::split_path(data, "train")?,
        read,
    )
}

/// The graph's feature shapes from a fitted encoder.
pub fn shapes(config: &ModelConfig, encoder: &Encoder) -> Vec<FeatureShape> {
    config
        .features
        .iter()
        .enumerate()
        .map(|(f, feature)| FeatureShape {
            rows: encoder.table_rows(f),
            mns: encoder.mns(f),
            max_ids: match feature.kind {
                FeatureKind::Bag { .. } => BAG_IDS,
                FeatureKind::Sequence { .. } => 0,
                _ => 1,
            },
        })
        .collect()
}

impl<'g> Trainer<'g> {
    /// Parses the model file's text (`config_file` names it in errors), reads the schema, fits
    /// the encoder on the training split (or reloads it when resuming), compiles the model and,
    /// when resuming, restores the last checkpoint; only then takes the run folder and writes
    /// its files (see the module docs), so a failure before leaves the folder as it was.
    pub fn new(
        gpu: &'g Gpu,
        config_text: &str,
        config_file: &str,
        data: &Path,
        out: &Path,
        options: TrainOptions,
    ) -> Result<Self> {
        let config = ModelConfig::parse(config_text, config_file)?;
        let schema_path = data.join("schema.toml");
        let schema_file = schema_path.display().to_string();
        let schema = Schema::load(&schema_path)?;
        schema.check_model(&config, &schema_file)?;
        for split in crate::data::SPLIT_NAMES {
            crate::data::split_path(data, split)?;
        }
        let resumed = if options.resume {
            Some(run_folder::read_resume(out, &config, config_file)?)
        } else {
            run_folder::check_fresh(out, options.overwrite)?;
            None
        };
        let encoder = if resumed.is_some() {
            let dir = out.join(run_folder::ENCODER_DIR);
            Encoder::load(&dir, &config, &schema, &schema_file)?
        } else {
            fit_encoder(&config, &schema, &schema_file, data, options.skip_bad_rows)?
        };
        let shapes = shapes(&config, &encoder);
        let correction = encoder.logit_correction();
        let mut graph = Graph::new(gpu, &config, &shapes, config.train.batch_size, correction)?;
        let mut state = RunState::default();
        if let Some(resume) = &resumed {
            graph.load_state(gpu, &resume.checkpoint, false)?;
            state = resume.checkpoint.json(RUN_KEY)?;
        }
        let (lock, removed_leftovers) =
            run_folder::claim(out, resumed.as_ref(), options.overwrite)?;
        let timings = match resumed {
            Some(_) => {
                run_folder::write_data_path(out, data)?;
                Timings::load(&out.join(TIMINGS), state.epochs_done)?
            }
            None => {
                run_folder::write_inputs(out, config_text, &schema_path, &encoder, data)?;
                Timings::default()
            }
        };
        Ok(Trainer {
            gpu,
            config,
            config_text: config_text.to_string(),
            schema,
            data: data.to_path_buf(),
            out: out.to_path_buf(),
            options,
            encoder: Arc::new(encoder),
            graph,
            state,
            bad_rows: Default::default(),
            timings,
            removed_leftovers,
            _lock: lock,
        })
    }

    /// Temporaries of interrupted checkpoint writes that starting this run removed.
    pub fn removed_leftovers(&self) -> &[PathBuf] {
        &self.removed_leftovers
    }

    /// The compiled graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The fitted encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    fn read_options(&self) -> ReadOptions {
        ReadOptions {
            batch_rows: self.config.train.batch_size as usize,
            skip_bad_rows: self.options.skip_bad_rows,
            ..ReadOptions::default()
        }
    }

    fn loader(&self, path: &Path) -> Result<Loader<Prepared>> {
        let preparer = self.graph.preparer();
        Loader::spawn(
            path.to_path_buf(),
            self.schema.clone(),
            self.read_options(),
            Arc::clone(&self.encoder),
            PREFETCH,
            move |batch| preparer.prepare(&batch),
        )
    }

    /// The training split's loader for 1-based `epoch`: shuffled within windows of
    /// `shuffle_window` batches, seeded by the run's seed and the epoch (so a resumed run sees the
    /// same order), or in file order.
    fn train_loader(&self, path: &Path, epoch: u32) -> Result<Loader<Prepared>> {
        let window = self.config.train.shuffle_window as usize;
        if window == 0 {
            return self.loader(path);
        }
        let batch = self.config.train.batch_size as usize;
        let preparer = self.graph.preparer();
        let options = ReadOptions {
            batch_rows: batch * window,
            ..self.read_options()
        };
        Loader::spawn_shuffled(
            path.to_path_buf(),
            self.schema.clone(),
            options,
            Arc::clone(&self.encoder),
            PREFETCH,
            Some(Shuffle {
                batch,
                seed: self.config.train.seed ^ (u64::from(epoch) << 32),
            }),
            move |b| preparer.prepare(&b),
        )
    }

    fn checkpoint(&self, path: &Path) -> Result<()> {
        let mut ckpt = Checkpoint::new();
        self.graph.save_state(self.gpu, &mut ckpt)?;
        ckpt.insert_json(RUN_KEY, &self.state)?;
        ckpt.insert_metadata(CONFIG_KEY, self.config_text.as_str());
        ckpt.write(path)
    }

    /// Scores `path` with the current weights (evaluation mode) and returns its metrics per task.
    pub fn evaluate(&mut self, path: &Path) -> Result<Vec<TaskMetrics>> {
        let loader = self.loader(path)?;
        let tasks = self.tasks();
        let (metrics, bad) = evaluate_counted(self.gpu, &mut self.graph, loader, tasks)?;
        self.count_bad_rows(path, &bad);
        Ok(metrics)
    }

    fn count_bad_rows(&mut self, path: &Path, bad: &crate::data::BadRows) {
        let seen = self.bad_rows.entry(path.to_path_buf()).or_default();
        seen.count_pass(bad);
    }

    /// The per-split counts for the report, keyed by file stem.
    fn split_rows(&self) -> std::collections::BTreeMap<String, crate::data::SplitRows> {
        self.bad_rows
            .iter()
            .map(|(p, rows)| {
                let stem = p.file_stem().unwrap_or_default().to_string_lossy();
                (stem.into_owned(), *rows)
            })
            .collect()
    }

    fn tasks(&self) -> usize {
        self.config.tasks.len()
    }

    /// Trains until the epochs, the step budget or patience run out, then scores the test split
    /// with the best checkpoint.
    pub fn run(&mut self, observer: &mut dyn Observer) -> Result<Report> {
        observer.event(Event::Compiled {
            dispatches: self.graph.dispatches().train,
            dense_params: self.graph.params().layout.len(),
            embedding_rows: self.graph.tables().iter().map(|t| t.rows as u64).sum(),
        });
        let train_path = crate::data::split_path(&self.data, "train")?;
        let valid_path = crate::data::split_path(&self.data, "valid")?;
        let log_every = self.config.train.log_every;
        let mut best_valid = None;
        let mut epochs_now = 0u32;
        while !self.state.finished && self.state.epochs_done < self.config.train.epochs {
            if self
                .options
                .stop_after_epochs
                .is_some_and(|n| epochs_now >= n)
            {
                break;
            }
            let epoch = self.state.epochs_done + 1;
            let start = Instant::now();
            let mut samples = 0u64;
            let mut loader = self.train_loader(&train_path, epoch)?;
            let mut budget_hit = false;
            for prepared in loader.by_ref() {
                let prepared = prepared?;
                let rates = policy::TrainPolicy::new(&self.graph.config().train)
                    .rates(self.graph.step() + 1);
                self.graph.train_step(self.gpu, &prepared, rates)?;
                samples += prepared.rows as u64;
                let step = self.graph.step();
                if step.is_multiple_of(log_every) {
                    let loss = self.graph.last_loss(self.gpu)?;
                    observer.event(Event::Step {
                        epoch,
                        step,
                        samples,
                        samples_per_sec: samples as f64 / start.elapsed().as_secs_f64(),
                        loss: &loss,
                    });
                }
                if self.config.train.steps.is_some_and(|s| step >= s) {
                    budget_hit = true;
                    break;
                }
            }
            self.gpu.sync()?;
            let seconds = start.elapsed().as_secs_f64();
            if !budget_hit {
                let bad = loader.finish()?;
                self.count_bad_rows(&train_path, &bad);
            } else {
                drop(loader);
            }
            self.state.samples += samples;
            self.timings.record(epoch, samples, seconds);
            self.state.epochs_done = epoch;
            epochs_now += 1;
            let valid = self.evaluate(&valid_path)?;
            let auc = valid.first().and_then(|m| m.auc);
            let best = match (auc, self.state.best_auc) {
                (Some(a), Some(b)) => a > b,
                (Some(_), None) => true,
                (None, _) => self.state.best_auc.is_none(),
            };
            if best {
                self.state.best_auc = auc;
                self.state.best_epoch = epoch;
                self.state.since_best = 0;
                best_valid = Some(valid.clone());
            } else {
                self.state.since_best += 1;
            }
            let patience = self.config.train.patience;
            if budget_hit
                || (patience > 0 && self.state.since_best >= patience)
                || epoch >= self.config.train.epochs
            {
                self.state.finished = true;
            }
            if best {
                self.checkpoint(&self.out.join(BEST))?;
            }
            self.checkpoint(&self.out.join(LAST))?;
            self.timings.save(&self.out.join(TIMINGS))?;
            observer.event(Event::Epoch {
                epoch,
                valid: &valid,
                best,
                samples_per_sec: samples as f64 / seconds.max(1e-9),
            });
        }
        let test = if self.state.finished {
            let best = Checkpoint::read(&self.out.join(BEST))?;
            self.graph.load_state(self.gpu, &best, true)?;
            Some(self.evaluate(&crate::data::split_path(&self.data, "test")?)?)
        } else {
            None
        };
        Ok(Report {
            tasks: self.config.tasks.iter().map(|t| t.name.clone()).collect(),
            test,
            valid: best_valid,
            state: self.state.clone(),
            train_samples_per_sec: self.timings.samples_per_sec(),
            adapter: self.gpu.describe(),
            dispatches_per_step: self.graph.dispatches().train,
            steps: self.graph.step(),
            bad_rows: self.bad_rows.values().map(|r| r.skipped).sum(),
            rows: self.split_rows(),
        })
    }
}

/// Metadata key of the run counters in a checkpoint.
pub const RUN_KEY: &str = "train.run";
/// Metadata key of the model file's text in a checkpoint.
pub const CONFIG_KEY: &str = "train.config";

/// Scores every batch of `loader` with `graph` and accumulates the metrics; also returns the rows
/// the loader skipped as malformed.
pub fn evaluate(
    gpu: &Gpu,
    graph: &mut Graph,
    loader: Loader<Prepared>,
    tasks: usize,
) -> Result<(Vec<TaskMetrics>, u64)> {
    evaluate_counted(gpu, graph, loader, tasks).map(|(m, bad)| (m, bad.count))
}

/// [`evaluate`], handing over the loader's rows read and skipped.
fn evaluate_counted(
    gpu: &Gpu,
    graph: &mut Graph,
    mut loader: Loader<Prepared>,
    tasks: usize,
) -> Result<(Vec<TaskMetrics>, crate::data::BadRows)> {
    let mut acc = MetricsAccumulator::new(tasks);
    for prepared in loader.by_ref() {
        let prepared = prepared?;
        let probs = graph.predict(gpu, &prepared)?;
        acc.push(&metrics::Batch {
            predictions: &probs,
            labels: &prepared.labels,
            weights: None,
            users: prepared.groups.as_deref().map(UserIds::U64),
        })?;
    }
    let bad = loader.finish()?;
    Ok((acc.finish(), bad))
}
