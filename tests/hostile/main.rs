//! The hostile-user corpus (issue 12): every class of bad input a user can hand wgrec — oversized
//! and malformed model files, schemas, data, checkpoints, paths, concurrent runs, kills during
//! writes — run through the real binary. Each case asserts what a user is owed:
//! - a non-zero exit, never a death by signal (an abort or a panic is a defect);
//! - a message naming what the user wrote: the file with its line and column, or the config key;
//! - a run folder that was finished before the bad command is unchanged after it (hashed).
//!
//! Inputs are generated here (no fixtures to keep in step). One module per class.

mod common;

mod analyze_collapse;
mod data;
mod gl;
mod model_files;
mod run_folder;
mod training;
