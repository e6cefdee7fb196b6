//! Serving snapshots from a streaming run: on the schedule `--publish-every-steps` /
//! `--publish-every-secs` (whichever comes first) and once more when the run ends, the model as it
//! stands is written with [`crate::run::snapshot::publish`] (atomically: a reader sees a whole
//! snapshot or none) as `snapshot-<graph step>`: the model file, the schema, the encoder with its
//! id maps as they stand, and the weights without optimizer state. `wgrec serve` and
//! `Predictor::reload` pick up the newest.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::trainer::OnlineTrainer;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::run::snapshot::{publish, MODEL_FILE};
use crate::run::{CONFIG_FILE, ENCODER_DIR, SCHEMA_FILE};

impl OnlineTrainer<'_> {
    /// Publishes when the schedule says so; returns the snapshot's version and path.
    pub(super) fn publish_if_due(&mut self) -> Result<Option<(u64, PathBuf)>> {
        let Some(p) = &self.options.publish else {
            return Ok(None);
        };
        let by_steps = p
            .every_steps
            .is_some_and(|n| n > 0 && self.state.steps.is_multiple_of(n));
        let by_time = p.every.is_some_and(|d| self.last_publish.elapsed() >= d);
        if !(by_steps || by_time) {
            return Ok(None);
        }
        self.publish_now().map(Some)
    }

    /// Publishes the final model unless the last snapshot already is it.
    pub(super) fn publish_final(&mut self) -> Result<Option<(u64, PathBuf)>> {
        if self.options.publish.is_none() || self.state.published == Some(self.graph.step()) {
            return Ok(None);
        }
        self.publish_now().map(Some)
    }

    fn publish_now(&mut self) -> Result<(u64, PathBuf)> {
        let p = self.options.publish.clone().expect("publishing is on");
        let version = self.graph.step();
        let mut weights = Checkpoint::new();
        self.graph.save_weights(self.gpu, &mut weights)?;
        let path = publish(&p.dir, version, p.keep.max(1), |dir| {
            self.write_snapshot(dir, &weights)
        })?;
        self.state.published = Some(version);
        self.last_publish = Instant::now();
        Ok((version, path))
    }

    /// The files of a snapshot into `dir` (the temporary folder `publish` renames).
    fn write_snapshot(&self, dir: &Path, weights: &Checkpoint) -> Result<()> {
        let io = |path: &Path, e: std::io::Error| Error::Output {
            file: path.to_path_buf(),
            message: e.to_string(),
        };
        let config = dir.join(CONFIG_FILE);
        std::fs::write(&config, &self.config_text).map_err(|e| io(&config, e))?;
        let schema = dir.join(SCHEMA_FILE);
        std::fs::copy(&self.schema_path, &schema).map_err(|e| io(&schema, e))?;
        self.encoder.save(&dir.join(ENCODER_DIR))?;
        weights.write(&dir.join(MODEL_FILE))
    }
}
