//! The pre-training loop: seeded shuffled batches of training edges through [`SageGpu`], the epoch
//! loss (per-edge losses summed on the host in edge order), the held-out link-prediction AUC and the
//! final embeddings of every node.
//!
//! Held-out AUC: each held-out edge (u, i) scores `z_uᵀz_i` against one item drawn uniformly among
//! those not linked to u (seeded, the same pairs every epoch), with embeddings from one seeded
//! sample, also the same every epoch, so the curve moves only with the model.

use std::time::Instant;

use super::gpu::{Capacity, Optimizers, SageGpu};
use super::graph::Graph;
use super::reference::Params;
use super::sample::Sampler;
use super::GraphSageConfig;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::dense::optim::DenseOptimizerKind;
use crate::kernels::embedding::SparseOptimizer;
use crate::rng::Rng;

/// What one epoch measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: u32,
    /// Mean per-edge loss over the epoch.
    pub loss: f64,
    /// Held-out link-prediction AUC (`None` without held-out edges).
    pub auc: Option<f64>,
    /// Seconds of training (sampling, upload, GPU), evaluation excluded.
    pub seconds: f64,
    /// Training edges per second.
    pub edges_per_sec: f64,
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// z of every node `[nodes, D]`, users first.
    pub embeddings: Vec<f32>,
    /// One report per epoch.
    pub epochs: Vec<EpochReport>,
}

/// Seed offsets of the independent random streams.
const EVAL_STREAM: u64 = 0xE7A1;
const OUTPUT_STREAM: u64 = 0x5EED;
const ORDER_STREAM: u64 = 0x0DE5;

fn optimizers(lr: f32) -> Optimizers {
    Optimizers {
        sparse: SparseOptimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        dense: DenseOptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
        lr,
    }
}

/// The buffers' capacity for `cfg` over `graph`.
pub fn capacity(cfg: &GraphSageConfig, graph: &Graph) -> Capacity {
    let targets = cfg.batch * (2 + cfg.negatives);
    let members = targets * (1 + cfg.fanout_second);
    let rows = members.min(graph.nodes());
    Capacity {
        targets,
        rows,
        members,
        lookups: rows * (1 + cfg.fanout_first),
        losses: graph.train.len() as u32,
    }
}

/// z of every node, from one sample drawn with `rng`.
pub fn embed_all(
    gpu: &Gpu,
    sage: &mut SageGpu,
    sampler: &Sampler<'_>,
    nodes: u32,
    chunk: u32,
    rng: &mut Rng,
) -> Result<Vec<f32>> {
    let all: Vec<u32> = (0..nodes).collect();
    let mut out = Vec::new();
    for part in all.chunks(chunk.max(1) as usize) {
        out.extend(sage.embed(gpu, &sampler.targets(part, rng))?);
    }
    Ok(out)
}

/// Held-out pairs `(user node, item node, label)`: each held-out edge, then one unlinked item.
pub fn eval_pairs(graph: &Graph, seed: u64) -> Vec<(u32, u32, f32)> {
    let mut rng = Rng::new(seed ^ EVAL_STREAM);
    let mut pairs = Vec::with_capacity(2 * graph.held_out.len());
    for &(u, i) in &graph.held_out {
        pairs.push((u, graph.item_node(i), 1.0));
        // A few tries for an item u is not linked to; a dense graph may keep a linked one.
        let mut j = graph.item_node(rng.below(graph.items as u64) as u32);
        for _ in 0..10 {
            if j != graph.item_node(i) && !graph.neighbours(u).contains(&j) {
                break;
            }
            j = graph.item_node(rng.below(graph.items as u64) as u32);
        }
        pairs.push((u, j, 0.0));
    }
    pairs
}

/// AUC of `z_uᵀz_v` over `pairs` (`None` without pairs of both labels).
pub fn link_auc(z: &[f32], dim: usize, pairs: &[(u32, u32, f32)]) -> Result<Option<f64>> {
    let row = |n: u32| &z[n as usize * dim..(n as usize + 1) * dim];
    let scores: Vec<f32> = pairs
        .iter()
        .map(|&(u, v, _)| row(u).iter().zip(row(v)).map(|(a, b)| a * b).sum())
        .collect();
    let labels: Vec<f32> = pairs.iter().map(|p| p.2).collect();
    crate::metrics::auc(&scores, &labels, None)
}

/// One epoch of training steps; returns the mean edge loss.
fn epoch(
    gpu: &Gpu,
    sage: &mut SageGpu,
    sampler: &Sampler<'_>,
    graph: &Graph,
    cfg: &GraphSageConfig,
    e: u32,
) -> Result<f64> {
    let mut rng = Rng::new(cfg.seed ^ ORDER_STREAM ^ ((e as u64) << 32));
    let mut order = graph.train.clone();
    for k in (1..order.len()).rev() {
        order.swap(k, rng.below(k as u64 + 1) as usize);
    }
    for (b, batch) in order.chunks(cfg.batch as usize).enumerate() {
        let c = sampler.edges(batch, cfg.negatives, &mut rng);
        sage.train_step(gpu, &c, b as u32 * cfg.batch)?;
    }
    let losses = sage.losses(gpu, order.len() as u32)?;
    let loss = losses.iter().map(|&l| l as f64).sum::<f64>() / order.len() as f64;
    if !loss.is_finite() {
        return Err(Error::Diverged {
            step: e as u64,
            task: 0,
            name: "graphsage link loss (epoch)".into(),
        });
    }
    Ok(loss)
}

/// Trains `cfg.epochs` epochs on `graph`, calling `progress` after each, and embeds every node.
pub fn train(
    gpu: &Gpu,
    graph: &Graph,
    cfg: &GraphSageConfig,
    mut progress: impl FnMut(&EpochReport),
) -> Result<Trained> {
    cfg.validate()?;
    let sampler = Sampler::new(graph, cfg.fanouts())?;
    let params = Params::init(graph.nodes() as usize, cfg.dim as usize, cfg.seed);
    let cap = capacity(cfg, graph);
    let mut sage = SageGpu::new(gpu, &params, cap, cfg.tau, optimizers(cfg.lr))?;
    let pairs = eval_pairs(graph, cfg.seed);
    let mut epochs = Vec::new();
    for e in 1..=cfg.epochs {
        let start = Instant::now();
        let loss = epoch(gpu, &mut sage, &sampler, graph, cfg, e)?;
        let seconds = start.elapsed().as_secs_f64();
        let auc = if pairs.is_empty() {
            None
        } else {
            let mut rng = Rng::new(cfg.seed ^ EVAL_STREAM);
            let z = embed_all(
                gpu,
                &mut sage,
                &sampler,
                graph.nodes(),
                cap.targets,
                &mut rng,
            )?;
            link_auc(&z, cfg.dim as usize, &pairs)?
        };
        let report = EpochReport {
            epoch: e,
            loss,
            auc,
            seconds,
            edges_per_sec: graph.train.len() as f64 / seconds.max(1e-9),
        };
        progress(&report);
        epochs.push(report);
    }
    let mut rng = Rng::new(cfg.seed ^ OUTPUT_STREAM);
    let embeddings = embed_all(
        gpu,
        &mut sage,
        &sampler,
        graph.nodes(),
        cap.targets,
        &mut rng,
    )?;
    Ok(Trained { embeddings, epochs })
}
