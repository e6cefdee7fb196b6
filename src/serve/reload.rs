//! Where a [`Predictor`](super::Predictor) comes from and how it takes a newer model.
//!
//! `--model` may name a run folder (`train --out`), one serving snapshot, or a publish folder
//! (the snapshots a streaming trainer writes, see [`crate::run::snapshot`]): [`Source::resolve`]
//! tells them apart. Everything a model needs is read and checked on the host first
//! ([`ModelFiles::read`]); only then does anything reach the GPU, so a reload that fails on a bad
//! file leaves the serving model untouched. A reload keeps the compiled graph when the model file,
//! the feature shapes, the logit correction and the checkpoint's tensors all match what it was
//! compiled and loaded for (only the weights are written), and builds a new one otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::config::ModelConfig;
use crate::data::encode::Encoder;
use crate::data::Schema;
use crate::error::{Error, Result};
use crate::model::FeatureShape;
use crate::run::snapshot::{is_publish_folder, latest, snapshot_version};
use crate::run::{feature_shapes, is_run_folder, RunFolder};

/// Where a predictor's model was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Source {
    /// The folder holding the model's files (a run folder or one snapshot).
    pub folder: PathBuf,
    /// The publish folder the snapshot was taken from (only then can the predictor reload).
    pub publish: Option<PathBuf>,
    /// The snapshot's version (`None` for a run folder).
    pub version: Option<u64>,
}

impl Source {
    /// Tells a publish folder (its latest snapshot), a snapshot and a run folder apart.
    pub fn resolve(dir: &Path) -> Result<Self> {
        if !is_run_folder(dir) && is_publish_folder(dir) {
            let (version, folder) = latest(dir)?.ok_or_else(|| {
                Error::run_folder(
                    dir,
                    "the publish folder holds no complete snapshot yet: wait for the trainer to \
                     publish one",
                )
            })?;
            return Ok(Source {
                folder,
                publish: Some(dir.to_path_buf()),
                version: Some(version),
            });
        }
        Ok(Source {
            folder: dir.to_path_buf(),
            publish: None,
            version: snapshot_version(dir),
        })
    }
}

/// The names and shapes of a checkpoint's tensors: a checkpoint with at least these loads into a
/// graph that loaded one with them.
pub(super) type Signature = BTreeMap<String, Vec<usize>>;

/// Everything a model folder holds, read and checked on the host.
pub(super) struct ModelFiles {
    pub source: Source,
    pub config: ModelConfig,
    pub schema: Schema,
    pub encoder: Encoder,
    pub checkpoint: PathBuf,
    pub weights: Checkpoint,
    pub shapes: Vec<FeatureShape>,
}

impl ModelFiles {
    /// Reads the model files of `source.folder`.
    pub fn read(source: Source) -> Result<Self> {
        let folder = RunFolder::new(&source.folder);
        let config = ModelConfig::load(&folder.config_file())?;
        let schema_path = folder.schema_file();
        let schema_file = schema_path.display().to_string();
        let schema = Schema::load(&schema_path)?;
        let mut encoder = Encoder::load(&folder.encoder_dir(), &config, &schema, &schema_file)?;
        let checkpoint = folder.serving_checkpoint()?;
        let weights = Checkpoint::read(&checkpoint)?;
        // An online run's folder keeps the vocabularies of its warm start in `encoder/`; the id
        // maps that go with its weights are in the checkpoint (a snapshot's `encoder/` is current).
        if weights.metadata_keys().any(|k| k == crate::online::IDS_KEY) {
            let maps = weights.metadata(crate::online::IDS_KEY)?;
            encoder.restore_online_state(maps, &checkpoint)?;
        }
        let shapes = feature_shapes(&config, &encoder);
        Ok(ModelFiles {
            source,
            config,
            schema,
            encoder,
            checkpoint,
            weights,
            shapes,
        })
    }

    /// The names and shapes of the checkpoint's tensors (f32 and f16).
    pub fn signature(&self) -> Signature {
        let halves = self.weights.halves().iter();
        (self.weights.tensors().iter())
            .map(|(name, t)| (name.clone(), t.shape.clone()))
            .chain(halves.map(|(name, t)| (name.clone(), t.shape.clone())))
            .collect()
    }
}

/// Whether `new` has every tensor of `loaded` with its shape.
pub(super) fn covers(new: &Signature, loaded: &Signature) -> bool {
    loaded
        .iter()
        .all(|(name, shape)| new.get(name) == Some(shape))
}
