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

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::check_len;
use super::column_sum::{ColumnSum, SumOutput};
use super::gemm::Gemm;
use crate::error::{Error, Result};
use crate::gpu::{check_rows, Access, Gpu, Grid, Kernel, Launch, Pipeline, Uniform};
use crate::shaders;

mod layer;

use layer::{layer_gemms, LayerIo, Scratch};

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
pub const CROSS_FORWARD: Kernel = Kernel::new(
    shaders::CROSS,
    "cross_forward",
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::Uniform,
    ],
);

/// The element-wise backward of one layer.
pub const CROSS_BACKWARD: Kernel = Kernel::new(
    shaders::CROSS,
    "cross_backward",
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::Uniform,
    ],
);

/// `dx_0 += g_0`.
pub const CROSS_FINISH: Kernel = Kernel::new(
    shaders::CROSS,
    "cross_finish",
    &[Access::Read, Access::ReadWrite, Access::Uniform],
);

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

    /// The element-wise kernels' params at `rows` rows.
    fn params(&self, rows: u32, flags: u32) -> CrossParams {
        CrossParams {
            tables: self.tables,
            rows,
            rows_cap: self.rows_cap,
            dim: self.dim,
            flags,
            ..Default::default()
        }
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

/// One element-wise dispatch; its grid follows the network's rows.
struct Pointwise {
    launch: Launch,
    params: Uniform<CrossParams>,
    flags: u32,
}

impl Pointwise {
    /// `pipeline` over `buffers` and its own params (at capacity) with `flags`.
    fn new(
        gpu: &Gpu,
        spec: &CrossSpec,
        pipeline: &Arc<Pipeline>,
        flags: u32,
        buffers: &[&wgpu::Buffer],
    ) -> Result<Self> {
        let params = Uniform::new(gpu, "cross params", &spec.params(spec.rows_cap, flags));
        let mut all = buffers.to_vec();
        all.push(params.buffer());
        let launch = Launch::new(gpu, pipeline, &all, Grid::Folded(0))?;
        Ok(Pointwise {
            launch,
            params,
            flags,
        })
    }
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
    rows: AtomicU32,
    /// Owned intermediates, kept alive for the bind groups.
    _owned: Vec<wgpu::Buffer>,
}

impl CrossNetwork {
    /// Validates `spec` and the buffers, allocates the intermediates and builds every dispatch.
    pub fn new(gpu: &Gpu, spec: CrossSpec, bufs: &CrossBuffers<'_>) -> Result<Self> {
        validate(&spec, bufs)?;
        let scratch = Scratch::new(gpu, &spec);
        let fwd = gpu.pipeline(&CROSS_FORWARD, &[("WG", CROSS_WG as f64)])?;
        let bwd = gpu.pipeline(&CROSS_BACKWARD, &[("WG", CROSS_WG as f64)])?;
        let fin = gpu.pipeline(&CROSS_FINISH, &[("WG", CROSS_WG as f64)])?;
        let layers = (0..spec.layers)
            .map(|l| build_layer(gpu, &spec, bufs, &scratch, l, [&fwd, &bwd]))
            .collect::<Result<Vec<_>>>()?;
        let finish = Pointwise::new(gpu, &spec, &fin, 0, &[&scratch.g[0], bufs.dx])?;
        Ok(CrossNetwork {
            spec,
            layers,
            finish,
            rows: AtomicU32::new(spec.rows_cap),
            _owned: scratch.into_owned(),
        })
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
        check_rows(CROSS_FORWARD.entry, rows, s.rows_cap)?;
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
        self.rows.store(rows, Ordering::Relaxed);
        Ok(())
    }

    fn write_params(&self, gpu: &Gpu, pw: &Pointwise, rows: u32) {
        pw.params.write(gpu, &self.spec.params(rows, pw.flags));
    }

    fn record_pointwise(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, pw: &Pointwise) {
        let s = &self.spec;
        let n = s.tables * self.rows.load(Ordering::Relaxed) * s.dim;
        pw.launch
            .record_grid(gpu, pass, Grid::Folded(n.div_ceil(CROSS_WG)));
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

/// `Err` naming the kernel unless the shape is non-empty, indexes in u32, and every buffer holds
/// its tensor (weights of the kind the rank calls for).
fn validate(spec: &CrossSpec, bufs: &CrossBuffers<'_>) -> Result<()> {
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
    check_weights("weight gradients", bufs.dweights)
}

/// Layer `l`: its GEMMs, its element-wise forward and backward, its bias-gradient column sum.
fn build_layer(
    gpu: &Gpu,
    spec: &CrossSpec,
    bufs: &CrossBuffers<'_>,
    scratch: &Scratch,
    l: u32,
    [fwd, bwd]: [&Arc<Pipeline>; 2],
) -> Result<Layer> {
    let (t, cap, d, layers) = (spec.tables, spec.rows_cap, spec.dim, spec.layers);
    let last = l + 1 == layers;
    let xl = if l == 0 {
        bufs.x0
    } else {
        &scratch.xs[l as usize - 1]
    };
    let next = if last {
        bufs.y
    } else {
        &scratch.xs[l as usize]
    };
    let z = &scratch.zs[l as usize];
    // The top layer reads dy; layer l writes its g into g[l % 2] and reads g[(l + 1) % 2].
    let g_in = if last {
        bufs.dy
    } else {
        &scratch.g[(l as usize + 1) % 2]
    };
    let g_out = &scratch.g[l as usize % 2];
    let io = LayerIo {
        l,
        xl,
        z,
        bias: bufs.bias,
        g_out,
    };
    let gemms = layer_gemms(gpu, spec, scratch, &io, bufs.weights, bufs.dweights)?;
    let relu = if last && spec.relu { FLAG_RELU } else { 0 };
    let forward = Pointwise::new(gpu, spec, fwd, relu, &[bufs.x0, z, xl, next])?;
    let accumulate = if last { 0 } else { FLAG_ACCUMULATE };
    let u = &scratch.u;
    let backward = Pointwise::new(
        gpu,
        spec,
        bwd,
        relu | accumulate,
        &[g_in, bufs.x0, z, bufs.y, u, g_out, bufs.dx],
    )?;
    // db_l = Σ_rows u.
    let bias_sum = ColumnSum::new_at(
        gpu,
        t,
        cap,
        d,
        d,
        cap as u64 * d as u64,
        false,
        None,
        u,
        None,
        bufs.dbias,
        SumOutput {
            offset: l as u64 * d as u64,
            stride: layers as u64 * d as u64,
        },
    )?;
    Ok(Layer {
        forward_gemms: gemms.forward,
        forward,
        backward,
        weight_gemms: gemms.weight,
        bias_sum,
        input_gemm: gemms.input,
    })
}
