//! `wgrec bench --export-model`: the bench model, its initial state and its batches written for
//! another implementation to rebuild and time, beside wgrec's own figures on them.

use std::path::Path;

use super::{architecture_name, model_batch, model_text, shapes, synth, time_steps, TrainShape};
use crate::checkpoint::Checkpoint;
use crate::config::ModelConfig;
use crate::data::encode::{FeatureInput, ModelBatch};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::graph::Graph;
use crate::train::policy::TrainPolicy;

/// What [`export`] measured on wgrec's side.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    /// Training samples per second on the exported batches.
    pub train_samples_per_sec: f64,
    /// Inference samples per second.
    pub infer_samples_per_sec: f64,
    /// Per-task loss of one training step on batch 0 from the exported initial state.
    pub first_loss: Vec<f32>,
    /// The model's architecture (`single`, `stem`, …).
    pub architecture: &'static str,
    /// Its tasks, in label column order.
    pub tasks: Vec<String>,
    /// The adapter.
    pub adapter: String,
    /// Samples per batch.
    pub batch: u32,
    /// Timed steps per window.
    pub steps: usize,
    /// Dispatches per training step.
    pub dispatches: u64,
}

/// Writes the model of `shape` (dropout 0) for another implementation to rebuild and time on the
/// same batches: `model.json` ([`Graph::describe`]), `init.safetensors` (the initial state),
/// `batches.safetensors` (`batches` batches: `batch.{i}.f{f}.offsets|rows` per id feature,
/// `.lengths|target|behaviours|buckets` per sequence feature, `batch.{i}.labels`; exact integers
/// as f32) and `wgrec.json` (this device's samples/s on them and the first step's loss).
pub fn export(
    gpu: &Gpu,
    shape: &TrainShape,
    dir: &Path,
    batches: usize,
    windows: usize,
    steps: usize,
) -> Result<ExportReport> {
    let io = |file: &Path, e: std::io::Error| Error::Output {
        file: file.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let config = ModelConfig::parse(&model_text(shape, 0.0), "bench model")?;
    let mut graph = Graph::new(
        gpu,
        &config,
        &shapes(shape),
        shape.batch,
        0.0,
        TrainPolicy::new(&config.train).optimizers(),
    )?;
    let json = dir.join("model.json");
    std::fs::write(&json, graph.describe().to_string()).map_err(|e| io(&json, e))?;
    let mut init = Checkpoint::new();
    graph.save_state(gpu, &mut init)?;
    init.write(&dir.join("init.safetensors"))?;
    let generator = synth(shape, 7)?;
    let mut file = Checkpoint::new();
    let mut prepared = Vec::new();
    for i in 0..batches.max(1) {
        let b = generator.batch(i as u64 * shape.batch as u64..(i as u64 + 1) * shape.batch as u64);
        let mb = model_batch(shape, &b);
        insert_batch(&mut file, i, &mb)?;
        prepared.push(graph.prepare(&mb)?);
    }
    file.write(&dir.join("batches.safetensors"))?;
    let rates = TrainPolicy::new(&graph.config().train).rates(1);
    graph.train_step(gpu, &prepared[0], rates)?;
    let first_loss = graph.last_loss(gpu)?;
    // Batch 0's step is the first-loss check; timing goes on from batch 1.
    let (train, infer) = time_steps(gpu, &mut graph, &prepared, 1, windows, steps)?;
    let report = ExportReport {
        train_samples_per_sec: train,
        infer_samples_per_sec: infer,
        first_loss,
        architecture: architecture_name(shape.architecture),
        tasks: graph
            .config()
            .tasks
            .iter()
            .map(|t| t.name.clone())
            .collect(),
        adapter: gpu.describe(),
        batch: shape.batch,
        steps,
        dispatches: graph.dispatches().train,
    };
    let path = dir.join("wgrec.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).expect("plain data"),
    )
    .map_err(|e| io(&path, e))?;
    Ok(report)
}

/// Adds batch `i`'s inputs and labels to `file` under `batch.{i}.…` (see [`export`]).
fn insert_batch(file: &mut Checkpoint, i: usize, mb: &ModelBatch) -> Result<()> {
    let f32s = |v: &[u32]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    for (f, input) in mb.features.iter().enumerate() {
        let key = |k: &str| format!("batch.{i}.f{f}.{k}");
        match input {
            FeatureInput::Ids { offsets, rows } => {
                file.insert_tensor(&key("offsets"), &[offsets.len()], f32s(offsets))?;
                file.insert_tensor(&key("rows"), &[rows.len()], f32s(rows))?;
            }
            FeatureInput::Sequence(s) => {
                let width = s.target.len() / s.lengths.len().max(1);
                file.insert_tensor(&key("lengths"), &[s.lengths.len()], f32s(&s.lengths))?;
                file.insert_tensor(&key("target"), &[s.lengths.len(), width], f32s(&s.target))?;
                file.insert_tensor(
                    &key("behaviours"),
                    &[s.buckets.len(), width],
                    f32s(&s.behaviours),
                )?;
                file.insert_tensor(&key("buckets"), &[s.buckets.len()], f32s(&s.buckets))?;
            }
        }
    }
    file.insert_tensor(
        &format!("batch.{i}.labels"),
        &[mb.rows, mb.labels.len() / mb.rows.max(1)],
        mb.labels.clone(),
    )
}
