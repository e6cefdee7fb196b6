//! The streaming trainer's JSON-lines log: one JSON object per line, appended as things happen,
//! flushed line by line so `tail -f` and the curves see it at once.
//!
//! # Line format
//! Every line is an object with an `"event"` field naming what it is. Window reports of the
//! rolling progressive validation ([`crate::online::rolling::WindowReport`]) are:
//! ```json
//! {"event":"window","window":3,"rows":[30000,39999],
//!  "tasks":{"click":{"auc":0.71,"logloss":0.61,"calibration":1.02,"mean_p":0.31,"observed_rate":0.30,"labelled":10000}},
//!  "total":{"click":{"logloss":0.63,"calibration":1.01,"mean_p":0.30,"observed_rate":0.30,"labelled":40000}}}
//! ```
//! (one line in the file): `window` counts from 0, `rows` are the first and last stream row of the
//! window (0-based, inclusive), `tasks` are per task over the window, `total` per task since the
//! stream's start; an undefined metric is `null`. Other events (checkpoints, publishes, stops)
//! are the trainer's, each with its own `"event"`; readers skip events they do not know
//! ([`crate::online::curves`] does).
//!
//! # Resume
//! The log is append-only, so it is not replaced atomically as other outputs are: instead the
//! checkpoint records its length ([`StreamLog::sync`]) and a resumed run truncates it back to that
//! length ([`StreamLog::open`] with `resume_at`). The lines written after the last checkpoint are
//! dropped because the batches they describe are trained again and described again, so the log of
//! a run killed and resumed reads as the log of a run never stopped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Error, Result};

/// An open JSON-lines log.
pub struct StreamLog {
    path: PathBuf,
    file: File,
    len: u64,
}

impl StreamLog {
    /// Opens the log at `path`. Fresh (`resume_at` `None`): creates it, refusing to clobber a
    /// non-empty file ([`StreamLog::overwrite`] does). Resumed: truncates it to the byte length
    /// the checkpoint recorded; a file shorter than that (or missing) is an error, since lines the
    /// checkpoint counts on are gone.
    pub fn open(path: &Path, resume_at: Option<u64>) -> Result<Self> {
        let error = |message: String| Error::output(path, message);
        let Some(len) = resume_at else {
            let existing = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if existing > 0 {
                return Err(error(format!(
                    "a log of {existing} bytes is already there: resume the run, or start afresh with overwriting"
                )));
            }
            return Self::overwrite(path);
        };
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| error(format!("cannot open the log to resume it: {e}")))?;
        let now = file
            .metadata()
            .map_err(|e| error(format!("cannot read its size: {e}")))?
            .len();
        if now < len {
            return Err(error(format!(
                "the log has {now} bytes, fewer than the {len} the checkpoint recorded: it was truncated or replaced"
            )));
        }
        file.set_len(len)
            .map_err(|e| error(format!("cannot truncate it to {len} bytes: {e}")))?;
        Self::appending(path, len)
    }

    /// Creates the log at `path`, replacing whatever was there.
    pub fn overwrite(path: &Path) -> Result<Self> {
        File::create(path)
            .map_err(|e| Error::output(path, format!("cannot create the log: {e}")))?;
        Self::appending(path, 0)
    }

    fn appending(path: &Path, len: u64) -> Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::output(path, format!("cannot open the log: {e}")))?;
        Ok(StreamLog {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    /// Appends `event` as one line (written in one call, so a reader never sees half a line
    /// unless the process dies mid-write, which a resume truncates away).
    pub fn write(&mut self, event: &impl Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| Error::output(&self.path, format!("cannot encode a log line: {e}")))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::output(&self.path, format!("cannot append to the log: {e}")))?;
        self.len += line.len() as u64;
        Ok(())
    }

    /// Makes the lines written so far durable (fsync) and returns the length to record in the
    /// checkpoint being written.
    pub fn sync(&mut self) -> Result<u64> {
        self.file
            .sync_data()
            .map_err(|e| Error::output(&self.path, format!("cannot fsync the log: {e}")))?;
        Ok(self.len)
    }

    /// The log's length in bytes (what [`StreamLog::sync`] returns, without the fsync).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wgrec-log-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("log.jsonl")
    }

    #[test]
    fn a_resume_truncates_to_the_checkpointed_length() {
        let path = scratch("resume");
        let mut log = StreamLog::open(&path, None).unwrap();
        log.write(&serde_json::json!({"event": "a", "n": 1}))
            .unwrap();
        let checkpointed = log.sync().unwrap();
        log.write(&serde_json::json!({"event": "b", "n": 2}))
            .unwrap();
        drop(log);
        let mut log = StreamLog::open(&path, Some(checkpointed)).unwrap();
        assert_eq!(log.len(), checkpointed);
        log.write(&serde_json::json!({"event": "c"})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"event\":\"a\",\"n\":1}\n{\"event\":\"c\"}\n");
        assert_eq!(log.len(), text.len() as u64);
    }

    #[test]
    fn a_fresh_log_does_not_clobber_and_a_short_one_does_not_resume() {
        let path = scratch("refuse");
        std::fs::write(&path, "{\"event\":\"x\"}\n").unwrap();
        let e = StreamLog::open(&path, None)
            .err()
            .expect("clobber")
            .to_string();
        assert!(
            e.contains("log.jsonl") && e.contains("already there"),
            "{e}"
        );
        let e = StreamLog::open(&path, Some(100))
            .err()
            .expect("short")
            .to_string();
        assert!(
            e.contains("log.jsonl") && e.contains("fewer than the 100"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"event\":\"x\"}\n"
        );
        let log = StreamLog::overwrite(&path).unwrap();
        assert!(log.is_empty() && std::fs::read(&path).unwrap().is_empty());
    }
}
