//! The library's one error type. Every variant carries the context a user needs to act on it
//! (which adapter was looked for, which kernel and which shapes, which table and row).

use std::fmt;
use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside wgrec. The library never panics on bad input; it returns one
/// of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter matched the request (or none exists at all).
    #[error("no usable GPU adapter: {looked_for}.\n{hint}")]
    NoAdapter {
        /// What was searched for (backends, name filter).
        looked_for: String,
        /// How to get one (e.g. install lavapipe).
        hint: String,
    },
    /// An environment variable that steers wgrec holds a value it cannot use.
    #[error("environment variable {name}={value:?} is not valid: {reason}")]
    BadEnv {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The adapter refused to create a device.
    #[error("adapter {adapter:?} refused to create a device: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's reason.
        message: String,
    },
    /// wgpu reported a validation or out-of-memory error inside an error scope.
    #[error("GPU error while {context}: {message}")]
    Gpu {
        /// What wgrec was doing.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// A kernel launcher rejected its inputs (shapes, sizes, ids out of range).
    #[error("kernel {kernel}: {message}")]
    Kernel {
        /// Kernel (WGSL entry point) name.
        kernel: &'static str,
        /// What is wrong, with the numbers.
        message: String,
    },
    /// A model configuration is malformed or makes no model: `key` is the TOML key path (empty
    /// when the parser's message names the key, line and column itself).
    #[error("{file}: {}{message}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Config {
        /// The configuration file.
        file: String,
        /// The key path, e.g. `model.experts[1].layers`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A model that cannot fit the device or the host, found before anything is allocated: `key`
    /// is the config key to change, `needed` and `limit` are human-readable sizes.
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
    /// the loss kernel's flag and reported at the next loss read-back.
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
    /// The model cannot be compiled as asked (a plan invariant, a batch for another graph, a
    /// batch larger than the graph's maximum). The message names the table, group or key.
    #[error("model graph: {0}")]
    Graph(String),
    /// An embedding layout or storage could not be built as asked.
    #[error("embedding layout: {0}")]
    Layout(String),
    /// Mapping a buffer for readback failed.
    #[error("readback of {label} failed: {message}")]
    Readback {
        /// Buffer label.
        label: String,
        /// wgpu's reason.
        message: String,
    },
    /// Evaluation inputs were unusable: a NaN prediction, a label that is not 0 or 1, mismatched
    /// lengths. The message names the row and the task.
    #[error("metrics: {0}")]
    Metrics(String),
    /// A checkpoint could not be written or read back: missing or truncated file, wrong dtype, a
    /// tensor or key that is absent or has another shape than the caller expects.
    #[error("checkpoint {}{}: {message}", .file.display(), key_context(.key))]
    Checkpoint {
        /// The checkpoint file.
        file: PathBuf,
        /// The tensor name or metadata key concerned, if the error is about one.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A data file (sample table, schema, vocabulary) is missing or malformed: `line` is the 1-based
    /// line of the file where the bad record starts, `column` the schema column, as
    /// `3 "I2"` (1-based index and name), when the error is about one.
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
    /// A bundled or synthetic dataset could not be fetched, prepared or written; the message names
    /// the dataset and the file.
    #[error("dataset {0}")]
    Dataset(String),
    /// A run folder (`train --out`) cannot be used as asked: it holds a run that would be
    /// replaced, another run holds its lock, or a resume does not match the run. The message says
    /// what to do instead.
    #[error("run folder {}: {message}", .dir.display())]
    RunFolder {
        /// The folder.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file the user named as an output cannot be written without destroying something: it is
    /// the input, or a file of a run folder.
    #[error("output {}: {message}", .file.display())]
    Output {
        /// The output path as given.
        file: PathBuf,
        /// Why it is refused.
        message: String,
    },
    /// A chart could not be drawn or its PNG written (`crate::bench::plot`), or its series are not
    /// plottable (empty, non-finite, non-positive on a log axis).
    #[error("chart {}: {message}", .file.display())]
    Plot {
        /// The PNG being written.
        file: PathBuf,
        /// What is wrong.
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
