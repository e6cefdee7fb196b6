//! What the tuner ([`crate::tune`]) needs from a model file and a data folder, and the first-use tune
//! of a fresh training run.
//!
//! Both read the training split's first batches in file order through the trainer's own reader and
//! encoder, so the tune times the model on the ids, bags and sequences it will train on.

use std::path::Path;
use std::sync::Arc;

use super::Trainer;
use crate::config::ModelConfig;
use crate::data::encode::{Encoder, ModelBatch};
use crate::data::loader::Loader;
use crate::data::{ReadOptions, Schema};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::graph::{FeatureShape, Graph};
use crate::run::feature_shapes;
use crate::tune::{self, TuneModel, TuneOptions, TuneReport};

/// A model file and the first batches of its data, ready to tune.
pub struct TuneInputs {
    /// The model file, parsed.
    pub config: ModelConfig,
    /// The data's shape of each feature.
    pub shapes: Vec<FeatureShape>,
    /// The encoder's logit correction.
    pub correction: f64,
    /// The training split's first batches, in file order.
    pub batches: Vec<ModelBatch>,
}

impl TuneInputs {
    /// The inputs as the tuner takes them.
    pub fn model(&self) -> TuneModel<'_> {
        TuneModel {
            config: &self.config,
            shapes: &self.shapes,
            correction: self.correction,
            batches: &self.batches,
        }
    }
}

/// Reads the schema, fits the encoder on the training split (as [`Trainer::new`] does, touching no
/// run folder) and reads the split's first `batches` batches.
pub fn tune_inputs(
    gpu: &Gpu,
    config_text: &str,
    config_file: &str,
    data: &Path,
    skip_bad_rows: bool,
    batches: usize,
) -> Result<TuneInputs> {
    let super::trainer::Fitted {
        config,
        schema,
        encoder,
    } = super::trainer::fit(gpu, config_text, config_file, data, skip_bad_rows)?;
    let read = ReadOptions {
        batch_rows: config.train.batch_size as usize,
        skip_bad_rows,
        ..ReadOptions::default()
    };
    let encoder = Arc::new(encoder);
    let first = first_batches(data, &schema, read, &encoder, batches)?;
    Ok(TuneInputs {
        shapes: feature_shapes(&config, &encoder),
        correction: encoder.logit_correction(),
        config,
        batches: first,
    })
}

fn first_batches(
    data: &Path,
    schema: &Schema,
    read: ReadOptions,
    encoder: &Arc<Encoder>,
    n: usize,
) -> Result<Vec<ModelBatch>> {
    let path = crate::data::split_path(data, "train")?;
    let loader = Loader::spawn(path, schema.clone(), read, Arc::clone(encoder), 0, Ok)?;
    let batches = loader.take(n).collect::<Result<Vec<_>>>()?;
    Ok(batches)
}

/// Batches the first-use tune reads.
const TUNE_BATCHES: usize = 4;

impl Trainer<'_> {
    /// Tunes the kernels this model chooses among (see [`crate::tune`]) on the training split's
    /// first batches, then recompiles the model with the winners. Only for a fresh run: the
    /// recompiled model starts from the same seed, so its initial weights are the ones it had.
    pub fn tune_kernels(
        &mut self,
        options: TuneOptions,
        on_trial: &mut dyn FnMut(&tune::Trial),
    ) -> Result<TuneReport> {
        let data = self.data.clone();
        let batches = first_batches(
            &data,
            &self.schema,
            self.read_options(),
            &self.encoder,
            TUNE_BATCHES,
        )?;
        let shapes = feature_shapes(&self.config, &self.encoder);
        let correction = self.encoder.logit_correction();
        let model = TuneModel {
            config: &self.config,
            shapes: &shapes,
            correction,
            batches: &batches,
        };
        let report = tune::tune_with(self.gpu, &model, options, on_trial)?;
        let plan = self.graph.plan().clone();
        let batch = self.config.train.batch_size;
        self.graph = Graph::compile(self.gpu, plan, self.policy.optimizers(), batch, correction)?;
        Ok(report)
    }
}
