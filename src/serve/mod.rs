//! Serving: a [`Predictor`] loads what training wrote into a run folder (`config.toml`,
//! `schema.toml`, `encoder/`, `best.safetensors` or, failing that, `last.safetensors`; see
//! [`crate::run`]), a serving snapshot (the same with `model.safetensors`), or a publish folder
//! of snapshots (its newest; see [`crate::run::snapshot`]), and scores batches with the same
//! compiled forward the trainer's evaluation runs — BatchNorm's running statistics, no dropout,
//! the class-weight logit correction — so its probabilities are the evaluation's, bit for bit.
//! Serving reads the run folder and never writes it: `predict` refuses an output inside one
//! (`output.rs`).
//!
//! A predictor loaded from a publish folder takes newer snapshots with [`Predictor::reload`]
//! (`reload.rs` says when the compiled graph is kept). [`request`] turns JSON requests into rows
//! of the model's schema and [`http`](mod@http) is `wgrec serve`, the HTTP API around a
//! predictor.
//!
//! A program that already owns a wgpu device hands it in through
//! [`Gpu::from_wgpu`](crate::Gpu::from_wgpu) (see `examples/host_device.rs`).

pub mod http;
mod output;
pub mod rank;
mod reload;
pub mod request;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::ModelConfig;
use crate::data::encode::{Encoder, ModelBatch};
use crate::data::loader::Loader;
use crate::data::{BadRows, ReadOptions, Schema};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::graph::Optimizers;
use crate::graph::{Graph, Prepared};
use crate::metrics::{SpreadAccumulator, SpreadReport, TaskMetrics};
use crate::model::{FeatureShape, ModelPlan};
use crate::run::{evaluate, evaluate_with_spread, PREFETCH};
use reload::{covers, ModelFiles, Signature, Source};

/// A trained model ready to score.
pub struct Predictor {
    config: ModelConfig,
    schema: Schema,
    encoder: Arc<Encoder>,
    graph: Graph,
    checkpoint: PathBuf,
    source: Source,
    shapes: Vec<FeatureShape>,
    signature: Signature,
}

/// The server builds each predictor on the thread that scores with it and shares the device
/// between those threads, which needs `Gpu: Send + Sync`; a `Predictor` itself is `Send` (a
/// host program may load it on one thread and score on another).
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    fn send<T: Send>() {}
    shared::<Gpu>();
    shared::<Encoder>();
    send::<Predictor>();
};

impl Predictor {
    /// Loads the model in `dir` onto `gpu`: a training output folder, a serving snapshot, or a
    /// publish folder (its latest snapshot; see [`crate::run::snapshot`]). Compiled for the
    /// training batch size.
    pub fn load(gpu: &Gpu, dir: &Path) -> Result<Self> {
        Self::open(gpu, dir, None)
    }

    /// [`Self::load`], compiled for up to `max_batch` rows per GPU submission (serving wants
    /// larger batches than training).
    pub fn load_with_batch(gpu: &Gpu, dir: &Path, max_batch: u32) -> Result<Self> {
        if max_batch == 0 {
            return Err(Error::Graph("max_batch must be at least 1 row".into()));
        }
        Self::open(gpu, dir, Some(max_batch))
    }

    fn open(gpu: &Gpu, dir: &Path, max_batch: Option<u32>) -> Result<Self> {
        let files = ModelFiles::read(Source::resolve(dir)?)?;
        let batch = max_batch.unwrap_or(files.config.train.batch_size);
        let graph = Self::compile(gpu, &files, batch)?;
        Ok(Self::assemble(files, graph))
    }

    /// A graph for `files`, compiled for `max_batch` rows, with their weights.
    fn compile(gpu: &Gpu, files: &ModelFiles, max_batch: u32) -> Result<Graph> {
        let mut graph = Graph::new(
            gpu,
            &files.config,
            &files.shapes,
            max_batch,
            files.encoder.logit_correction(),
            Optimizers::inference(),
        )?;
        graph.load_state(gpu, &files.weights, true)?;
        Ok(graph)
    }

    fn assemble(files: ModelFiles, graph: Graph) -> Self {
        let signature = files.signature();
        Predictor {
            config: files.config,
            schema: files.schema,
            encoder: Arc::new(files.encoder),
            graph,
            checkpoint: files.checkpoint,
            source: files.source,
            shapes: files.shapes,
            signature,
        }
    }

    /// The version of the serving snapshot the model came from; `None` for a run folder.
    pub fn version(&self) -> Option<u64> {
        self.source.version
    }

    /// When loaded from a publish folder and a newer snapshot is there, loads it and returns its
    /// version (`None`: nothing newer, or not a publish folder). The compiled graph is kept when
    /// the new snapshot has the same model file, feature shapes and tensors (only the weights and
    /// the encoder change); otherwise a new graph is built. Everything is read and built before
    /// anything is swapped, so a failed reload leaves the predictor as it was.
    pub fn reload(&mut self, gpu: &Gpu) -> Result<Option<u64>> {
        let Some(publish) = self.source.publish.clone() else {
            return Ok(None);
        };
        let source = Source::resolve(&publish)?;
        if source.version <= self.source.version {
            return Ok(None);
        }
        let files = ModelFiles::read(source)?;
        let same_graph = files.config == self.config
            && files.shapes == self.shapes
            && files.encoder.logit_correction() == self.encoder.logit_correction()
            && covers(&files.signature(), &self.signature);
        let graph = if same_graph {
            None
        } else {
            Some(Self::compile(gpu, &files, self.graph.max_batch())?)
        };
        let version = files.source.version;
        match graph {
            Some(graph) => *self = Self::assemble(files, graph),
            None => {
                // Cannot fail part way: every tensor it reads was found with its shape above.
                self.graph.load_state(gpu, &files.weights, true)?;
                let kept = self.signature.clone();
                let ModelFiles {
                    source,
                    config,
                    schema,
                    encoder,
                    checkpoint,
                    shapes,
                    ..
                } = files;
                (self.source, self.config, self.schema) = (source, config, schema);
                (self.encoder, self.checkpoint) = (Arc::new(encoder), checkpoint);
                (self.shapes, self.signature) = (shapes, kept);
            }
        }
        Ok(version)
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

    /// Probabilities `[rows, tasks]` of an encoded batch and, for a model with an uncertainty
    /// head (`[[task]] uncertainty`), its belief over every (row, output) logit; `None` without
    /// one. The probabilities are [`predict`](Self::predict)'s, bit for bit.
    pub fn predict_belief(
        &mut self,
        gpu: &Gpu,
        batch: &ModelBatch,
    ) -> Result<(Vec<f32>, Option<crate::explore::Belief>)> {
        let prepared = self.graph.prepare(batch)?;
        self.graph.predict_belief(gpu, &prepared)
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

    /// [`Self::evaluate_file`] and, for a model with uncertainty heads, the calibration of their
    /// spread per output in `buckets` buckets ([`crate::metrics::SpreadReport`]).
    pub fn evaluate_file_spread(
        &mut self,
        gpu: &Gpu,
        path: &Path,
        options: ReadOptions,
        buckets: usize,
    ) -> Result<(Vec<TaskMetrics>, u64, Option<Vec<SpreadReport>>)> {
        if self.config.uncertainty().is_none() {
            let (metrics, bad) = self.evaluate_file(gpu, path, options)?;
            return Ok((metrics, bad, None));
        }
        let loader = self.loader(path, options)?;
        let outputs = self.config.outputs();
        let names = outputs.iter().map(|o| o.name.clone()).collect();
        let mut spread = SpreadAccumulator::new(names);
        let (metrics, bad) = evaluate_with_spread(
            gpu,
            &mut self.graph,
            loader,
            outputs.len(),
            Some(&mut spread),
        )?;
        Ok((metrics, bad.count, Some(spread.finish(buckets))))
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
