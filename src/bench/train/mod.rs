//! End-to-end training and inference throughput of a whole model, fed in-process by the synthetic
//! generator (DATA.md §3) so no file or parser limits the measurement: the model of
//! [`model_text`] (M tables alternating DCNv2 and GwPFM experts, TIM over the behaviour sequence,
//! MNS numeric features, BatchNorm, a two-layer MLP), batches converted straight from
//! [`SynthBatch`](crate::data::synth::SynthBatch)es with every id folded into its table (`id mod rows`, as hashing would).
//! [`TrainShape::architecture`] makes it a two-task model (click, like; METHODS.md §3): a tower
//! per task, and for `stem` and `ple` a table set per task beside the shared one.
//!
//! Used by the scaling sweeps (samples/s and memory as the batch, the number of tables, the
//! sequence length and the table rows grow; [`sweep`]), and by `wgrec bench --export-model`
//! ([`export`]) for `scripts/bench-vs-torch.sh`, whose PyTorch side (`benches/torch/model.py`)
//! builds the same model from the same description.
//!
//! Here: the shape knobs and one measured point; the model and its batches in `model.rs`, the
//! sweeps in `sweep.rs`, the export in `export.rs`, their GPU-free tests in `tests.rs`.

mod export;
mod model;
mod sweep;
#[cfg(test)]
mod tests;

use std::time::Instant;

use crate::config::{Architecture, ModelConfig};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::graph::{Graph, Prepared};
use crate::train::policy::TrainPolicy;
pub use export::{export, ExportReport};
pub use model::{
    architecture_name, model_batch, model_text, shapes, synth, LIKE_CONFLICT, LIKE_RATE, NUMERIC,
};
pub use sweep::{sweep, write_sweep, TrainSweep, TrainSweepPoint};

/// The knobs of the end-to-end sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainShape {
    /// Samples per step.
    pub batch: u32,
    /// Embedding tables M.
    pub tables: u32,
    /// Longest behaviour sequence (TIM's L).
    pub seq_len: u32,
    /// Rows of every id table (user, item, category and context fields).
    pub rows: u32,
    /// Context categorical fields besides user, item and category.
    pub context: u32,
    /// How the tasks share the model: `single` is the one-task model; every other architecture
    /// has two tasks (`click`, `like`) with a tower each ([`model_text`]).
    pub architecture: Architecture,
}

impl TrainShape {
    /// The ml-100k-sized default: batch 1024, 2 tables, L = 50, 100k rows, 4 context fields, one
    /// task.
    pub fn standard() -> Self {
        TrainShape {
            batch: 1024,
            tables: 2,
            seq_len: 50,
            rows: 100_000,
            context: 4,
            architecture: Architecture::Single,
        }
    }

    /// The smoke size of the sweeps and the export: batch 256, 10k rows, L = 20.
    pub fn quick() -> Self {
        TrainShape {
            batch: 256,
            rows: 10_000,
            seq_len: 20,
            ..TrainShape::standard()
        }
    }
}

/// One measured point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainPoint {
    /// The shape.
    pub shape: TrainShape,
    /// Training samples per second (median over windows of steps).
    pub train_samples_per_sec: f64,
    /// Inference samples per second (forward + probabilities read back, median).
    pub infer_samples_per_sec: f64,
    /// Bytes of GPU buffers the model allocated (tables, activations, parameters, state).
    pub model_bytes: u64,
    /// Dispatches per training step.
    pub dispatches: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median training and inference samples/s over `windows` windows of `steps` steps each (after
/// one warm-up window), cycling through `prepared` from batch `first`.
fn time_steps(
    gpu: &Gpu,
    graph: &mut Graph,
    prepared: &[Prepared],
    first: usize,
    windows: usize,
    steps: usize,
) -> Result<(f64, f64)> {
    let rate = |start: Instant, rows: f64| rows / start.elapsed().as_secs_f64();
    let rows = |n: usize| {
        (0..n)
            .map(|i| prepared[i % prepared.len()].rows as f64)
            .sum::<f64>()
    };
    let (mut train, mut infer) = (Vec::new(), Vec::new());
    let policy = TrainPolicy::new(&graph.config().train);
    let mut k = first;
    for w in 0..=windows {
        let start = Instant::now();
        let mut n = 0.0;
        for _ in 0..steps {
            let b = &prepared[k % prepared.len()];
            graph.train_step(gpu, b, policy.rates(graph.step() + 1))?;
            n += b.rows as f64;
            k += 1;
        }
        gpu.sync()?;
        if w > 0 {
            train.push(rate(start, n));
        }
    }
    for w in 0..=windows {
        let start = Instant::now();
        for i in 0..steps {
            graph.predict(gpu, &prepared[i % prepared.len()])?;
        }
        if w > 0 {
            infer.push(rate(start, rows(steps)));
        }
    }
    Ok((median(train), median(infer)))
}

/// Compiles the shape's model and times `windows` windows of `steps` training steps (and as many
/// inference batches), after one warm-up window, over `batches` distinct pre-built batches.
pub fn measure(
    gpu: &Gpu,
    shape: &TrainShape,
    batches: usize,
    windows: usize,
    steps: usize,
) -> Result<TrainPoint> {
    let config = ModelConfig::parse(&model_text(shape, 0.1), "bench model")?;
    let before = gpu.allocated_bytes();
    let mut graph = Graph::new(
        gpu,
        &config,
        &shapes(shape),
        shape.batch,
        0.0,
        TrainPolicy::new(&config.train).optimizers(),
    )?;
    let model_bytes = gpu.allocated_bytes() - before;
    let generator = synth(shape, 7)?;
    let prepared: Vec<Prepared> = (0..batches.max(1) as u64)
        .map(|i| {
            let b = generator.batch(i * shape.batch as u64..(i + 1) * shape.batch as u64);
            graph.prepare(&model_batch(shape, &b))
        })
        .collect::<Result<_>>()?;
    let (train, infer) = time_steps(gpu, &mut graph, &prepared, 0, windows, steps)?;
    Ok(TrainPoint {
        shape: *shape,
        train_samples_per_sec: train,
        infer_samples_per_sec: infer,
        model_bytes,
        dispatches: graph.dispatches().train,
    })
}

/// The bench model at `shape` and `batches` of its synthetic batches, as `wgrec tune --bench-model`
/// tunes it: the model [`export`] times against PyTorch (no dropout), so the comparison runs with
/// the choices tuned for exactly its shapes.
pub fn tune_inputs(shape: &TrainShape, batches: usize) -> Result<crate::train::TuneInputs> {
    let generator = synth(shape, 7)?;
    let b = shape.batch as u64;
    Ok(crate::train::TuneInputs {
        config: ModelConfig::parse(&model_text(shape, 0.0), "bench model")?,
        shapes: shapes(shape),
        correction: 0.0,
        batches: (0..batches.max(1) as u64)
            .map(|i| model_batch(shape, &generator.batch(i * b..(i + 1) * b)))
            .collect(),
    })
}
