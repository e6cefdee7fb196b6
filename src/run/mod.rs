//! A training run as train, serve and the CLI share it: the run folder (`train --out`) with the
//! name of every file in it, who writes and who reads each, the lock that makes one process its
//! only writer, and the model it holds (the feature shapes a fitted encoder gives the graph, and
//! the evaluation pass both the trainer and the predictor run). `train` writes a run folder,
//! `serve` reads one, the CLI names its files in messages; none of them imports another for it.
//!
//! # The files of a run folder
//! | file | written by | read by |
//! |---|---|---|
//! | `config.toml` ([`CONFIG_FILE`]) | a fresh `train` (a copy of the model file) | `serve` (`eval`, `predict`); a resume compares the model file with the checkpoint's copy |
//! | `schema.toml` ([`SCHEMA_FILE`]) | a fresh `train` (a copy of the data folder's) | `serve` |
//! | `encoder/` ([`ENCODER_DIR`]) | a fresh `train` (vocabularies and numeric fits of the training split) | `serve`; a resumed `train` |
//! | `data-path.txt` ([`DATA_FILE`]) | every `train` (the data folder, absolute) | `eval` without `--data` |
//! | `best.safetensors` ([`BEST`]) | `train`, when validation AUC improves | `train` (the test split), `serve` |
//! | `last.safetensors` ([`LAST`]) | `train`, every epoch | `train --resume`; `serve` when there is no best |
//! | `timings.json` ([`TIMINGS`], see [`timings`]) | `train`, every epoch | a resumed `train` (throughput of the whole run) |
//! | `lock` ([`LOCK`], see [`lock`]) | the writing `train`, for its life | a second `train`, to name the holder |
//!
//! The checkpoints hold, beside the tensors, the run counters under [`RUN_KEY`] and the model
//! file's text under [`CONFIG_KEY`]. Checkpoints and timings are written atomically
//! (`checkpoint::write_atomically`); a killed write leaves a temporary that the next `train`
//! removes under the lock. Metrics are not files of the folder (the CLI prints them, `--json` on
//! stdout), and predictions may not be written into it (`serve` refuses such an output).
//!
//! # Who may write, and when
//! A run folder is written by one process at a time, and only once everything that can fail
//! before training (model file, schema, encoder fit, graph build, resume checks) has succeeded:
//! a `train` that fails early leaves a finished run exactly as it was, so `eval` and `predict` on
//! it still work. [`RunFolder::check_fresh`] and [`RunFolder::read_resume`] check without
//! writing; [`RunFolder::claim`] takes the lock and checks again under it.

mod claim;
mod folder;
pub mod lock;
mod model;
pub mod snapshot;
pub mod timings;

pub use claim::Resume;
pub use folder::{
    is_run_folder, RunFolder, BEST, CONFIG_FILE, CONFIG_KEY, DATA_FILE, ENCODER_DIR, LAST, LOCK,
    RUN_KEY, SCHEMA_FILE, TIMINGS,
};
pub use lock::RunLock;
pub use model::{evaluate, evaluate_with_spread, feature_shapes, BAG_IDS, PREFETCH};
pub use timings::Timings;
