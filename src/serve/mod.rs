//! Serving: a [`Predictor`] loads what training wrote into a run folder (`config.toml`,
//! `schema.toml`, `encoder/`, `best.safetensors` or, failing that, `last.safetensors`; see
//! [`crate::run`]) and scores batches with the same compiled forward the trainer's evaluation
//! runs — BatchNorm's running statistics, no dropout, the class-weight logit correction — so its
//! probabilities are the evaluation's, bit for bit. Serving reads the run folder and never writes
//! it: `predict` refuses an output inside one (`output.rs`).
//!
//! A program that already owns a wgpu device hands it in through
//! [`Gpu::from_wgpu`](crate::Gpu::from_wgpu) (see `examples/host_device.rs`).

mod output;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::config::ModelConfig;
use crate::data::encode::{Encoder, ModelBatch};
use crate::data::loader::Loader;
use crate::data::{BadRows, ReadOptions, Schema};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::graph::Optimizers;
use crate::graph::{Graph, Prepared};
use crate::metrics::TaskMetrics;
use crate::model::ModelPlan;
use crate::run::{evaluate, feature_shapes, RunFolder, PREFETCH};

/// A trained model ready to score.
pub struct Predictor {
    config: ModelConfig,
    schema: Schema,
    encoder: Arc<Encoder>,
    graph: Graph,
    checkpoint: PathBuf,
}

impl Predictor {
    /// Loads the training output folder `dir` onto `gpu`.
    pub fn load(gpu: &Gpu, dir: &Path) -> Result<Self> {
        let folder = RunFolder::new(dir);
        let config = ModelConfig::load(&folder.config_file())?;
        let schema_path = folder.schema_file();
        let schema_file = schema_path.display().to_string();
        let schema = Schema::load(&schema_path)?;
        let encoder = Encoder::load(&folder.encoder_dir(), &config, &schema, &schema_file)?;
        let checkpoint = folder.serving_checkpoint()?;
        let mut graph = Graph::new(
            gpu,
            &config,
            &feature_shapes(&config, &encoder),
            config.train.batch_size,
            encoder.logit_correction(),
            Optimizers::inference(),
        )?;
        graph.load_state(gpu, &Checkpoint::read(&checkpoint)?, true)?;
        Ok(Predictor {
            config,
            schema,
            encoder: Arc::new(encoder),
            graph,
            checkpoint,
        })
    }

    /// The model file.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The data schema the model reads.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The encoder (vocabularies) of the model.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The encoder, shared (for readers on other threads).
    pub(crate) fn shared_encoder(&self) -> Arc<Encoder> {
        Arc::clone(&self.encoder)
    }

    /// The checkpoint file the weights came from.
    pub fn checkpoint(&self) -> &Path {
        &self.checkpoint
    }

    /// Output names (the tasks, or `task@scenario`), in the order of the probabilities' columns.
    pub fn tasks(&self) -> Vec<String> {
        self.config.outputs().into_iter().map(|o| o.name).collect()
    }

    /// The names of [`Self::evaluate_file`]'s metrics, in order (the tasks, then a scenario
    /// model's outputs).
    pub fn metric_names(&self) -> Vec<String> {
        self.config.metric_names()
    }

    /// Largest batch [`predict`](Self::predict) takes.
    pub fn max_batch(&self) -> u32 {
        self.graph.max_batch()
    }

    /// Probabilities `[rows, tasks]` of an encoded batch.
    pub fn predict(&mut self, gpu: &Gpu, batch: &ModelBatch) -> Result<Vec<f32>> {
        let prepared = self.graph.prepare(batch)?;
        self.graph.predict(gpu, &prepared)
    }

    /// The gate weights of the last [`predict`](Self::predict), `[towers, rows, experts]` (see
    /// [`Graph::gate_weights`]); `None` for a model without per-task towers (`single`). Costs
    /// one read-back when called and nothing otherwise.
    pub fn gate_weights(&self, gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        self.graph.gate_weights(gpu)
    }

    /// The compiled model's plan (its sets, towers and expert slots).
    pub fn plan(&self) -> &ModelPlan {
        self.graph.plan()
    }

    /// Probabilities of a prepared batch (see [`Graph::preparer`]).
    pub fn predict_prepared(&mut self, gpu: &Gpu, batch: &Prepared) -> Result<Vec<f32>> {
        self.graph.predict(gpu, batch)
    }

    /// A loader that prepares the batches of `path` for this model's graph.
    fn loader(&self, path: &Path, options: ReadOptions) -> Result<Loader<Prepared>> {
        let preparer = self.graph.preparer();
        Loader::spawn(
            path.to_path_buf(),
            self.schema.clone(),
            options,
            Arc::clone(&self.encoder),
            PREFETCH,
            move |b| preparer.prepare(&b),
        )
    }

    /// Scores `path` (a file in the model's schema) and returns its metrics per task with the
    /// number of bad rows skipped: the trainer's evaluation path.
    pub fn evaluate_file(
        &mut self,
        gpu: &Gpu,
        path: &Path,
        options: ReadOptions,
    ) -> Result<(Vec<TaskMetrics>, u64)> {
        let loader = self.loader(path, options)?;
        let tasks = self.config.outputs().len();
        let (metrics, bad) = evaluate(gpu, &mut self.graph, loader, tasks)?;
        Ok((metrics, bad.count))
    }

    /// Scores every row of `input` (a file in the model's schema) and writes `output`: a header
    /// `p_<task>…` and one line per input row, each probability in the shortest form that reads
    /// back as the same f32, atomically (a temporary beside it, renamed when complete). An
    /// `output` that is `input` or lies inside a run folder is refused before anything is read
    /// ([`Error::Output`]). Returns the rows scored and the bad rows skipped.
    pub fn predict_file(
        &mut self,
        gpu: &Gpu,
        input: &Path,
        output: &Path,
        skip_bad_rows: bool,
    ) -> Result<(u64, BadRows)> {
        let run = self.checkpoint.parent().unwrap_or(Path::new("."));
        output::check_output(output, input, run)?;
        let options = ReadOptions {
            batch_rows: self.graph.max_batch() as usize,
            skip_bad_rows,
            ..ReadOptions::default()
        };
        let mut loader = self.loader(input, options)?;
        let mut rows = 0u64;
        crate::checkpoint::write_atomically(output, |tmp| {
            rows = self.write_predictions(gpu, &mut loader, tmp, output)?;
            Ok(())
        })?;
        let bad = loader.finish()?;
        Ok((rows, bad))
    }

    /// Writes the probabilities of every batch of `loader` to `file` (the temporary of
    /// `output`, which errors name), synced; returns the rows written.
    fn write_predictions(
        &mut self,
        gpu: &Gpu,
        loader: &mut Loader<Prepared>,
        file: &Path,
        output: &Path,
    ) -> Result<u64> {
        let io = |e: std::io::Error| Error::Output {
            file: output.to_path_buf(),
            message: e.to_string(),
        };
        let tasks = self.config.outputs().len();
        let header: Vec<String> = self.tasks().iter().map(|t| format!("p_{t}")).collect();
        let mut w = std::io::BufWriter::new(std::fs::File::create(file).map_err(io)?);
        writeln!(w, "{}", header.join("\t")).map_err(io)?;
        let mut rows = 0u64;
        for prepared in loader.by_ref() {
            let prepared = prepared?;
            let p = self.graph.predict(gpu, &prepared)?;
            for row in p.chunks(tasks) {
                let line: Vec<String> = row.iter().map(|v| v.to_string()).collect();
                writeln!(w, "{}", line.join("\t")).map_err(io)?;
            }
            rows += prepared.rows as u64;
        }
        w.flush().map_err(io)?;
        w.get_ref().sync_all().map_err(io)?;
        Ok(rows)
    }
}
