//! The DCNv2 cross network (METHODS.md §2.2), batched over tables: per table,
//! `x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l` for `l = 0 … L−1`, then an optional ReLU (the expert's
//! non-linearity), with full-rank `W_l ∈ R^{D×D}` or the low-rank `W_l = U_l V_lᵀ`
//! (`U_l, V_l ∈ R^{D×r}`).
//!
//! Each layer is one batched GEMM (two for low rank) plus one element-wise kernel, every dispatch
//! covering all tables; the backward per layer is the element-wise kernel, the weight-gradient GEMM
//! (two for low rank), the bias column sum and the input-gradient GEMM, then one final add. So the
//! dispatch count is `2L` forward (`3L` low rank) and `4L + 1` backward (`6L + 1`), whatever the
//! number of tables.
//!
//! # Buffers
//! The caller owns the input `x0`, the output `y`, the parameters and their gradients:
//! - `x0`, `y`, `dy`, `dx`: `[tables, rows_cap, dim]`;
//! - full rank: `w`, `dw`: `[tables, layers, dim, dim]`, each `W_l` row-major `[out, in]` (PyTorch
//!   `Linear` layout, `z = x Wᵀ + b`);
//! - low rank: `u`, `v`, `du`, `dv`: `[tables, layers, dim, rank]`;
//! - `b`, `db`: `[tables, layers, dim]`.
//!
//! The network owns its intermediates (`x_1 … x_{L−1}`, `z_0 … z_{L−1}`, for low rank `x_l V_l`, and
//! the backward's scratch), allocated once for `rows_cap`. `x_L` is not stored: the ReLU's backward
//! reads `y` (`y > 0 ⇔ x_L > 0`). Parameter gradients are overwritten by each backward.

use std::sync::Arc;

use super::check_len;
use super::column_sum::{ColumnSum, SumOutput};
use super::gemm::{Gemm, GemmSpec};
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Access, Gpu, Kernel, Pipeline};
use crate::shaders;

/// Invocations per workgroup of the element-wise kernels.
pub const CROSS_WG: u32 = 256;

/// Mirrors `CrossParams` in `cross.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CrossParams {
    /// Tables in the batch.
    pub tables: u32,
    /// Rows this step.
    pub rows: u32,
    /// Rows each table's slab holds.
    pub rows_cap: u32,
    /// Width `D = F·K`.
    pub dim: u32,
    /// Bit 0: ReLU (forward) or mask (backward); bit 1: accumulate (backward).
    pub flags: u32,
    /// Padding to 32 bytes.
    pub _pad: [u32; 3],
}

/// `x_{l+1} = x_0 ⊙ z_l + x_l` (and ReLU).
pub const CROSS_FORWARD: Kernel = Kernel {
    shader: shaders::CROSS,
    entry: "cross_forward",
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::Uniform,
    ],
};

/// The element-wise backward of one layer.
pub const CROSS_BACKWARD: Kernel = Kernel {
    shader: shaders::CROSS,
    entry: "cross_backward",
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::Uniform,
    ],
};

/// `dx_0 += g_0`.
pub const CROSS_FINISH: Kernel = Kernel {
    shader: shaders::CROSS,
    entry: "cross_finish",
    bindings: &[Access::Read, Access::ReadWrite, Access::Uniform],
};

const FLAG_RELU: u32 = 1;
const FLAG_ACCUMULATE: u32 = 2;

/// Shape of a cross network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossSpec {
    /// Tables (one network each, one dispatch for all).
    pub tables: u32,
    /// Maximum rows (batch size) the buffers hold.
    pub rows_cap: u32,
    /// Width `D = F·K`.
    pub dim: u32,
    /// Cross layers `L ≥ 1`.
    pub layers: u32,
    /// `None`: full-rank `W_l`; `Some(r)`: `W_l = U_l V_lᵀ` of rank `r`.
    pub rank: Option<u32>,
    /// ReLU after the last layer (fused into its element-wise kernel).
    pub relu: bool,
}

impl CrossSpec {
    /// Elements of the weight buffer(s): `w` for full rank, each of `u` and `v` for low rank.
    pub fn weight_len(&self) -> u64 {
        let per_layer = self.dim as u64 * self.rank.unwrap_or(self.dim) as u64;
        self.tables as u64 * self.layers as u64 * per_layer
    }

    /// Elements of the bias buffer.
    pub fn bias_len(&self) -> u64 {
        self.tables as u64 * self.layers as u64 * self.dim as u64
    }

    /// Elements of an activation buffer (`x0`, `y`, `dy`, `dx`).
    pub fn act_len(&self) -> u64 {
        self.tables as u64 * self.rows_cap as u64 * self.dim as u64
    }

    /// Floating-point operations of one forward at `rows` rows (GEMMs and element-wise).
    pub fn forward_flops(&self, rows: u32) -> u64 {
        let (t, b, d, l) = (
            self.tables as u64,
            rows as u64,
            self.dim as u64,
            self.layers as u64,
        );
        let gemm = match self.rank {
            None => 2 * b * d * d,
            Some(r) => 4 * b * d * r as u64,
        };
        t * l * (gemm + 3 * b * d)
    }
}

/// Parameters (or their gradients) of a cross network.
#[derive(Clone, Copy)]
pub enum CrossWeights<'a> {
    /// `[tables, layers, dim, dim]`.
    Full(&'a wgpu::Buffer),
    /// `U` and `V`, each `[tables, layers, dim, rank]`.
    LowRank(&'a wgpu::Buffer, &'a wgpu::Buffer),
}

/// The caller's buffers a cross network binds.
pub struct CrossBuffers<'a> {
    /// Input `x_0`.
    pub x0: &'a wgpu::Buffer,
    /// Weights.
    pub weights: CrossWeights<'a>,
    /// Biases.
    pub bias: &'a wgpu::Buffer,
    /// Output `y`.
    pub y: &'a wgpu::Buffer,
    /// Upstream gradient `dL/dy`.
    pub dy: &'a wgpu::Buffer,
    /// Input gradient `dL/dx_0` (overwritten).
    pub dx: &'a wgpu::Buffer,
    /// Weight gradients (overwritten).
    pub dweights: CrossWeights<'a>,
    /// Bias gradient (overwritten).
    pub dbias: &'a wgpu::Buffer,
}

struct Pointwise {
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    params: wgpu::Buffer,
    flags: u32,
}

/// One layer's recorded work.
struct Layer {
    /// `z_l` (full), or `x_l V_l` then `z_l` (low rank).
    forward_gemms: Vec<Gemm>,
    forward: Pointwise,
    backward: Pointwise,
    /// full: `dW_l`; low rank: `dU_l`, `dt = u U_l`, `dV_l`.
    weight_gemms: Vec<Gemm>,
    bias_sum: ColumnSum,
    /// `g_l += u W_l` (full) or `g_l += dt V_lᵀ` (low rank).
    input_gemm: Gemm,
}

/// A prepared cross network: forward and backward recorded from buffers bound once.
pub struct CrossNetwork {
    spec: CrossSpec,
    layers: Vec<Layer>,
    finish: Pointwise,
    rows: std::sync::atomic::AtomicU32,
    /// Owned intermediates, kept alive for the bind groups.
    _owned: Vec<wgpu::Buffer>,
}

impl CrossNetwork {
    /// Validates `spec` and the buffers, allocates the intermediates and builds every dispatch.
    pub fn new(gpu: &Gpu, spec: CrossSpec, bufs: &CrossBuffers<'_>) -> Result<Self> {
        let name = CROSS_FORWARD.entry;
        if spec.layers == 0 || spec.dim == 0 || spec.tables == 0 {
            return Err(Error::kernel(
                name,
                format!(
                    "tables {}, dim {}, layers {}: each must be at least 1",
                    spec.tables, spec.dim, spec.layers
                ),
            ));
        }
        if spec.rank == Some(0) {
            return Err(Error::kernel(
                name,
                "low rank 0: the rank must be at least 1",
            ));
        }
        let act = spec.act_len();
        if act > u32::MAX as u64 {
            return Err(Error::kernel(
                name,
                format!("{act} activation elements: more than 2^32 − 1"),
            ));
        }
        for (what, buf) in [
            ("x0", bufs.x0),
            ("y", bufs.y),
            ("dy", bufs.dy),
            ("dx", bufs.dx),
        ] {
            check_len(name, what, buf, act)?;
        }
        check_len(name, "bias", bufs.bias, spec.bias_len())?;
        check_len(name, "dbias", bufs.dbias, spec.bias_len())?;
        let check_weights = |what: &str, w: CrossWeights<'_>| -> Result<()> {
            match (w, spec.rank) {
                (CrossWeights::Full(w), None) => check_len(name, "w", w, spec.weight_len()),
                (CrossWeights::LowRank(u, v), Some(_)) => {
                    check_len(name, "u", u, spec.weight_len())?;
                    check_len(name, "v", v, spec.weight_len())
                }
                _ => Err(Error::kernel(
                    name,
                    format!("{what}: full-rank weights need rank None, U and V need Some(rank)"),
                )),
            }
        };
        check_weights("weights", bufs.weights)?;
        check_weights("weight gradients", bufs.dweights)?;

        let (t, cap, d, layers) = (spec.tables, spec.rows_cap, spec.dim, spec.layers);
        let bytes = act * 4;
        let alloc = |label: &str, bytes: u64| gpu.buffer(label, bytes, storage_usage());
        // x_1 … x_{L−1}; x_0 and y are the caller's.
        let xs: Vec<wgpu::Buffer> = (1..layers).map(|_| alloc("cross x_l", bytes)).collect();
        let zs: Vec<wgpu::Buffer> = (0..layers).map(|_| alloc("cross z_l", bytes)).collect();
        let rank = spec.rank.unwrap_or(0);
        let t1s: Vec<wgpu::Buffer> = match spec.rank {
            Some(r) => (0..layers)
                .map(|_| alloc("cross x_l V_l", t as u64 * cap as u64 * r as u64 * 4))
                .collect(),
            None => Vec::new(),
        };
        let u = alloc("cross u", bytes);
        let g = [alloc("cross g even", bytes), alloc("cross g odd", bytes)];
        let dt = alloc("cross dt", t as u64 * cap as u64 * rank.max(1) as u64 * 4);

        let fwd = gpu.pipeline(&CROSS_FORWARD, &[("WG", CROSS_WG as f64)])?;
        let bwd = gpu.pipeline(&CROSS_BACKWARD, &[("WG", CROSS_WG as f64)])?;
        let fin = gpu.pipeline(&CROSS_FINISH, &[("WG", CROSS_WG as f64)])?;
        let pointwise = |pipeline: &Arc<Pipeline>, flags: u32, buffers: &[&wgpu::Buffer]| {
            let params = gpu.uniform_from(
                "cross params",
                &CrossParams {
                    tables: t,
                    rows: cap,
                    rows_cap: cap,
                    dim: d,
                    flags,
                    ..Default::default()
                },
            );
            let mut all = buffers.to_vec();
            all.push(&params);
            let bind_group = pipeline.bind(gpu, &all)?;
            Ok::<_, Error>(Pointwise {
                pipeline: Arc::clone(pipeline),
                bind_group,
                params,
                flags,
            })
        };

        let act_stride = cap as u64 * d as u64;
        let x_of = |l: u32| -> &wgpu::Buffer {
            if l == 0 {
                bufs.x0
            } else {
                &xs[l as usize - 1]
            }
        };
        let mut built = Vec::with_capacity(layers as usize);
        for l in 0..layers {
            let last = l + 1 == layers;
            let xl = x_of(l);
            let next = if last { bufs.y } else { &xs[l as usize] };
            let z = &zs[l as usize];
            let bias_off = l as u64 * d as u64;
            // Forward GEMMs.
            let mut forward_gemms = Vec::new();
            let mut weight_gemms = Vec::new();
            let input_gemm;
            // The top layer reads dy; layer l writes its g into g[l % 2] and reads g[(l + 1) % 2].
            let g_in = if last {
                bufs.dy
            } else {
                &g[(l as usize + 1) % 2]
            };
            let g_out = &g[l as usize % 2];
            match (bufs.weights, bufs.dweights) {
                (CrossWeights::Full(w), CrossWeights::Full(dw)) => {
                    let w_off = l as u64 * d as u64 * d as u64;
                    let w_stride = layers as u64 * d as u64 * d as u64;
                    // z_l = x_l W_lᵀ + b_l: [rows × D]·[D × D]ᵀ.
                    let mut s = GemmSpec::new(t, cap, d, d, false, true);
                    s.stride_a = act_stride;
                    s.stride_b = w_stride;
                    s.offset_b = w_off;
                    s.stride_c = act_stride;
                    s.bias = true;
                    s.stride_bias = layers as u64 * d as u64;
                    s.offset_bias = bias_off;
                    forward_gemms.push(Gemm::new(gpu, &s, xl, w, Some(bufs.bias), None, z)?);
                    // dW_l = uᵀ x_l: [D × rows]·[rows × D].
                    let mut s = GemmSpec::new(t, d, d, cap, true, false);
                    s.stride_a = act_stride;
                    s.stride_b = act_stride;
                    s.stride_c = w_stride;
                    s.offset_c = w_off;
                    weight_gemms.push(Gemm::new(gpu, &s, &u, xl, None, None, dw)?);
                    // g_l += u W_l: [rows × D]·[D × D].
                    let mut s = GemmSpec::new(t, cap, d, d, false, false);
                    s.stride_a = act_stride;
                    s.stride_b = w_stride;
                    s.offset_b = w_off;
                    s.stride_c = act_stride;
                    s.accumulate = true;
                    input_gemm = Gemm::new(gpu, &s, &u, w, None, None, g_out)?;
                }
                (CrossWeights::LowRank(uw, vw), CrossWeights::LowRank(du, dv)) => {
                    let r = rank;
                    let w_off = l as u64 * d as u64 * r as u64;
                    let w_stride = layers as u64 * d as u64 * r as u64;
                    let t_stride = cap as u64 * r as u64;
                    let t1 = &t1s[l as usize];
                    // t1 = x_l V_l: [rows × D]·[D × r].
                    let mut s = GemmSpec::new(t, cap, r, d, false, false);
                    s.stride_a = act_stride;
                    s.stride_b = w_stride;
                    s.offset_b = w_off;
                    s.stride_c = t_stride;
                    forward_gemms.push(Gemm::new(gpu, &s, xl, vw, None, None, t1)?);
                    // z_l = t1 U_lᵀ + b_l: [rows × r]·[D × r]ᵀ.
                    let mut s = GemmSpec::new(t, cap, d, r, false, true);
                    s.stride_a = t_stride;
                    s.stride_b = w_stride;
                    s.offset_b = w_off;
                    s.stride_c = act_stride;
                    s.bias = true;
                    s.stride_bias = layers as u64 * d as u64;
                    s.offset_bias = bias_off;
                    forward_gemms.push(Gemm::new(gpu, &s, t1, uw, Some(bufs.bias), None, z)?);
                    // dU_l = uᵀ t1: [D × rows]·[rows × r].
                    let mut s = GemmSpec::new(t, d, r, cap, true, false);
                    s.stride_a = act_stride;
                    s.stride_b = t_stride;
                    s.stride_c = w_stride;
                    s.offset_c = w_off;
                    weight_gemms.push(Gemm::new(gpu, &s, &u, t1, None, None, du)?);
                    // dt = u U_l: [rows × D]·[D × r].
                    let mut s = GemmSpec::new(t, cap, r, d, false, false);
                    s.stride_a = act_stride;
                    s.stride_b = w_stride;
                    s.offset_b = w_off;
                    s.stride_c = t_stride;
                    weight_gemms.push(Gemm::new(gpu, &s, &u, uw, None, None, &dt)?);
                    // dV_l = x_lᵀ dt: [D × rows]·[rows × r].
                    let mut s = GemmSpec::new(t, d, r, cap, true, false);
                    s.stride_a = act_stride;
                    s.stride_b = t_stride;
                    s.stride_c = w_stride;
                    s.offset_c = w_off;
                    weight_gemms.push(Gemm::new(gpu, &s, xl, &dt, None, None, dv)?);
                    // g_l += dt V_lᵀ: [rows × r]·[D × r]ᵀ.
                    let mut s = GemmSpec::new(t, cap, d, r, false, true);
                    s.stride_a = t_stride;
                    s.stride_b = w_stride;
                    s.offset_b = w_off;
                    s.stride_c = act_stride;
                    s.accumulate = true;
                    input_gemm = Gemm::new(gpu, &s, &dt, vw, None, None, g_out)?;
                }
                _ => unreachable!("checked above"),
            }
            let relu = if last && spec.relu { FLAG_RELU } else { 0 };
            let forward = pointwise(&fwd, relu, &[bufs.x0, z, xl, next])?;
            let accumulate = if last { 0 } else { FLAG_ACCUMULATE };
            let backward = pointwise(
                &bwd,
                relu | accumulate,
                &[g_in, bufs.x0, z, bufs.y, &u, g_out, bufs.dx],
            )?;
            // db_l = Σ_rows u.
            let bias_sum = ColumnSum::new_at(
                gpu,
                t,
                cap,
                d,
                d,
                act_stride,
                false,
                None,
                &u,
                None,
                bufs.dbias,
                SumOutput {
                    offset: bias_off,
                    stride: layers as u64 * d as u64,
                },
            )?;
            built.push(Layer {
                forward_gemms,
                forward,
                backward,
                weight_gemms,
                bias_sum,
                input_gemm,
            });
        }
        let finish = pointwise(&fin, 0, &[&g[0], bufs.dx])?;
        let mut owned = xs;
        owned.extend(zs);
        owned.extend(t1s);
        owned.extend([u, dt]);
        owned.extend(g);
        let net = CrossNetwork {
            spec,
            layers: built,
            finish,
            rows: std::sync::atomic::AtomicU32::new(cap),
            _owned: owned,
        };
        Ok(net)
    }

    /// The network's shape.
    pub fn spec(&self) -> &CrossSpec {
        &self.spec
    }

    /// (GEMMs on the vec4-load path, all GEMMs): widths and ranks that are multiples of 4 keep
    /// every GEMM on the faster path.
    pub fn vectorized_gemms(&self) -> (usize, usize) {
        let all = self.layers.iter().flat_map(|l| {
            l.forward_gemms
                .iter()
                .chain(&l.weight_gemms)
                .chain(std::iter::once(&l.input_gemm))
        });
        let (mut fast, mut total) = (0, 0);
        for g in all {
            fast += g.vectorized() as usize;
            total += 1;
        }
        (fast, total)
    }

    /// Sets the rows (batch size) of the next steps: `rows ≤ rows_cap`.
    pub fn set_rows(&self, gpu: &Gpu, rows: u32) -> Result<()> {
        let s = &self.spec;
        if rows > s.rows_cap {
            return Err(Error::kernel(
                CROSS_FORWARD.entry,
                format!("{rows} rows: more than the {} allocated", s.rows_cap),
            ));
        }
        let (d, r) = (s.dim, s.rank.unwrap_or(s.dim));
        for layer in &self.layers {
            match s.rank {
                None => {
                    layer.forward_gemms[0].set_dims(gpu, rows, d, d)?;
                    layer.weight_gemms[0].set_dims(gpu, d, d, rows)?;
                    layer.input_gemm.set_dims(gpu, rows, d, d)?;
                }
                Some(_) => {
                    layer.forward_gemms[0].set_dims(gpu, rows, r, d)?;
                    layer.forward_gemms[1].set_dims(gpu, rows, d, r)?;
                    layer.weight_gemms[0].set_dims(gpu, d, r, rows)?;
                    layer.weight_gemms[1].set_dims(gpu, rows, r, d)?;
                    layer.weight_gemms[2].set_dims(gpu, d, r, rows)?;
                    layer.input_gemm.set_dims(gpu, rows, d, r)?;
                }
            }
            layer.bias_sum.set_rows(gpu, rows)?;
            for pw in [&layer.forward, &layer.backward] {
                self.write_params(gpu, pw, rows);
            }
        }
        self.write_params(gpu, &self.finish, rows);
        self.rows.store(rows, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn write_params(&self, gpu: &Gpu, pw: &Pointwise, rows: u32) {
        let s = &self.spec;
        let params = CrossParams {
            tables: s.tables,
            rows,
            rows_cap: s.rows_cap,
            dim: s.dim,
            flags: pw.flags,
            ..Default::default()
        };
        gpu.queue
            .write_buffer(&pw.params, 0, bytemuck::bytes_of(&params));
    }

    fn record_pointwise(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, pw: &Pointwise) {
        let s = &self.spec;
        let n = s.tables * self.rows.load(std::sync::atomic::Ordering::Relaxed) * s.dim;
        pw.pipeline
            .dispatch(gpu, pass, &pw.bind_group, n.div_ceil(CROSS_WG));
    }

    /// Records the forward: `y` from `x0` (keeps `x_l`, `z_l` for the backward).
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for layer in &self.layers {
            for gemm in &layer.forward_gemms {
                gemm.record(gpu, pass);
            }
            self.record_pointwise(gpu, pass, &layer.forward);
        }
    }

    /// Records the backward from `dy`: `dx`, the weight and the bias gradients (after a forward).
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for layer in self.layers.iter().rev() {
            self.record_pointwise(gpu, pass, &layer.backward);
            for gemm in &layer.weight_gemms {
                gemm.record(gpu, pass);
            }
            layer.bias_sum.record(gpu, pass);
            layer.input_gemm.record(gpu, pass);
        }
        self.record_pointwise(gpu, pass, &self.finish);
    }
}
