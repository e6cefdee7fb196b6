//! The stream source's public types: what to read, how, and where a stream stands.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::data::Batch;
use crate::error::{Error, Result};

/// Where rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A growing file, followed.
    File(PathBuf),
    /// A folder of time partitions.
    Folder(PathBuf),
    /// The standard input.
    Stdin,
}

impl SourceSpec {
    /// "-" is stdin, an existing folder is a folder of partitions, anything else a file.
    pub fn parse(arg: &str) -> SourceSpec {
        let path = PathBuf::from(arg);
        if arg == "-" {
            SourceSpec::Stdin
        } else if path.is_dir() {
            SourceSpec::Folder(path)
        } else {
            SourceSpec::File(path)
        }
    }

    /// The source in words, for messages: the path, `folder <path>` or `stdin`.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::File(path) => path.display().to_string(),
            SourceSpec::Folder(path) => format!("folder {}", path.display()),
            SourceSpec::Stdin => "stdin".to_string(),
        }
    }
}

/// Where a stream stands after the last row handed out: enough to reopen the source and continue
/// with the next row, no row read twice or skipped. Stored in the trainer's checkpoint as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// A folder's partition being read (its file name); `None` for a file or stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The byte offset in the file (or partition) after the last row handed out (stdin: bytes
    /// read, for information; a resume skips rows, not bytes).
    pub offset: u64,
    /// Lines of that file consumed (the header included), so lines after a resume are numbered
    /// right.
    pub line: u64,
    /// Data rows consumed since the stream's start, bad rows included.
    pub rows: u64,
}

impl StreamPosition {
    /// Data rows consumed so far, bad rows included.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// A position from another kind of source is refused (it would resume at a wrong row).
    pub(crate) fn check_fits(&self, spec: &SourceSpec) -> Result<()> {
        let problem = match (spec, &self.partition) {
            (SourceSpec::Folder(_), None) if self.rows > 0 => {
                Some("the checkpoint's position is a file's or stdin's, not a folder's".to_string())
            }
            (SourceSpec::File(_) | SourceSpec::Stdin, Some(p)) => Some(format!(
                "the checkpoint's position is in a folder's partition {p:?}, not in this source"
            )),
            _ => None,
        };
        match problem {
            Some(message) => Err(Error::data(spec.describe(), message)),
            None => Ok(()),
        }
    }
}

/// How a stream is read.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Rows per batch (at least 1).
    pub batch_rows: usize,
    /// Count malformed rows and go on instead of failing on the first.
    pub skip_bad_rows: bool,
    /// Wait for more data at the end (tail -f) instead of ending.
    pub follow: bool,
    /// With `follow`: end the stream after this long with no new row (None: only a stop ends it).
    pub idle_exit: Option<Duration>,
    /// With `follow`: hand out a partial batch once no new row has come for this long.
    pub flush_after: Duration,
    /// How often to look for new data and at the stop flag while waiting.
    pub poll: Duration,
}

/// A batch and where the stream stands after it.
pub struct StreamBatch {
    /// The rows.
    pub batch: Batch,
    /// Names the source in errors: the file or partition path, or `<stdin>`.
    pub file: String,
    /// The position after the batch's last row.
    pub position: StreamPosition,
}
