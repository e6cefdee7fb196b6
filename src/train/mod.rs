//! The trainer: a model file and a data folder in, a trained model and its metrics out.
//!
//! # Files
//! The data folder holds `schema.toml` and the splits `train`, `valid`, `test` (`.tsv` or `.csv`;
//! what `wgrec data fetch` and `wgrec data synth` write). The output folder is a run folder (see
//! [`crate::run`] for its files and who reads them); it is not touched until everything that can
//! fail before training has succeeded: the encoder is fitted in memory and the graph built first.
//! Then [`Trainer::new`] claims the folder (its lock, held until the trainer is dropped; the
//! temporaries of interrupted writes removed) and writes the copies of the model file and schema,
//! the encoder (fitted on the training split and never changed) and the data folder's path. Per
//! epoch [`Trainer::run`] writes the last checkpoint (the whole training state: tables with their
//! Adagrad accumulators, dense weights, Adam moments, BatchNorm statistics, step and epoch
//! counters), the best one when validation AUC improves, and the timings (kept out of the
//! checkpoints so that identical runs give byte-identical checkpoints). Each of these is written
//! to a temporary file, fsynced and renamed (`checkpoint::write_atomically`), so a crash leaves
//! the previous one intact.
//!
//! # Schedule
//! Epochs walk the training split `batch_size` rows per step, in file order (time order for the
//! bundled protocol, as online learning would see it) or, with `shuffle_window > 0`, shuffled
//! within windows of that many batches (a streaming shuffle: one window in memory, reseeded each
//! epoch from the run's seed); the last batch of a window may be smaller. After each epoch the
//! validation split is scored; training stops early after `patience` epochs without a better
//! monitored validation AUC (`[train] monitor`: the first task's by default, a named task's, or
//! the mean over the tasks), or after `steps` steps in all. The test split is scored with the best
//! checkpoint.
//!
//! # Resume
//! [`TrainOptions::resume`] continues from the last checkpoint: the state it restores is
//! everything a step reads, dropout masks are keyed by (seed, step) and the data order is the
//! file's, so 1 epoch + stop + resume 1 epoch gives the same bytes as 2 epochs straight (a test
//! checks it). A resume with a model file other than the run's is refused before anything is
//! written.
//!
//! The code: [`Trainer::new`] in `trainer.rs` (taking the run folder, compiling the model), the
//! epoch loop in `epochs.rs`, the progress [`Event`]s in `events.rs`.

use serde::{Deserialize, Serialize};

pub mod content;
mod epochs;
mod events;
pub mod policy;
mod trainer;
mod tuning;

pub use content::content_tables;
pub use events::{Event, Observer, Quiet};
pub use trainer::{plan_shapes, Trainer};
pub use tuning::{tune_inputs, TuneInputs};

use crate::metrics::TaskMetrics;

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

/// Counters of a run, stored in every checkpoint (under [`crate::run::RUN_KEY`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Epochs completed.
    pub epochs_done: u32,
    /// Best monitored validation AUC so far (`[train] monitor`: the first task's by default, or
    /// a named task's, or the mean over the tasks).
    pub best_auc: Option<f64>,
    /// Epoch (1-based) of the best monitored validation AUC.
    pub best_epoch: u32,
    /// Epochs since the best.
    pub since_best: u32,
    /// Training samples seen.
    pub samples: u64,
    /// Whether the run is over (early stop, step budget or all epochs).
    pub finished: bool,
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
