//! The run's wall-clock log, `timings.json` in the run folder (written by `train` every epoch,
//! read by a resumed `train`): samples and seconds of each training epoch. Timings live here and not in the checkpoints because they differ between two
//! otherwise identical runs, and checkpoints must not. A resumed run reads the log back, so the
//! throughput it reports covers every epoch of the run, not only this invocation's.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checkpoint::write_atomically;
use crate::error::{Error, Result};

/// One training epoch's wall-clock cost (evaluation excluded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochTiming {
    /// 1-based epoch.
    pub epoch: u32,
    /// Training samples of the epoch.
    pub samples: u64,
    /// Seconds spent training the epoch.
    pub seconds: f64,
}

/// Every epoch's timing so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// In epoch order.
    pub epochs: Vec<EpochTiming>,
}

impl Timings {
    /// Reads the log at `path` (none yet: empty), keeping the epochs up to `epochs_done` (the
    /// checkpoint's; a log written after a checkpoint that a crash then lost is cut back).
    pub fn load(path: &Path, epochs_done: u32) -> Result<Timings> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Timings::default()),
            Err(e) => return Err(folder_error(path, format!("cannot read: {e}"))),
        };
        let mut timings: Timings = serde_json::from_slice(&text).map_err(|e| {
            let message = format!("not a run's timings ({e}); remove it to resume without them");
            folder_error(path, message)
        })?;
        timings.epochs.retain(|t| t.epoch <= epochs_done);
        Ok(timings)
    }

    /// Adds an epoch.
    pub fn record(&mut self, epoch: u32, samples: u64, seconds: f64) {
        self.epochs.push(EpochTiming {
            epoch,
            samples,
            seconds,
        });
    }

    /// Writes the log to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| folder_error(path, format!("cannot encode: {e}")))?;
        write_atomically(path, |temporary| {
            std::fs::write(temporary, &json)
                .map_err(|e| folder_error(temporary, format!("cannot write: {e}")))
        })
    }

    /// Training samples per second over every logged epoch.
    pub fn samples_per_sec(&self) -> f64 {
        let samples: u64 = self.epochs.iter().map(|t| t.samples).sum();
        let seconds: f64 = self.epochs.iter().map(|t| t.seconds).sum();
        samples as f64 / seconds.max(1e-9)
    }
}

/// An error about the log `path` (or its temporary) of the run folder it lies in.
fn folder_error(path: &Path, message: String) -> Error {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or(path.as_os_str());
    Error::run_folder(dir, format!("{}: {message}", name.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reads_back_cut_to_the_checkpoints_epochs_and_a_missing_one_is_empty() {
        let dir = std::env::temp_dir().join(format!("wgrec-timings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("timings.json");
        assert_eq!(Timings::load(&path, 3).unwrap(), Timings::default());
        let mut t = Timings::default();
        t.record(1, 100, 1.0);
        t.record(2, 100, 3.0);
        t.save(&path).unwrap();
        let back = Timings::load(&path, 1).unwrap();
        assert_eq!(back.epochs, t.epochs[..1]);
        assert_eq!(Timings::load(&path, 2).unwrap().samples_per_sec(), 50.0);
        std::fs::write(&path, b"{").unwrap();
        let e = Timings::load(&path, 2).unwrap_err();
        assert!(
            matches!(e, Error::RunFolder { .. }),
            "a run folder's file: {e}"
        );
        let e = e.to_string();
        assert!(e.contains("timings.json") && e.contains("remove it"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
