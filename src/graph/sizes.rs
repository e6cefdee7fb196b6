//! The bytes of every batch-sized or weight buffer the graph creates, from the kernels' own size
//! formulas ([`ExpertSpec`](crate::kernels::dense::expert::ExpertSpec), [`CrossSpec`],
//! [`Bags::capacity_words`]), each with the config key that sizes it and its [`Kind`]. The memory
//! check ([`super::budget`]) and the memory statement ([`super::memory`]) both read this list, so
//! the sizes are written once.

use super::budget::table_width;
use super::FeatureShape;
use crate::config::{Expert as ExpertConfig, FeatureKind, ModelConfig};
use crate::kernels::dense::cross::CrossSpec;
use crate::kernels::dense::optim::{DenseOptimizer, DenseOptimizerKind};
use crate::kernels::embedding::Bags;

/// What a buffer holds, for the memory statement's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The expert groups' gathered inputs and their gradients.
    ExpertInputs,
    /// The gathers' id lists (bags, numeric digits, sequences).
    Lookups,
    /// TIM's gathered behaviour rows.
    Tim,
    /// The experts' intermediates and outputs.
    ExpertActivations,
    /// The experts' own weights and gradients.
    ExpertWeights,
    /// The projections, the combine, the gates and the hidden layers' activations.
    Towers,
    /// The loss partials.
    Loss,
    /// The flat dense parameters and their gradients.
    Dense,
    /// The dense optimizer's state.
    DenseOptimizer,
}

/// One buffer: what it is, the key that sizes it, its bytes for the whole batch and per sample,
/// and how many buffers of that size the graph makes (for the host total; 0 when it is part of
/// another buffer, as a hidden layer's weights are of the dense parameters).
pub(super) struct Need {
    pub kind: Kind,
    pub what: String,
    pub key: String,
    pub bytes: u64,
    pub per_sample: u64,
    pub copies: u64,
}

/// The needs being collected: buffers, and dense parameter floats by the key that sizes them
/// (the largest is blamed for the parameter buffers).
struct Needs {
    b: u64,
    out: Vec<Need>,
    params: Vec<(String, u64)>,
}

impl Needs {
    fn push(
        &mut self,
        kind: Kind,
        what: String,
        key: String,
        per_sample: u64,
        fixed: u64,
        copies: u64,
    ) {
        self.out.push(Need {
            kind,
            what,
            key,
            bytes: (fixed + per_sample * self.b) * 4,
            per_sample: per_sample * 4,
            copies,
        });
    }
}

/// Every batch-sized or weight buffer the graph creates, with the key that sizes it.
pub(super) fn buffers(
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
        Kind::ExpertInputs,
        what("gathered fields"),
        "model.dim".into(),
        tables * in_cols,
        0,
        2,
    );
    // Bags::capacity_words is linear in the batch: its words for one sample, plus the fixed 1.
    let per_sample =
        Bags::capacity_words(config.features.len() * tables as usize, 1, tables * ids) - 1;
    needs.push(
        Kind::Lookups,
        what("lookups"),
        "train.batch_size".into(),
        per_sample,
        1,
        1,
    );
    sequences(config, tables, width as u64, needs);
    let dim = width as u64 / expert.parts_per_row() as u64;
    let e = expert_sizes(expert, tables, in_cols, fields, dim);
    let key = format!("model.experts[{g}]");
    needs.push(
        Kind::ExpertActivations,
        what("activations"),
        key,
        e.act,
        0,
        e.act_copies,
    );
    needs.push(
        Kind::ExpertWeights,
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
    needs.push(
        Kind::Towers,
        "the per-table projections".into(),
        key(),
        e * w,
        0,
        4,
    );
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
    needs.push(
        Kind::Towers,
        "the combined tables".into(),
        key(),
        towers * combined,
        0,
        2,
    );
    if m.architecture.gated() {
        needs.push(
            Kind::Towers,
            "the task gates".into(),
            key(),
            e * w + 3 * towers * e,
            0,
            2,
        );
        needs.params.push((key(), towers * (e * w + 1) * e));
    }
    let mut fan_in = combined;
    for (l, &width) in m.hidden.iter().enumerate() {
        let (key, width) = (format!("model.hidden[{l}]"), width as u64);
        let acts = format!("hidden layer {l}'s activations");
        needs.push(Kind::Towers, acts, key.clone(), towers * width, 0, 3);
        let weights = format!("hidden layer {l}'s weights");
        needs.push(
            Kind::Towers,
            weights,
            key.clone(),
            0,
            towers * fan_in * width,
            0,
        );
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
        Kind::Loss,
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
    needs.push(
        Kind::Dense,
        "the dense parameters".into(),
        widest.clone(),
        0,
        total,
        2,
    );
    let what = "the dense optimizer's state".to_string();
    needs.push(Kind::DenseOptimizer, what, widest, 0, total * state, 1);
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
                Kind::Tim,
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
