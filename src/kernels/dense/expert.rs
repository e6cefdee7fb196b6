//! The per-table interaction expert of the multi-embedding paradigm (METHODS.md §2.2): one expert
//! type applied to the `M` tables of a group, every table with its own parameters, each step of it
//! one dispatch for all `M` tables.
//!
//! `Expert` puts the four families behind one interface — DCNv2 cross network ([`cross`]), the
//! pairwise interactions FM / FwFM / GwPFM / IPNN ([`pairwise`]) and an MLP stack ([`mlp`]) — so a
//! model (the graph compiler) can give every table group the expert its config names, mix types
//! across groups, and count on the same shapes everywhere:
//!
//! - input `x` and its gradient `dx`: `[tables, rows_cap, in_cols]` with `in_cols = F·K` (`F·G·K`
//!   for GwPFM: each field's `G` sub-embeddings side by side), owned by the caller (the embedding
//!   gather writes `x`, the sparse update reads `dx`);
//! - output `y` and its gradient `dy`: `[tables, rows_cap, out_cols]`, owned by the expert;
//! - parameters and their gradients: owned by the expert, listed by [`Expert::parameters`] with
//!   their names and lengths (table-major), initialised by [`Expert::init`].
//!
//! With `relu` the expert's output goes through ReLU, fused into its last kernel: the multi-
//! embedding paper's required non-linearity after the interaction.
//!
//! Dispatches per step do not depend on `M`: forward is 1 for a pairwise expert, `2L` for a cross
//! network of `L` layers (`3L` low rank), one per layer for an MLP; [`Expert::dispatches`] states
//! them and a test counts them.
//!
//! [`cross`]: super::cross
//! [`pairwise`]: super::pairwise
//! [`mlp`]: super::mlp

use super::cross::{CrossBuffers, CrossNetwork, CrossSpec, CrossWeights};
use super::mlp::{MlpSpec, MlpStack};
use super::pairwise::{
    PairwiseBackward, PairwiseForward, PairwiseGradients, PairwiseKind, PairwiseSpec,
};
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Gpu};
use crate::rng::Rng;

/// Which interaction an expert computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpertKind {
    /// DCNv2 cross network of `layers` layers, full rank (`rank: None`) or `W = U Vᵀ`.
    Dcn {
        /// Cross layers.
        layers: u32,
        /// Low rank, or `None` for full-rank `W_l`.
        rank: Option<u32>,
    },
    /// FM, FwFM, GwPFM or IPNN.
    Pairwise(PairwiseKind),
    /// Linear layers (ReLU between them) with the given output widths.
    Mlp {
        /// Output width of each layer.
        widths: Vec<u32>,
    },
}

/// One expert over a group of tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertSpec {
    /// The interaction.
    pub kind: ExpertKind,
    /// Tables in the group (one expert each, one dispatch for all).
    pub tables: u32,
    /// Largest batch.
    pub rows_cap: u32,
    /// Fields `F` per table.
    pub fields: u32,
    /// Embedding width `K` per field.
    pub dim: u32,
    /// ReLU after the interaction (fused).
    pub relu: bool,
}

impl ExpertSpec {
    /// Input columns per row: `F·K`, or `F·G·K` for GwPFM.
    pub fn in_cols(&self) -> u32 {
        let groups = match &self.kind {
            ExpertKind::Pairwise(PairwiseKind::GwPfm { blocks, .. }) => *blocks,
            _ => 1,
        };
        self.fields * groups * self.dim
    }

    /// Output columns per row.
    pub fn out_cols(&self) -> u32 {
        match &self.kind {
            ExpertKind::Dcn { .. } => self.in_cols(),
            ExpertKind::Pairwise(PairwiseKind::Ipnn) => {
                self.fields * self.fields.saturating_sub(1) / 2
            }
            ExpertKind::Pairwise(_) => self.dim,
            ExpertKind::Mlp { widths } => widths.last().copied().unwrap_or(0),
        }
    }

    /// Every learned tensor's name and length (f32s, table-major), in [`Expert::parameters`]'s
    /// order — without a GPU, so a model plan can lay them out before anything is allocated.
    pub fn parameter_lens(&self) -> Vec<(String, u64)> {
        let t = self.tables as u64;
        match &self.kind {
            ExpertKind::Dcn { rank, .. } => {
                let cs = self.cross();
                let mut names = match rank {
                    None => vec!["w"],
                    Some(_) => vec!["u", "v"],
                };
                names.push("b");
                let len = |n: &str| match n {
                    "b" => cs.bias_len(),
                    _ => cs.weight_len(),
                };
                names.into_iter().map(|n| (n.to_string(), len(n))).collect()
            }
            ExpertKind::Pairwise(kind) => {
                let r = self.pairwise(kind).r_len();
                (r > 0)
                    .then(|| ("r".to_string(), t * r))
                    .into_iter()
                    .collect()
            }
            ExpertKind::Mlp { widths } => {
                let mut fan_in = self.in_cols() as u64;
                let mut lens = Vec::new();
                for (l, &out) in widths.iter().enumerate() {
                    let out = out as u64;
                    lens.push((format!("layer{l}.weight"), t * out * fan_in));
                    lens.push((format!("layer{l}.bias"), t * out));
                    fan_in = out;
                }
                lens
            }
        }
    }

    fn cross(&self) -> CrossSpec {
        let (layers, rank) = match &self.kind {
            ExpertKind::Dcn { layers, rank } => (*layers, *rank),
            _ => (0, None),
        };
        CrossSpec {
            tables: self.tables,
            rows_cap: self.rows_cap,
            dim: self.in_cols(),
            layers,
            rank,
            relu: self.relu,
        }
    }

    fn pairwise(&self, kind: &PairwiseKind) -> PairwiseSpec {
        PairwiseSpec {
            kind: kind.clone(),
            tables: self.tables,
            rows_cap: self.rows_cap,
            fields: self.fields,
            dim: self.dim,
            x_ld: self.in_cols(),
            x_offset: 0,
            out_ld: self.out_cols(),
            out_offset: 0,
            relu: self.relu,
        }
    }
}

enum Inner {
    Dcn {
        net: CrossNetwork,
        y: wgpu::Buffer,
        dy: wgpu::Buffer,
        params: Vec<Param>,
    },
    Pairwise {
        forward: Box<PairwiseForward>,
        backward: Box<PairwiseBackward>,
        out: wgpu::Buffer,
        dout: wgpu::Buffer,
        params: Vec<Param>,
    },
    Mlp(MlpStack),
}

/// A learned tensor and its gradient, both owned by the expert.
struct Param {
    name: &'static str,
    len: u64,
    value: wgpu::Buffer,
    grad: wgpu::Buffer,
}

/// A named parameter of an expert: its values and its gradient, `len` f32s each.
pub struct ParamRef<'a> {
    /// Name (`w`, `u`, `v`, `b`, `r`, `layer{l}.weight`, `layer{l}.bias`).
    pub name: String,
    /// f32s.
    pub len: u64,
    /// Values, table-major.
    pub value: &'a wgpu::Buffer,
    /// Gradient (overwritten by each backward).
    pub grad: &'a wgpu::Buffer,
}

/// A prepared expert over a group of tables (see the module docs).
pub struct Expert {
    spec: ExpertSpec,
    inner: Inner,
}

impl Expert {
    /// Builds the expert over the caller's input `x` and input gradient `dx`
    /// (`[tables, rows_cap, in_cols]`), allocating its output, parameters and gradients. The
    /// parameters hold zeros until [`Expert::init`] (or the caller) writes them.
    pub fn new(gpu: &Gpu, spec: &ExpertSpec, x: &wgpu::Buffer, dx: &wgpu::Buffer) -> Result<Self> {
        if spec.tables == 0 || spec.fields == 0 || spec.dim == 0 {
            return Err(Error::kernel(
                "expert",
                format!(
                    "tables {}, fields {}, dim {}: each must be at least 1",
                    spec.tables, spec.fields, spec.dim
                ),
            ));
        }
        let f32s = |n: u64| gpu.buffer("expert tensor", n * 4, storage_usage());
        let act = |cols: u32| spec.tables as u64 * spec.rows_cap as u64 * cols as u64;
        let param = |name: &'static str, len: u64| Param {
            name,
            len,
            value: f32s(len),
            grad: f32s(len),
        };
        let inner = match &spec.kind {
            ExpertKind::Dcn { rank, .. } => {
                let cs = spec.cross();
                let y = f32s(act(spec.out_cols()));
                let dy = f32s(act(spec.out_cols()));
                let mut params = match rank {
                    None => vec![param("w", cs.weight_len())],
                    Some(_) => vec![param("u", cs.weight_len()), param("v", cs.weight_len())],
                };
                params.push(param("b", cs.bias_len()));
                let (weights, dweights) = match rank {
                    None => (
                        CrossWeights::Full(&params[0].value),
                        CrossWeights::Full(&params[0].grad),
                    ),
                    Some(_) => (
                        CrossWeights::LowRank(&params[0].value, &params[1].value),
                        CrossWeights::LowRank(&params[0].grad, &params[1].grad),
                    ),
                };
                let bias = params.last().expect("bias");
                let net = CrossNetwork::new(
                    gpu,
                    cs,
                    &CrossBuffers {
                        x0: x,
                        weights,
                        bias: &bias.value,
                        y: &y,
                        dy: &dy,
                        dx,
                        dweights,
                        dbias: &bias.grad,
                    },
                )?;
                Inner::Dcn { net, y, dy, params }
            }
            ExpertKind::Pairwise(kind) => {
                let ps = spec.pairwise(kind);
                let out = f32s(ps.out_len());
                let dout = f32s(ps.out_len());
                let params = if ps.r_len() > 0 {
                    vec![param("r", spec.tables as u64 * ps.r_len())]
                } else {
                    Vec::new()
                };
                let r = params.first().map(|p| &p.value);
                let forward = PairwiseForward::new(gpu, &ps, x, r, &out)?;
                let backward = PairwiseBackward::new(
                    gpu,
                    &ps,
                    &PairwiseGradients {
                        x,
                        r,
                        out: spec.relu.then_some(&out),
                        dout: &dout,
                        dx,
                        dr: params.first().map(|p| &p.grad),
                    },
                )?;
                Inner::Pairwise {
                    forward: Box::new(forward),
                    backward: Box::new(backward),
                    out,
                    dout,
                    params,
                }
            }
            ExpertKind::Mlp { widths } => {
                let mut all = vec![spec.in_cols()];
                all.extend(widths);
                let ms = MlpSpec {
                    tables: spec.tables,
                    batch_cap: spec.rows_cap,
                    widths: all,
                    relu_last: spec.relu,
                };
                Inner::Mlp(MlpStack::new(gpu, &ms, x, Some(dx))?)
            }
        };
        Ok(Expert {
            spec: spec.clone(),
            inner,
        })
    }

    /// The expert's shape.
    pub fn spec(&self) -> &ExpertSpec {
        &self.spec
    }

    /// The output `[tables, rows_cap, out_cols]`.
    pub fn output(&self) -> &wgpu::Buffer {
        match &self.inner {
            Inner::Dcn { y, .. } => y,
            Inner::Pairwise { out, .. } => out,
            Inner::Mlp(stack) => &stack.layers.last().expect("≥ 1 layer").output,
        }
    }

    /// The output's gradient (the caller writes it before [`Expert::record_backward`]).
    pub fn grad_output(&self) -> &wgpu::Buffer {
        match &self.inner {
            Inner::Dcn { dy, .. } => dy,
            Inner::Pairwise { dout, .. } => dout,
            Inner::Mlp(stack) => &stack.layers.last().expect("≥ 1 layer").grad_output,
        }
    }

    /// Every learned tensor with its gradient, in a fixed order.
    pub fn parameters(&self) -> Vec<ParamRef<'_>> {
        fn list(params: &[Param]) -> Vec<ParamRef<'_>> {
            params
                .iter()
                .map(|p| ParamRef {
                    name: p.name.to_string(),
                    len: p.len,
                    value: &p.value,
                    grad: &p.grad,
                })
                .collect()
        }
        match &self.inner {
            Inner::Dcn { params, .. } | Inner::Pairwise { params, .. } => list(params),
            Inner::Mlp(stack) => {
                let t = self.spec.tables as u64;
                stack
                    .layers
                    .iter()
                    .enumerate()
                    .flat_map(|(l, layer)| {
                        let (fan_in, out) = (layer.shape.0 as u64, layer.shape.1 as u64);
                        [
                            ParamRef {
                                name: format!("layer{l}.weight"),
                                len: t * out * fan_in,
                                value: &layer.weight,
                                grad: &layer.grad_weight,
                            },
                            ParamRef {
                                name: format!("layer{l}.bias"),
                                len: t * out,
                                value: &layer.bias,
                                grad: &layer.grad_bias,
                            },
                        ]
                    })
                    .collect()
            }
        }
    }

    /// Writes initial parameters drawn from `rng`: Xavier-uniform weights (`W_l`, `U_l`, `V_l`,
    /// MLP weights; the multi-embedding code's default), zero biases, and `R = 1` for FwFM / GwPFM
    /// (METHODS.md §2.2).
    pub fn init(&self, gpu: &Gpu, rng: &mut Rng) {
        let mut xavier = |n: u64, fan_in: u32, fan_out: u32| -> Vec<f32> {
            let bound = (6.0 / (fan_in as f32 + fan_out as f32)).sqrt();
            (0..n).map(|_| rng.uniform(-bound, bound)).collect()
        };
        let write = |buffer: &wgpu::Buffer, values: &[f32]| {
            gpu.queue
                .write_buffer(buffer, 0, bytemuck::cast_slice(values));
        };
        let d = self.spec.in_cols();
        match &self.inner {
            Inner::Dcn { params, .. } => {
                // W_l: D → D; U_l: r → D and V_l: D → r.
                let rank = match &self.spec.kind {
                    ExpertKind::Dcn { rank, .. } => rank.unwrap_or(d),
                    _ => d,
                };
                for p in params {
                    let values = match p.name {
                        "b" => vec![0.0; p.len as usize],
                        _ => xavier(p.len, d, rank),
                    };
                    write(&p.value, &values);
                }
            }
            Inner::Pairwise { params, .. } => {
                for p in params {
                    write(&p.value, &vec![1.0; p.len as usize]);
                }
            }
            Inner::Mlp(stack) => {
                let t = self.spec.tables as u64;
                for layer in &stack.layers {
                    let (fan_in, out) = layer.shape;
                    write(
                        &layer.weight,
                        &xavier(t * fan_in as u64 * out as u64, fan_in, out),
                    );
                    write(&layer.bias, &vec![0.0; (t * out as u64) as usize]);
                }
            }
        }
    }

    /// Sets the rows (batch size) of the next steps (≤ `rows_cap`).
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        match &mut self.inner {
            Inner::Dcn { net, .. } => net.set_rows(gpu, rows),
            Inner::Pairwise {
                forward, backward, ..
            } => {
                forward.set_rows(gpu, rows)?;
                backward.set_rows(gpu, rows)
            }
            Inner::Mlp(stack) => stack.set_rows(gpu, rows),
        }
    }

    /// Records the forward: `output` from `x`.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        match &self.inner {
            Inner::Dcn { net, .. } => net.record_forward(gpu, pass),
            Inner::Pairwise { forward, .. } => forward.record(gpu, pass),
            Inner::Mlp(stack) => stack.record_forward(gpu, pass),
        }
    }

    /// Records the backward from `grad_output`: `dx` and every parameter gradient (overwritten).
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        match &self.inner {
            Inner::Dcn { net, .. } => net.record_backward(gpu, pass),
            Inner::Pairwise { backward, .. } => backward.record(gpu, pass),
            Inner::Mlp(stack) => stack.record_backward(gpu, pass),
        }
    }

    /// Dispatches recorded by (forward, backward), whatever the number of tables.
    pub fn dispatches(&self) -> (u64, u64) {
        match &self.spec.kind {
            ExpertKind::Dcn { layers, rank } => {
                let l = *layers as u64;
                match rank {
                    None => (2 * l, 4 * l + 1),
                    Some(_) => (3 * l, 6 * l + 1),
                }
            }
            ExpertKind::Pairwise(PairwiseKind::FwFm | PairwiseKind::GwPfm { .. }) => (1, 2),
            ExpertKind::Pairwise(_) => (1, 1),
            ExpertKind::Mlp { widths } => (widths.len() as u64, 3 * widths.len() as u64),
        }
    }
}
