//! The dense parameters of a plan, in flat-buffer order (the order is part of the checkpoint and
//! of the initialising random draws):
//!
//! 1. every group's expert tensors `expert.{g}.{name}` (owned by the expert kernels, copied to and
//!    from the flat buffers around the optimizer);
//! 2. per group, `proj.{g}.weight` `[M_g, W, out]` and, without BatchNorm, `proj.{g}.bias`
//!    `[M_g, W]`;
//! 3. with BatchNorm, its γ and β `proj.bn.weight` / `proj.bn.bias` `[M, W]` (owned);
//! 4. with the gate combine, `combine.gate.weight` `[M, M·W]` and `combine.gate.bias` `[M]`;
//! 5. each tower's hidden layers `mlp.{l}.weight` `[out, in]`, `mlp.{l}.bias` `[out]`;
//! 6. the head `head.weight` `[T, in]`, `head.bias` `[T]`.
//!
//! Every tensor starts at a multiple of 4 floats (the GEMM's vec4 loads).

use super::{bad, ModelPlan};
use crate::config::Combine;
use crate::error::Result;

/// Who holds a dense tensor's master copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamOwner {
    /// The flat buffer itself (layers read it in place at its offset).
    Flat,
    /// Group `group`'s expert, under the expert's own tensor name.
    Expert {
        /// The expert group.
        group: usize,
        /// The expert's name for it (`w`, `r`, `layer0.weight`, …).
        name: String,
    },
    /// BatchNorm (γ or β).
    BatchNorm,
}

/// How a tensor starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Xavier-uniform over `len` draws with these fans.
    Xavier {
        /// Fan in.
        fan_in: u32,
        /// Fan out.
        fan_out: u32,
    },
    /// Zeros.
    Zeros,
    /// Ones (BatchNorm's γ).
    Ones,
    /// The owning expert draws its own ([`Expert::init`](crate::kernels::dense::expert::Expert::init)).
    ByExpert,
}

/// One dense tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseParam {
    /// Checkpoint name.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// First element in the flat buffers (a multiple of 4).
    pub offset: u64,
    /// Elements.
    pub len: u64,
    /// Who holds the master copy.
    pub owner: ParamOwner,
    /// Its initial values.
    pub init: Init,
}

struct Builder {
    params: Vec<DenseParam>,
    end: u64,
}

impl Builder {
    fn push(&mut self, name: String, shape: &[usize], owner: ParamOwner) -> u64 {
        let len = shape.iter().product::<usize>() as u64;
        let offset = self.end.next_multiple_of(4);
        self.end = offset + len;
        let init = match (&owner, shape) {
            (ParamOwner::Expert { .. }, _) => Init::ByExpert,
            (ParamOwner::BatchNorm, _) if name.ends_with(".weight") => Init::Ones,
            _ if name.ends_with(".bias") || matches!(owner, ParamOwner::BatchNorm) => Init::Zeros,
            (_, [_, o, i]) | (_, [o, i]) => Init::Xavier {
                fan_in: *i as u32,
                fan_out: *o as u32,
            },
            _ => Init::Xavier {
                fan_in: len as u32,
                fan_out: 1,
            },
        };
        self.params.push(DenseParam {
            name,
            shape: shape.to_vec(),
            offset,
            len,
            owner,
            init,
        });
        offset
    }

    fn flat(&mut self, name: impl Into<String>, shape: &[usize]) {
        self.push(name.into(), shape, ParamOwner::Flat);
    }
}

/// The dense tensors of `plan` (groups, tables and towers already planned).
pub(super) fn plan_dense(plan: &ModelPlan) -> Vec<DenseParam> {
    let c = &plan.config;
    let mut b = Builder {
        params: Vec::new(),
        end: 0,
    };
    let n_fields = plan.n_fields();
    for (g, group) in plan.groups.iter().enumerate() {
        let spec = group.expert_spec(n_fields, 1);
        for (name, len) in spec.parameter_lens() {
            let owner = ParamOwner::Expert {
                group: g,
                name: name.clone(),
            };
            b.push(format!("expert.{g}.{name}"), &[len as usize], owner);
        }
    }
    let w = c.model.expert_width as usize;
    for (g, group) in plan.groups.iter().enumerate() {
        let m_g = group.tables.len();
        let out = group.expert_spec(n_fields, 1).out_cols() as usize;
        b.flat(format!("proj.{g}.weight"), &[m_g, w, out]);
        if !c.model.batch_norm {
            b.flat(format!("proj.{g}.bias"), &[m_g, w]);
        }
    }
    let m = plan.n_tables() as usize;
    if c.model.batch_norm {
        b.push("proj.bn.weight".into(), &[m, w], ParamOwner::BatchNorm);
        b.push("proj.bn.bias".into(), &[m, w], ParamOwner::BatchNorm);
    }
    if c.model.combine == Combine::Gate {
        b.flat("combine.gate.weight", &[m, m * w]);
        b.flat("combine.gate.bias", &[m]);
    }
    if c.model.architecture.multitask() {
        task_towers(plan, &mut b);
        uncertainty_heads(plan, &mut b);
        return b.params;
    }
    for tower in &plan.towers {
        let mut fan_in = tower.input as usize;
        for (l, &out) in tower.hidden.iter().enumerate() {
            b.flat(format!("mlp.{l}.weight"), &[out as usize, fan_in]);
            b.flat(format!("mlp.{l}.bias"), &[out as usize]);
            fan_in = out as usize;
        }
    }
    for head in &plan.heads {
        let fan_in = plan.towers[head.tower].output() as usize;
        let t = head.outputs.len();
        b.flat("head.weight", &[t, fan_in]);
        b.flat("head.bias", &[t]);
    }
    uncertainty_heads(plan, &mut b);
    b.params
}

/// The uncertainty heads (`[[task]] uncertainty`), last in flat order so that a model's other
/// tensors keep their offsets and initial values with or without them: on the head's input, for
/// `H` values per output (K logits, or μ and log s²), `uncertainty.weight` `[U·H, in]` and
/// `uncertainty.bias` `[U·H]` over the one tower of `single`, or `[U, H, in]` and `[U, H]` over
/// the task towers.
fn uncertainty_heads(plan: &ModelPlan, b: &mut Builder) {
    let Some(kind) = plan.config.uncertainty() else {
        return;
    };
    let (h, u) = (kind.width() as usize, plan.config.outputs().len());
    let fan_in = plan.towers[0].output() as usize;
    if plan.config.model.architecture.multitask() {
        b.flat("uncertainty.weight", &[u, h, fan_in]);
        b.flat("uncertainty.bias", &[u, h]);
    } else {
        b.flat("uncertainty.weight", &[u * h, fan_in]);
        b.flat("uncertainty.bias", &[u * h]);
    }
}

/// A multi-task model's per-task gates and towers, batched over the towers (one tensor per layer,
/// tower `u` its `u`-th slice): `gate.weight` `[U, E, E·W]` and `gate.bias` `[U, E]` when gated,
/// `tower.{l}.weight` `[U, out, in]`, `tower.{l}.bias` `[U, out]`, `tower.head.weight`
/// `[U, 1, in]`, `tower.head.bias` `[U, 1]`.
fn task_towers(plan: &ModelPlan, b: &mut Builder) {
    let c = &plan.config;
    let (u, e, w) = (
        plan.towers.len(),
        plan.n_tables() as usize,
        c.model.expert_width as usize,
    );
    if c.model.architecture.gated() {
        b.flat("gate.weight", &[u, e, e * w]);
        b.flat("gate.bias", &[u, e]);
    }
    let mut fan_in = w;
    for (l, &out) in c.model.hidden.iter().enumerate() {
        b.flat(format!("tower.{l}.weight"), &[u, out as usize, fan_in]);
        b.flat(format!("tower.{l}.bias"), &[u, out as usize]);
        fan_in = out as usize;
    }
    b.flat("tower.head.weight", &[u, 1, fan_in]);
    b.flat("tower.head.bias", &[u, 1]);
}

/// Elements of the flat buffers: past the last tensor, a multiple of 4, at least 4.
pub(super) fn flat_len(params: &[DenseParam]) -> u64 {
    let end = params.last().map_or(0, |p| p.offset + p.len);
    end.next_multiple_of(4).max(4)
}

/// Offsets 4-aligned, ascending, not overlapping; names unique; lengths the shapes' products.
pub(super) fn check_dense(params: &[DenseParam]) -> Result<()> {
    let mut end = 0;
    let mut names = std::collections::HashSet::new();
    for p in params {
        if p.offset % 4 != 0 || p.offset < end {
            return Err(bad(format!(
                "dense tensor {} at offset {} overlaps or is misaligned",
                p.name, p.offset
            )));
        }
        if p.shape.iter().product::<usize>() as u64 != p.len {
            return Err(bad(format!(
                "dense tensor {}: shape {:?} is not {} elements",
                p.name, p.shape, p.len
            )));
        }
        if !names.insert(p.name.as_str()) {
            return Err(bad(format!("dense tensor {} is named twice", p.name)));
        }
        end = p.offset + p.len;
    }
    Ok(())
}
