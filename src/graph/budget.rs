//! The memory check run before [`Graph::new`](super::Graph::new) allocates anything: the bytes of
//! every large buffer the graph will create, from the kernels' own size formulas
//! ([`StorageLayout::new`], [`ExpertSpec`], [`CrossSpec`], [`Bags::capacity_words`]), against the
//! device's limits (one binding, one buffer, the embedding storage's chunks) and the host's memory.
//!
//! Without it a model too large for the device failed deep inside wgpu (`tbe_forward: Validation
//! Error … binding 6 range … exceeds …`) or aborted on a host allocation; now it is one error that
//! names the config key to change, the bytes needed and the limit. A buffer that grows with the
//! batch is blamed on `train.batch_size` when one sample fits (with the largest batch that does),
//! otherwise on the width key that makes even one sample too large.

use super::{FeatureShape, Optimizers};
use crate::config::{
    human_bytes, Expert as ExpertConfig, FeatureKind, ModelConfig, SequencePooling,
};
use crate::error::{Error, Result};
use crate::kernels::dense::cross::CrossSpec;
use crate::kernels::dense::optim::{DenseOptimizer, DenseOptimizerKind};
use crate::kernels::embedding::{Bags, SparseOptimizer, StorageLayout, TableSpec, MAX_CHUNKS};

/// What the device and the host allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Largest storage binding (every kernel binds whole buffers).
    pub binding: u64,
    /// Largest buffer.
    pub buffer: u64,
    /// Host memory (`None` when unknown): it must hold every buffer when the device is the CPU
    /// (lavapipe), else the embedding tables, which the host stages for initialisation and
    /// checkpoints.
    pub host: Option<u64>,
    /// Whether the device's buffers live in host memory (a CPU adapter).
    pub buffers_on_host: bool,
}

impl MemoryLimits {
    /// The limits of `gpu`, and the host's physical memory where the OS says it.
    pub fn of(gpu: &crate::gpu::Gpu) -> Self {
        let l = gpu.limits();
        MemoryLimits {
            binding: l.max_storage_buffer_binding_size,
            buffer: l.max_buffer_size,
            host: host_memory(),
            buffers_on_host: gpu.info().device_type == wgpu::DeviceType::Cpu,
        }
    }

    fn per_buffer(&self) -> u64 {
        self.binding.min(self.buffer)
    }
}

/// Physical memory from `/proc/meminfo` (Linux), else `None`.
fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One buffer: what it is, the key that sizes it, its bytes for the whole batch and per sample,
/// and how many buffers of that size the graph makes (for the host total; 0 when it is part of
/// another buffer, as a hidden layer's weights are of the dense parameters).
struct Need {
    what: String,
    key: String,
    bytes: u64,
    per_sample: u64,
    copies: u64,
}

/// Refuses `config` when a buffer of its graph for `max_batch` samples, with `optimizers`' state,
/// exceeds `limits` (module docs). `shapes` are the data's table sizes, one per feature.
pub fn check_memory(
    config: &ModelConfig,
    shapes: &[FeatureShape],
    max_batch: u32,
    optimizers: &Optimizers,
    limits: &MemoryLimits,
) -> Result<()> {
    let storage = check_storage(config, shapes, optimizers.sparse, limits)?;
    let needs = buffers(config, shapes, max_batch, optimizers.dense);
    for n in &needs {
        if n.bytes > limits.per_buffer() {
            return Err(too_large(
                n,
                max_batch,
                limits.per_buffer(),
                "one buffer binding",
            ));
        }
    }
    let device: u64 = needs.iter().map(|n| n.bytes * n.copies).sum();
    let total = storage.bytes + if limits.buffers_on_host { device } else { 0 };
    if let Some(host) = limits.host.filter(|&h| total > h) {
        let n = needs.iter().max_by_key(|n| n.bytes * n.copies);
        let (key, what) = match n {
            Some(n) if limits.buffers_on_host && n.bytes * n.copies > storage.bytes => {
                (n.key.clone(), n.what.clone())
            }
            _ => (storage.key, "the embedding tables".to_string()),
        };
        return Err(Error::TooLarge {
            what: format!("the model's buffers together (the largest: {what})"),
            needed: human_bytes(total),
            limit: format!("{} of host memory", human_bytes(host)),
            hint: format!("lower {key}"),
            key,
        });
    }
    Ok(())
}

fn too_large(n: &Need, batch: u32, limit: u64, what_limit: &str) -> Error {
    let fixed = n.bytes - n.per_sample * batch as u64;
    let one = fixed + n.per_sample;
    let (key, hint) = if n.per_sample > 0 && one <= limit {
        let fits = (limit - fixed) / n.per_sample;
        (
            "train.batch_size".to_string(),
            format!("lower it from {batch}: at most {fits} samples fit"),
        )
    } else {
        (n.key.clone(), format!("lower {}", n.key))
    };
    Error::TooLarge {
        key,
        what: n.what.clone(),
        needed: human_bytes(n.bytes),
        limit: format!("{} ({what_limit})", human_bytes(limit)),
        hint,
    }
}

/// Floats per row of table `m`: `dim`, times the groups of a GwPFM expert (as the graph builds it).
fn table_width(config: &ModelConfig, m: u32) -> u32 {
    match config.expert(m) {
        ExpertConfig::Gwpfm { blocks } => config.dim_of(m) * blocks.len().max(1) as u32,
        _ => config.dim_of(m),
    }
}

/// The embedding tables' bytes, and the key of the largest table (blamed when they are what does
/// not fit the host).
struct Tables {
    bytes: u64,
    key: String,
}

/// Packs the tables as [`EmbeddingStorage`](crate::kernels::embedding::EmbeddingStorage) will
/// and returns their bytes; refuses naming the feature with the largest table.
fn check_storage(
    config: &ModelConfig,
    shapes: &[FeatureShape],
    optimizer: SparseOptimizer,
    limits: &MemoryLimits,
) -> Result<Tables> {
    let mut specs = Vec::new();
    let mut owner = Vec::new();
    for m in 0..config.table_count() {
        let width = table_width(config, m);
        for (f, feature) in config.features.iter().enumerate() {
            let rows = match &feature.kind {
                // A mean-pooled sequence has no matrix (model/tables.rs).
                FeatureKind::Sequence {
                    pooling: SequencePooling::Mean,
                    ..
                } => continue,
                FeatureKind::Sequence { buckets, .. } => *buckets,
                _ => shapes.get(f).map_or(0, |s| s.rows),
            };
            specs.push(TableSpec { rows, width });
            owner.push(f);
        }
    }
    let bytes_of = |s: &TableSpec| {
        let w4 = s.width / 4;
        s.rows as u64 * (w4 + optimizer.state4(w4)) as u64 * 16
    };
    let total: u64 = specs.iter().map(bytes_of).sum();
    // The largest table, the first of equals (the feature the user wrote first).
    let (t, largest) = specs
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, s)| bytes_of(s))
        .expect("a table");
    let f = owner[t];
    let feature = &config.features[f];
    let key = match &feature.kind {
        FeatureKind::Categorical {
            hash_rows: Some(_), ..
        } => format!("feature[{f}].hash_rows"),
        FeatureKind::Sequence { .. } => format!("feature[{f}].buckets"),
        _ => format!("feature[{f}]"),
    };
    if StorageLayout::new(&specs, optimizer, limits.binding).is_ok() {
        return Ok(Tables { bytes: total, key });
    }
    let chunk = 16u64 << (63 - (limits.binding / 16).leading_zeros());
    let limit = (MAX_CHUNKS as u64 * chunk).min(16 << 32);
    Err(Error::TooLarge {
        key,
        what: format!(
            "the embedding tables with their optimizer state ({:?}: {} rows × {} floats in each of \
             {} tables)",
            feature.name, largest.rows, largest.width, config.model.tables
        ),
        needed: human_bytes(total),
        limit: format!(
            "{} ({MAX_CHUNKS} chunks of {} a kernel binds)",
            human_bytes(limit),
            human_bytes(chunk)
        ),
        hint: "fewer rows (hash_rows, min_count), a smaller model.dim or fewer model.tables".into(),
    })
}

/// The needs being collected: buffers, and dense parameter floats by the key that sizes them
/// (the largest is blamed for the parameter buffers).
struct Needs {
    b: u64,
    out: Vec<Need>,
    params: Vec<(String, u64)>,
}

impl Needs {
    fn push(&mut self, what: String, key: String, per_sample: u64, fixed: u64, copies: u64) {
        self.out.push(Need {
            what,
            key,
            bytes: (fixed + per_sample * self.b) * 4,
            per_sample: per_sample * 4,
            copies,
        });
    }
}

/// Every batch-sized or weight buffer the graph creates, with the key that sizes it.
fn buffers(
    config: &ModelConfig,
    shapes: &[FeatureShape],
    max_batch: u32,
    dense: DenseOptimizerKind,
) -> Vec<Need> {
    let mut needs = Needs {
        b: max_batch as u64,
        out: Vec::new(),
        params: Vec::new(),
    };
    let mut groups: Vec<(&ExpertConfig, u64, u32)> = Vec::new();
    for t in 0..config.table_count() {
        let e = config.expert(t);
        let width = table_width(config, t);
        match groups.iter_mut().find(|(g, _, w)| *g == e && *w == width) {
            Some((_, n, _)) => *n += 1,
            None => groups.push((e, 1, width)),
        }
    }
    for (g, &(expert, tables, width)) in groups.iter().enumerate() {
        group_buffers(config, shapes, (g, expert, tables, width), &mut needs);
    }
    let fan_in = tower_buffers(config, &mut needs);
    dense_buffers(config, fan_in, dense, needs)
}

/// Expert group `g`'s gathered fields, lookups, sequences, activations and weights.
fn group_buffers(
    config: &ModelConfig,
    shapes: &[FeatureShape],
    (g, expert, tables, width): (usize, &ExpertConfig, u64, u32),
    needs: &mut Needs,
) {
    let m = &config.model;
    let fields = config.features.len() as u64;
    let ids: u64 = shapes.iter().map(|s| s.max_ids.max(1) as u64).sum();
    let in_cols = fields * width as u64;
    let what = |thing: &str| format!("expert group {g}'s {thing}");
    needs.push(
        what("gathered fields"),
        "model.dim".into(),
        tables * in_cols,
        0,
        2,
    );
    // Bags::capacity_words is linear in the batch: its words for one sample, plus the fixed 1.
    let per_sample =
        Bags::capacity_words(config.features.len() * tables as usize, 1, tables * ids) - 1;
    needs.push(what("lookups"), "train.batch_size".into(), per_sample, 1, 1);
    sequences(config, tables, width as u64, needs);
    let dim = width as u64 / expert.parts_per_row() as u64;
    let e = expert_sizes(expert, tables, in_cols, fields, dim);
    let key = format!("model.experts[{g}]");
    needs.push(what("activations"), key, e.act, 0, e.act_copies);
    needs.push(
        what("weights"),
        "model.dim".into(),
        0,
        e.weight,
        e.weight_copies,
    );
    let (weights, out_cols) = (e.weight * e.weight_copies / 2, e.out_cols);
    needs.params.push(("model.dim".into(), weights));
    let projection = tables * m.expert_width as u64 * out_cols;
    needs.params.push(("model.expert_width".into(), projection));
}

/// The projections, the combine (or the per-task gates) and the hidden layers (one stack per
/// task in a multi-task model); returns the head's fan-in.
fn tower_buffers(config: &ModelConfig, needs: &mut Needs) -> u64 {
    let m = &config.model;
    let (w, e) = (m.expert_width as u64, config.table_count() as u64);
    let key = || "model.expert_width".to_string();
    needs.push("the per-table projections".into(), key(), e * w, 0, 4);
    let towers = if m.architecture.multitask() {
        config.tasks.len() as u64
    } else {
        1
    };
    let combined = if m.combine == crate::config::Combine::Concat {
        w * e
    } else {
        w
    };
    needs.push("the combined tables".into(), key(), towers * combined, 0, 2);
    if m.architecture.gated() {
        needs.push("the task gates".into(), key(), e * w + 3 * towers * e, 0, 2);
        needs.params.push((key(), towers * (e * w + 1) * e));
    }
    let mut fan_in = combined;
    for (l, &width) in m.hidden.iter().enumerate() {
        let (key, width) = (format!("model.hidden[{l}]"), width as u64);
        let acts = format!("hidden layer {l}'s activations");
        needs.push(acts, key.clone(), towers * width, 0, 3);
        let weights = format!("hidden layer {l}'s weights");
        needs.push(weights, key.clone(), 0, towers * fan_in * width, 0);
        needs.params.push((key, towers * (fan_in * width + width)));
        fan_in = width;
    }
    fan_in
}

/// The head, the loss partials, the flat dense parameters and the dense optimizer's state.
fn dense_buffers(
    config: &ModelConfig,
    fan_in: u64,
    dense: DenseOptimizerKind,
    mut needs: Needs,
) -> Vec<Need> {
    let (m, tasks) = (&config.model, config.tasks.len() as u64);
    let w = m.expert_width as u64;
    needs.params.push(("task".into(), (fan_in + 1) * tasks));
    let e = config.table_count() as u64;
    needs.params.push(("model.expert_width".into(), 4 * e * w));
    needs.push(
        "the loss partials".into(),
        "train.batch_size".into(),
        2 * tasks,
        0,
        1,
    );
    // Copies of the parameters the optimizer keeps: Adam's m and v, SGD's momentum buffer.
    let state = DenseOptimizer::state_len(dense, 1);
    let total: u64 = needs.params.iter().map(|p| p.1).sum();
    let widest = (needs.params.iter())
        .max_by_key(|p| p.1)
        .map(|p| p.0.clone())
        .unwrap_or_default();
    needs.push("the dense parameters".into(), widest.clone(), 0, total, 2);
    let what = "the dense optimizer's state".to_string();
    needs.push(what, widest, 0, total * state, 1);
    needs.out
}

/// TIM's buffers for every sequence feature: its output and the gathered behaviour rows.
fn sequences(config: &ModelConfig, tables: u64, width: u64, needs: &mut Needs) {
    for (i, f) in config.features.iter().enumerate() {
        if let FeatureKind::Sequence { side, max_len, .. } = &f.kind {
            // TIM gathers, per table, the item, each side feature and the temporal row of the
            // target and of every behaviour.
            let rows = tables * (2 + side.len() as u64) * (*max_len as u64 + 1) * width;
            needs.push(
                format!("the behaviour rows of {:?}", f.name),
                format!("feature[{i}].max_len"),
                rows,
                0,
                2,
            );
        }
    }
}

/// One expert group's buffers: the largest activation buffer (floats per sample) and how many
/// there are, the largest weight buffer and how many (values and gradients), its output columns.
struct ExpertSizes {
    act: u64,
    act_copies: u64,
    weight: u64,
    weight_copies: u64,
    out_cols: u64,
}

/// [`ExpertSizes`] as `Expert::new` allocates them (`kernels::dense::{expert, cross, mlp}`).
fn expert_sizes(e: &ExpertConfig, tables: u64, in_cols: u64, fields: u64, dim: u64) -> ExpertSizes {
    let pair = |act: u64, weight: u64, out_cols: u64| ExpertSizes {
        act: tables * act,
        act_copies: 2,
        weight: tables * weight,
        weight_copies: 2 * (weight > 0) as u64,
        out_cols,
    };
    match e {
        ExpertConfig::Dcn { layers, rank } => {
            let cs = CrossSpec {
                tables: tables as u32,
                rows_cap: 1,
                dim: in_cols as u32,
                layers: *layers,
                rank: *rank,
                relu: true,
            };
            // y, dy, u, two g, x_1 … x_{L−1} and z_0 … z_{L−1}; w (or u and v), values and grads.
            ExpertSizes {
                act: cs.act_len(),
                act_copies: 2 * *layers as u64 + 4,
                weight: cs.weight_len(),
                weight_copies: if rank.is_some() { 4 } else { 2 },
                out_cols: in_cols,
            }
        }
        ExpertConfig::Mlp { widths } => {
            let mut fan_in = in_cols;
            let (mut act, mut weight) = (0, 0);
            for &w in widths {
                act = act.max(w as u64);
                weight = weight.max(fan_in * w as u64);
                fan_in = w as u64;
            }
            let n = widths.len() as u64;
            ExpertSizes {
                act: tables * act,
                act_copies: 2 * n,
                weight: tables * weight,
                weight_copies: 2 * n,
                out_cols: fan_in,
            }
        }
        ExpertConfig::Ipnn => {
            let pairs = fields * fields.saturating_sub(1) / 2;
            pair(pairs, 0, pairs)
        }
        ExpertConfig::Fm => pair(dim, 0, dim),
        ExpertConfig::Fwfm | ExpertConfig::Gwpfm { .. } => pair(dim, fields * fields, dim),
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
