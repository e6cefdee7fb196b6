//! The tuner's measurements: which choices a model makes, and one choice's variants timed in
//! interleaved rounds of the model's training step.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{TuneModel, TuneOptions, Tuned};
use crate::error::Result;
use crate::gpu::{Family, Gpu, Variant};
use crate::graph::{Graph, Prepared};
use crate::train::policy::TrainPolicy;

/// Compiles the model once with the defaults and returns the (family, class) choices its launchers
/// asked for, in order.
pub(super) fn choices_of(gpu: &Gpu, model: &TuneModel<'_>) -> Result<Vec<(Family, String)>> {
    gpu.set_tuned(Tuned::new());
    gpu.clear_asked();
    drop(compile(gpu, model)?);
    Ok(gpu.asked_variants())
}

fn compile(gpu: &Gpu, model: &TuneModel<'_>) -> Result<Graph> {
    let optimizers = TrainPolicy::new(&model.config.train).optimizers();
    Graph::new(
        gpu,
        model.config,
        model.shapes,
        model.config.train.batch_size,
        model.correction,
        optimizers,
    )
}

/// Milliseconds per step of each of `variants` at `choice`, one sample per round in round order, the
/// other choices as in `best`.
pub(super) fn trial(
    gpu: &Gpu,
    model: &TuneModel<'_>,
    best: &Tuned,
    choice: (Family, &str),
    variants: &[&'static Variant],
    options: TuneOptions,
) -> Result<BTreeMap<&'static str, Vec<f64>>> {
    let mut samples: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for _ in 0..options.rounds.max(1) {
        for v in variants {
            let mut tuned = best.clone();
            tuned.insert((choice.0, choice.1.to_string()), *v);
            gpu.set_tuned(tuned);
            let ms = time_steps(gpu, model, options.steps.max(1))?;
            samples.entry(v.name).or_default().push(ms);
        }
    }
    Ok(samples)
}

/// Compiles the model with the device's current choices and returns milliseconds per training
/// step over one window of `steps` steps, after one warm-up step (pipelines built, caches warm).
fn time_steps(gpu: &Gpu, model: &TuneModel<'_>, steps: usize) -> Result<f64> {
    let mut graph = compile(gpu, model)?;
    let prepared: Vec<Prepared> = model
        .batches
        .iter()
        .map(|b| graph.prepare(b))
        .collect::<Result<_>>()?;
    let policy = TrainPolicy::new(&model.config.train);
    let step = |graph: &mut Graph, i: usize| {
        let rates = policy.rates(graph.step() + 1);
        graph.train_step(gpu, &prepared[i % prepared.len()], rates)
    };
    step(&mut graph, 0)?;
    gpu.sync()?;
    let start = Instant::now();
    for i in 0..steps {
        step(&mut graph, i + 1)?;
    }
    gpu.sync()?;
    Ok(start.elapsed().as_secs_f64() * 1e3 / steps as f64)
}

/// The median of `v` (the upper one of an even count; NaN when empty).
pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
