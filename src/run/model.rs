//! The model a run folder holds, as training builds it and serving loads it: the feature shapes
//! the graph is compiled for (from the fitted encoder), and the evaluation pass over a file. Both
//! sides call the same code, so `eval` on a finished run reproduces the trainer's test metrics
//! bit for bit.

use crate::config::{FeatureKind, ModelConfig};
use crate::data::encode::Encoder;
use crate::data::loader::Loader;
use crate::data::BadRows;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::graph::{FeatureShape, Graph, Prepared};
use crate::metrics::{self, MetricsAccumulator, TaskMetrics, UserIds};

/// Ids per sample a bag feature's buffers are sized for, on average over a batch (a batch of `B`
/// rows holds up to `B · BAG_IDS` ids per bag feature; single bags may be longer). 64 × 4 bytes per
/// row and table: small beside the activations.
pub const BAG_IDS: u32 = 64;
/// Batches a loader thread prepares ahead of the GPU.
pub const PREFETCH: usize = 4;

/// The graph's feature shapes from a fitted encoder.
pub fn feature_shapes(config: &ModelConfig, encoder: &Encoder) -> Vec<FeatureShape> {
    config
        .features
        .iter()
        .enumerate()
        .map(|(f, feature)| FeatureShape {
            rows: encoder.table_rows(f),
            mns: encoder.mns(f),
            max_ids: match feature.kind {
                FeatureKind::Bag { .. } => BAG_IDS,
                FeatureKind::Sequence { .. } => 0,
                _ => 1,
            },
        })
        .collect()
}

/// Scores every batch of `loader` with `graph` (evaluation mode) and accumulates the metrics per
/// task (`tasks`: the graph's outputs), in the order of
/// [`ModelConfig::metric_names`](crate::config::ModelConfig::metric_names); also returns the rows
/// the loader read and skipped as malformed.
pub fn evaluate(
    gpu: &Gpu,
    graph: &mut Graph,
    loader: Loader<Prepared>,
    tasks: usize,
) -> Result<(Vec<TaskMetrics>, BadRows)> {
    evaluate_with_spread(gpu, graph, loader, tasks, None)
}

/// [`evaluate`], also collecting the uncertainty heads' spread against the labels into `spread`
/// (for a model with heads; the probabilities, and so the metrics, are the same bits).
pub fn evaluate_with_spread(
    gpu: &Gpu,
    graph: &mut Graph,
    mut loader: Loader<Prepared>,
    tasks: usize,
    mut spread: Option<&mut metrics::SpreadAccumulator>,
) -> Result<(Vec<TaskMetrics>, BadRows)> {
    let mut acc = MetricsAccumulator::new(tasks);
    for prepared in loader.by_ref() {
        let prepared = prepared?;
        let probs = match spread.as_deref_mut() {
            Some(s) => {
                let (probs, belief) = graph.predict_belief(gpu, &prepared)?;
                if let Some(b) = belief {
                    s.push(&probs, &prepared.labels, &b);
                }
                probs
            }
            None => graph.predict(gpu, &prepared)?,
        };
        acc.push(&metrics::Batch {
            predictions: &probs,
            labels: &prepared.labels,
            weights: None,
            users: prepared.groups.as_deref().map(UserIds::U64),
        })?;
    }
    let bad = loader.finish()?;
    let outputs = graph.plan().config.outputs();
    if outputs.iter().all(|o| o.scenario.is_none()) {
        return Ok((acc.finish(), bad));
    }
    // A scenario model: each task over its scenarios' outputs, then every output.
    let tasks = graph.plan().config.tasks.len();
    let pools: Vec<Vec<usize>> = (0..tasks)
        .map(|t| {
            (0..outputs.len())
                .filter(|&u| outputs[u].task == t)
                .collect()
        })
        .collect();
    let mut metrics = acc.finish_pooled(&pools);
    metrics.extend(acc.finish());
    Ok((metrics, bad))
}
