//! The library's one error type. Every variant carries the context a user needs to act on it
//! (which adapter was looked for, which kernel and which shapes, which table and row).
//!
//! One variant per kind of failure, named for what went wrong rather than for the module that
//! noticed it: a graph that cannot be built is [`Error::Graph`] even when the embedding code finds
//! it, a loss that turns NaN is [`Error::Diverged`], not a data error, and a file the user asked
//! for that cannot be written is [`Error::Output`] whatever module writes it. Each variant's doc
//! says what it means and who raises it; a new kind of failure gets a new variant rather than a
//! near one.

use std::fmt;
use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside wgrec. The library never panics on bad input; it returns one
/// of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter matched the request (or none exists at all). Raised by adapter selection
    /// (`gpu::adapter`) before any device exists.
    #[error("no usable GPU adapter: {looked_for}.\n{hint}")]
    NoAdapter {
        /// What was searched for (backends, name filter).
        looked_for: String,
        /// How to get one (e.g. install lavapipe).
        hint: String,
    },
    /// An environment variable that steers wgrec (the adapter filters read by `gpu::adapter`)
    /// holds a value it cannot use.
    #[error("environment variable {name}={value:?} is not valid: {reason}")]
    BadEnv {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The adapter refused to create a device (`gpu`, when opening one).
    #[error("adapter {adapter:?} refused to create a device: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's reason.
        message: String,
    },
    /// wgpu reported a validation or out-of-memory error inside an error scope, or the device was
    /// lost while wgrec waited on it (`gpu`'s scopes and `sync`). Inputs are checked before
    /// anything reaches wgpu, so this is a driver limit or a bug, not bad input.
    #[error("GPU error while {context}: {message}")]
    Gpu {
        /// What wgrec was doing.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// A kernel launcher rejected its inputs (shapes, sizes, ids out of range) before recording
    /// anything; raised by the launchers in `kernels` and by pipeline creation in `gpu`.
    #[error("kernel {kernel}: {message}")]
    Kernel {
        /// Kernel (WGSL entry point) name.
        kernel: &'static str,
        /// What is wrong, with the numbers.
        message: String,
    },
    /// A settings file is unreadable, malformed or makes no model: the model file (`config`, which
    /// also checks every size against its bound), a data schema (`data::schema`), or a model key
    /// that the schema cannot serve (`data::encode`, `data::events`: a column the schema lacks or
    /// types otherwise). `key` is the TOML key path (empty when the parser's message names the
    /// key, line and column itself, or when the file cannot be read at all).
    #[error("{file}: {}{message}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Config {
        /// The configuration file.
        file: String,
        /// The key path, e.g. `model.experts[1].layers`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A kernel variant that does not exist, or that the device cannot run (`gpu::variants`: a
    /// forced choice, the tune cache, `wgrec tune`).
    #[error("{0}")]
    Variant(String),
    /// A valid model that cannot fit the device or the host, found by the graph's memory check
    /// (`graph::budget`) before anything is allocated: `key` is the config key to change, `needed`
    /// and `limit` are human-readable sizes.
    #[error("the model does not fit: {key}: {what}: {needed} needed, limit {limit}; {hint}")]
    TooLarge {
        /// The config key responsible, e.g. `train.batch_size` or `feature[0].hash_rows`.
        key: String,
        /// The buffer or buffers, in words.
        what: String,
        /// Bytes needed, e.g. `3.2 GiB`.
        needed: String,
        /// The limit met, with what it is, e.g. `128 MiB (one buffer binding)`.
        limit: String,
        /// What to change.
        hint: String,
    },
    /// Training diverged: the loss (or its gradient) of `task` was not finite at `step`, found by
    /// the loss kernel's flag and reported by the graph (`graph::divergence`) at the next loss
    /// read-back. A NaN loss is this, never a data or metrics error.
    #[error(
        "training diverged: the loss of task {task} ({name}) was not finite at step {step}; lower \
         train.dense_lr / train.sparse_lr, or set train.clip_norm"
    )]
    Diverged {
        /// The first step whose loss was NaN or infinite.
        step: u64,
        /// The task's index.
        task: usize,
        /// The task's name.
        name: String,
    },
    /// The model graph cannot be compiled or fed as asked (`graph`): a plan invariant, a batch
    /// for another graph, a batch larger than the graph's maximum, a dense parameter that is not
    /// there. The message names the table, expert group or key. A model that is merely too large
    /// is [`Error::TooLarge`].
    #[error("model graph: {0}")]
    Graph(String),
    /// An embedding layout or its storage could not be built or addressed as asked
    /// (`kernels::embedding`: a table that does not exist, rows or offsets past 32 bits, a feature
    /// set that does not match the layout).
    #[error("embedding layout: {0}")]
    Layout(String),
    /// Mapping a buffer for readback failed (`gpu::readback`).
    #[error("readback of {label} failed: {message}")]
    Readback {
        /// Buffer label.
        label: String,
        /// wgpu's reason.
        message: String,
    },
    /// Evaluation inputs were unusable (`metrics`): a NaN prediction, a label that is not 0 or 1, a
    /// bad weight, mismatched lengths. The message names the row and the task.
    #[error("metrics: {0}")]
    Metrics(String),
    /// A checkpoint could not be written or read back (`checkpoint`, the fitted encoder files of
    /// `data::encode`, a run folder's or a served model's missing checkpoint): missing or
    /// truncated file, wrong dtype, a tensor or key that is absent or has another shape than the
    /// caller expects.
    #[error("checkpoint {}{}: {message}", .file.display(), key_context(.key))]
    Checkpoint {
        /// The checkpoint file.
        file: PathBuf,
        /// The tensor name or metadata key concerned, if the error is about one.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A data file (sample table, vocabulary, event log) is missing or malformed, raised while
    /// reading it (`data`): `line` is the 1-based line of the file where the bad record starts,
    /// `column` the schema column, as `3 "I2"` (1-based index and name), when the error is about
    /// one. A schema file's errors are [`Error::Config`].
    #[error("{file}{}: {message}", data_context(*.line, .column))]
    Data {
        /// The file.
        file: String,
        /// 1-based line of the file (of the record's first line).
        line: Option<u64>,
        /// The schema column: 1-based index and name.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A bundled or synthetic dataset could not be fetched, prepared or written, or its parameters
    /// make none (`data::ml100k`, `data::synth`, `data::splits`); the message names the dataset
    /// and the file. Not for files the user asked wgrec to write ([`Error::Output`]).
    #[error("dataset {0}")]
    Dataset(String),
    /// A run folder (`train --out`) cannot be used as asked (`train::run_folder`): it holds a run
    /// that would be replaced, another run holds its lock, a resume does not match the run, or
    /// one of its files cannot be created. The message says what to do instead.
    #[error("run folder {}: {message}", .dir.display())]
    RunFolder {
        /// The folder.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file the user asked for cannot be written: it would destroy something (it is the input,
    /// or a file of a run folder; `serve::output`), or writing it failed (I/O). Raised by whoever
    /// writes the file: predictions, reports and exports.
    #[error("output {}: {message}", .file.display())]
    Output {
        /// The output path as given.
        file: PathBuf,
        /// Why it is refused.
        message: String,
    },
    /// A chart could not be drawn or its PNG written (`crate::bench::plot`), or its series are not
    /// plottable (empty, non-finite, non-positive on a log axis). A report's JSON beside the
    /// chart is an [`Error::Output`].
    #[error("chart {}: {message}", .file.display())]
    Plot {
        /// The PNG being written.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A worker thread wgrec starts (the data loader's, `data::loader`) could not be started, or
    /// it panicked: not a problem with the data. The message names the thread and what it was
    /// doing; a panic is a bug in wgrec.
    #[error("{thread} thread: {message}")]
    Thread {
        /// The thread, e.g. `the loader`.
        thread: &'static str,
        /// What went wrong.
        message: String,
    },
}

fn data_context(line: Option<u64>, column: &Option<String>) -> String {
    let mut s = String::new();
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
    }
    if let Some(column) = column {
        s.push_str(&format!(": column {column}"));
    }
    s
}

fn key_context(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!(" [{k}]")).unwrap_or_default()
}

impl Error {
    /// A kernel input error, formatted with the numbers that are wrong.
    pub fn kernel(kernel: &'static str, message: impl fmt::Display) -> Self {
        Error::Kernel {
            kernel,
            message: message.to_string(),
        }
    }

    /// A data error about `file` with no line or column (missing file, bad schema key).
    pub fn data(file: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Data {
            file: file.to_string(),
            line: None,
            column: None,
            message: message.to_string(),
        }
    }

    /// An output error about `file`: refused, or its write failed.
    pub fn output(file: impl Into<PathBuf>, message: impl fmt::Display) -> Self {
        Error::Output {
            file: file.into(),
            message: message.to_string(),
        }
    }

    /// A run folder error about `dir`.
    pub fn run_folder(dir: impl Into<PathBuf>, message: impl fmt::Display) -> Self {
        Error::RunFolder {
            dir: dir.into(),
            message: message.to_string(),
        }
    }

    /// A checkpoint error about `file` (and the tensor or metadata `key`, if any).
    pub fn checkpoint(
        file: impl Into<PathBuf>,
        key: Option<&str>,
        message: impl fmt::Display,
    ) -> Self {
        Error::Checkpoint {
            file: file.into(),
            key: key.map(str::to_owned),
            message: message.to_string(),
        }
    }
}
