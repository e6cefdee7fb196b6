//! Online learning: `wgrec online` streams rows in arrival order into a model warm-started from a
//! `train` run, scores each batch before it learns from it, gives new ids rows as they arrive, and
//! publishes serving snapshots that `wgrec serve` reloads (METHODS.md §4.3; Monolith and Persia
//! are the systems to compare with). docs/online.md is the user's guide.
//!
//! # One step
//! Per batch of `batch_size` rows, in arrival order ([`run`](OnlineTrainer::run)):
//! 1. **ids** — each dynamic id map (a categorical feature with `capacity`; see
//!    `crate::data::idmap`) expires the rows unseen for `expire_after` steps and records the
//!    batch's ids: an id seen `admit_after` times gets a row (a free one, or the least recently
//!    seen one's); every row that changes owner is re-initialised on the GPU
//!    ([`Graph::reset_rows`](crate::graph::Graph::reset_rows): fresh weights, zeroed optimizer
//!    state) before the batch is used. The TIM item table is the item feature's matrix, so it
//!    follows the same map.
//! 2. **progressive validation** — the batch is scored with the current weights (evaluation
//!    mode) and its rows enter the rolling metrics ([`rolling`]): every row is scored before the
//!    model has learnt from it, so the windows' AUC, logloss and calibration are honest
//!    out-of-sample figures of the model as it was serving at that moment.
//! 3. **learn** — one training step with the run's optimizers at the schedule's rate for the
//!    continued step count (the warm start's Adam moments and Adagrad accumulators carry on).
//!
//! Encoding runs on the calling thread, not a loader thread: the id maps change with every batch
//! and the checkpoint must hold them exactly as of the last batch trained, which a read-ahead
//! thread would have moved past. The cost is the host work of one batch per step in series with
//! the GPU's (BENCHMARKS.md has the throughput beside batch training).
//!
//! # Checkpoints, stops and crashes
//! Every `checkpoint_every` steps and when the run ends, one file (`last.safetensors`, written
//! atomically) holds everything the next step reads: the graph's whole training state, the id
//! maps ([`IDS_KEY`]), and [`OnlineState`] ([`ONLINE_KEY`]: the source position after the last
//! batch trained, the rolling metrics' partial window, the log's length). A resume
//! (`--resume`) restores all of it, reopens the source right after that position and truncates
//! the JSON-lines log to the recorded length, so a run killed with SIGKILL at any point and
//! resumed ends with the same bytes as one that was never interrupted (a test kills one at random
//! points). SIGINT or SIGTERM set a flag the loop reads between batches: the batch in hand is
//! finished, checkpointed, and the process exits 0.
//!
//! # Modes
//! `frozen` scores without learning or admitting (the warm-start model on the same stream: the
//! baseline online learning must beat); `no_admission` learns but keeps the maps as they are
//! (new ids read the OOV row: the baseline for admission).
//!
//! The code: setup and checkpoints in `trainer.rs`, the loop in `run.rs`, snapshots in
//! `publish.rs`, the source in [`source`], the metrics in [`rolling`], the log in [`log`] and
//! its charts in [`curves`].

pub mod curves;
pub mod log;
mod options;
mod publish;
pub mod rolling;
mod run;
pub mod source;
mod state;
mod trainer;

pub use options::{OnlineOptions, PublishOptions};
pub use run::{OnlineObserver, OnlineReport, StopReason};
pub use state::{OnlineState, IDS_KEY, LOG_FILE, ONLINE_KEY};
pub use trainer::OnlineTrainer;
