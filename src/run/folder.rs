//! The names of a run folder's files (see the [table](super)) and [`RunFolder`], the path of
//! each, with what a fresh run writes before training and what serving reads first.

use std::fs;
use std::path::{Path, PathBuf};

use crate::data::encode::Encoder;
use crate::error::{Error, Result};

/// Copy of the model file.
pub const CONFIG_FILE: &str = "config.toml";
/// Copy of the data folder's schema.
pub const SCHEMA_FILE: &str = "schema.toml";
/// The fitted encoder (vocabularies, numeric fits).
pub const ENCODER_DIR: &str = "encoder";
/// The absolute path of the data folder the run trained on (read by `eval`).
pub const DATA_FILE: &str = "data-path.txt";
/// The checkpoint of the best validation AUC.
pub const BEST: &str = "best.safetensors";
/// The checkpoint of the last epoch (what `--resume` continues).
pub const LAST: &str = "last.safetensors";
/// Wall-clock timings per epoch (see [`super::timings`]); kept out of the checkpoints so that two
/// identical runs give identical checkpoint files.
pub const TIMINGS: &str = "timings.json";
/// The writer's lock, holding its description.
pub const LOCK: &str = "lock";

/// Metadata key of the run counters (`train::RunState` as JSON) in a checkpoint.
pub const RUN_KEY: &str = "train.run";
/// Metadata key of the model file's text in a checkpoint.
pub const CONFIG_KEY: &str = "train.config";

/// A run folder: the paths of its files. Making one touches nothing on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFolder {
    dir: PathBuf,
}

impl RunFolder {
    /// The run folder at `dir` (it may not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RunFolder { dir: dir.into() }
    }

    /// The folder itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `config.toml`, the copy of the model file.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// `schema.toml`, the copy of the data folder's schema.
    pub fn schema_file(&self) -> PathBuf {
        self.dir.join(SCHEMA_FILE)
    }

    /// `encoder/`, the fitted encoder.
    pub fn encoder_dir(&self) -> PathBuf {
        self.dir.join(ENCODER_DIR)
    }

    /// `data-path.txt`, where the data folder the run trained on is recorded.
    pub fn data_path_file(&self) -> PathBuf {
        self.dir.join(DATA_FILE)
    }

    /// `best.safetensors`.
    pub fn best(&self) -> PathBuf {
        self.dir.join(BEST)
    }

    /// `last.safetensors`.
    pub fn last(&self) -> PathBuf {
        self.dir.join(LAST)
    }

    /// `timings.json`.
    pub fn timings_file(&self) -> PathBuf {
        self.dir.join(TIMINGS)
    }

    /// The checkpoint serving loads: the best one or, failing that, the last, or, in a serving
    /// snapshot ([`super::snapshot`]), its model file.
    pub fn serving_checkpoint(&self) -> Result<PathBuf> {
        [self.best(), self.last(), self.dir.join(super::snapshot::MODEL_FILE)]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::checkpoint(
                    self.best(),
                    None,
                    "no best.safetensors, last.safetensors or model.safetensors in the folder: train first",
                )
            })
    }

    /// Writes what a fresh run reads back later: the model file's text, the schema, the fitted
    /// encoder and where the data came from. Call it only while holding the lock.
    pub fn write_inputs(
        &self,
        config_text: &str,
        schema_path: &Path,
        encoder: &Encoder,
        data: &Path,
    ) -> Result<()> {
        let config = self.config_file();
        fs::write(&config, config_text).map_err(|e| self.write_error(&config, e))?;
        let schema = self.schema_file();
        fs::copy(schema_path, &schema).map_err(|e| self.write_error(&schema, e))?;
        encoder.save(&self.encoder_dir())?;
        self.write_data_path(data)
    }

    /// Records the data folder (absolute when it can be resolved) for `eval`.
    pub fn write_data_path(&self, data: &Path) -> Result<()> {
        let abs = fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
        let file = self.data_path_file();
        fs::write(&file, abs.display().to_string()).map_err(|e| self.write_error(&file, e))
    }

    /// A failed write or removal of `path` inside the folder.
    pub(super) fn write_error(&self, path: &Path, e: std::io::Error) -> Error {
        Error::run_folder(&self.dir, format!("{}: {e}", path.display()))
    }
}

/// Whether `dir` is a run folder: it holds a run's model copy or a checkpoint.
pub fn is_run_folder(dir: &Path) -> bool {
    if dir.join(CONFIG_FILE).is_file() && dir.join(ENCODER_DIR).is_dir() {
        return true;
    }
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
    })
}
