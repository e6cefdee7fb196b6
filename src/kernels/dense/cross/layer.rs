//! One cross layer's GEMMs, full rank or low rank, forward and backward, over the buffers the
//! network owns ([`Scratch`]) and the caller's. Each GEMM's comment gives its product and shapes
//! per table.

use super::{CrossSpec, CrossWeights};
use crate::error::Result;
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::dense::gemm::{Gemm, GemmSpec};

/// The intermediates a network owns, allocated once for `rows_cap`.
pub(super) struct Scratch {
    /// `x_1 … x_{L−1}` (`x_0` and `y` are the caller's).
    pub xs: Vec<wgpu::Buffer>,
    /// `z_0 … z_{L−1}`.
    pub zs: Vec<wgpu::Buffer>,
    /// Low rank: `x_l V_l` per layer.
    pub t1s: Vec<wgpu::Buffer>,
    /// The backward's `u = dL/dz_l`.
    pub u: wgpu::Buffer,
    /// The running input gradient, ping-ponged between layers.
    pub g: [wgpu::Buffer; 2],
    /// Low rank: `dt = u U_l`.
    pub dt: wgpu::Buffer,
}

impl Scratch {
    pub(super) fn new(gpu: &Gpu, spec: &CrossSpec) -> Self {
        let (t, cap, layers) = (spec.tables, spec.rows_cap, spec.layers);
        let bytes = spec.act_len() * 4;
        let alloc = |label: &str, bytes: u64| gpu.buffer(label, bytes, storage_usage());
        let xs = (1..layers).map(|_| alloc("cross x_l", bytes)).collect();
        let zs = (0..layers).map(|_| alloc("cross z_l", bytes)).collect();
        let t1s = match spec.rank {
            Some(r) => (0..layers)
                .map(|_| alloc("cross x_l V_l", t as u64 * cap as u64 * r as u64 * 4))
                .collect(),
            None => Vec::new(),
        };
        let u = alloc("cross u", bytes);
        let g = [alloc("cross g even", bytes), alloc("cross g odd", bytes)];
        let rank = spec.rank.unwrap_or(0);
        let dt = alloc("cross dt", t as u64 * cap as u64 * rank.max(1) as u64 * 4);
        Scratch {
            xs,
            zs,
            t1s,
            u,
            g,
            dt,
        }
    }

    /// Every buffer, to keep alive for the bind groups.
    pub(super) fn into_owned(self) -> Vec<wgpu::Buffer> {
        let mut owned = self.xs;
        owned.extend(self.zs);
        owned.extend(self.t1s);
        owned.extend([self.u, self.dt]);
        owned.extend(self.g);
        owned
    }
}

/// What layer `l`'s GEMMs read and write besides the weights.
pub(super) struct LayerIo<'a> {
    /// The layer.
    pub l: u32,
    /// `x_l`.
    pub xl: &'a wgpu::Buffer,
    /// `z_l`.
    pub z: &'a wgpu::Buffer,
    /// The biases `[tables, layers, dim]`.
    pub bias: &'a wgpu::Buffer,
    /// `g_l`, accumulated into by the input-gradient GEMM.
    pub g_out: &'a wgpu::Buffer,
}

/// One layer's GEMMs.
pub(super) struct LayerGemms {
    /// `z_l` (full), or `x_l V_l` then `z_l` (low rank).
    pub forward: Vec<Gemm>,
    /// full: `dW_l`; low rank: `dU_l`, `dt = u U_l`, `dV_l`.
    pub weight: Vec<Gemm>,
    /// `g_l += u W_l` (full) or `g_l += dt V_lᵀ` (low rank).
    pub input: Gemm,
}

/// Layer `io.l`'s GEMMs for the weights and weight gradients given (`Full` for full rank,
/// `LowRank` for low rank; the network checked that they match the spec).
pub(super) fn layer_gemms(
    gpu: &Gpu,
    spec: &CrossSpec,
    scratch: &Scratch,
    io: &LayerIo<'_>,
    weights: CrossWeights<'_>,
    dweights: CrossWeights<'_>,
) -> Result<LayerGemms> {
    match (weights, dweights, spec.rank) {
        (CrossWeights::Full(w), CrossWeights::Full(dw), _) => {
            full_rank(gpu, spec, scratch, io, w, dw)
        }
        (CrossWeights::LowRank(uw, vw), CrossWeights::LowRank(du, dv), Some(r)) => {
            low_rank(gpu, spec, scratch, io, r, [uw, vw], [du, dv])
        }
        _ => unreachable!("the network checked the weights against the rank"),
    }
}

fn full_rank(
    gpu: &Gpu,
    spec: &CrossSpec,
    scratch: &Scratch,
    io: &LayerIo<'_>,
    w: &wgpu::Buffer,
    dw: &wgpu::Buffer,
) -> Result<LayerGemms> {
    let (t, cap, d, layers) = (spec.tables, spec.rows_cap, spec.dim, spec.layers);
    let act_stride = cap as u64 * d as u64;
    let w_off = io.l as u64 * d as u64 * d as u64;
    let w_stride = layers as u64 * d as u64 * d as u64;
    let u = &scratch.u;
    // z_l = x_l W_lᵀ + b_l: [rows × D]·[D × D]ᵀ.
    let mut s = GemmSpec::new(t, cap, d, d, false, true);
    s.stride_a = act_stride;
    s.stride_b = w_stride;
    s.offset_b = w_off;
    s.stride_c = act_stride;
    s.bias = true;
    s.stride_bias = layers as u64 * d as u64;
    s.offset_bias = io.l as u64 * d as u64;
    let forward = vec![Gemm::new(gpu, &s, io.xl, w, Some(io.bias), None, io.z)?];
    // dW_l = uᵀ x_l: [D × rows]·[rows × D].
    let mut s = GemmSpec::new(t, d, d, cap, true, false);
    s.stride_a = act_stride;
    s.stride_b = act_stride;
    s.stride_c = w_stride;
    s.offset_c = w_off;
    let weight = vec![Gemm::new(gpu, &s, u, io.xl, None, None, dw)?];
    // g_l += u W_l: [rows × D]·[D × D].
    let mut s = GemmSpec::new(t, cap, d, d, false, false);
    s.stride_a = act_stride;
    s.stride_b = w_stride;
    s.offset_b = w_off;
    s.stride_c = act_stride;
    s.accumulate = true;
    let input = Gemm::new(gpu, &s, u, w, None, None, io.g_out)?;
    Ok(LayerGemms {
        forward,
        weight,
        input,
    })
}

fn low_rank(
    gpu: &Gpu,
    spec: &CrossSpec,
    scratch: &Scratch,
    io: &LayerIo<'_>,
    r: u32,
    [uw, vw]: [&wgpu::Buffer; 2],
    [du, dv]: [&wgpu::Buffer; 2],
) -> Result<LayerGemms> {
    let (t, cap, d, layers) = (spec.tables, spec.rows_cap, spec.dim, spec.layers);
    let act_stride = cap as u64 * d as u64;
    let w_off = io.l as u64 * d as u64 * r as u64;
    let w_stride = layers as u64 * d as u64 * r as u64;
    let t_stride = cap as u64 * r as u64;
    let (t1, u, dt) = (&scratch.t1s[io.l as usize], &scratch.u, &scratch.dt);
    // t1 = x_l V_l: [rows × D]·[D × r].
    let mut s = GemmSpec::new(t, cap, r, d, false, false);
    s.stride_a = act_stride;
    s.stride_b = w_stride;
    s.offset_b = w_off;
    s.stride_c = t_stride;
    let mut forward = vec![Gemm::new(gpu, &s, io.xl, vw, None, None, t1)?];
    // z_l = t1 U_lᵀ + b_l: [rows × r]·[D × r]ᵀ.
    let mut s = GemmSpec::new(t, cap, d, r, false, true);
    s.stride_a = t_stride;
    s.stride_b = w_stride;
    s.offset_b = w_off;
    s.stride_c = act_stride;
    s.bias = true;
    s.stride_bias = layers as u64 * d as u64;
    s.offset_bias = io.l as u64 * d as u64;
    forward.push(Gemm::new(gpu, &s, t1, uw, Some(io.bias), None, io.z)?);
    // dU_l = uᵀ t1: [D × rows]·[rows × r].
    let mut s = GemmSpec::new(t, d, r, cap, true, false);
    s.stride_a = act_stride;
    s.stride_b = t_stride;
    s.stride_c = w_stride;
    s.offset_c = w_off;
    let mut weight = vec![Gemm::new(gpu, &s, u, t1, None, None, du)?];
    // dt = u U_l: [rows × D]·[D × r].
    let mut s = GemmSpec::new(t, cap, r, d, false, false);
    s.stride_a = act_stride;
    s.stride_b = w_stride;
    s.offset_b = w_off;
    s.stride_c = t_stride;
    weight.push(Gemm::new(gpu, &s, u, uw, None, None, dt)?);
    // dV_l = x_lᵀ dt: [D × rows]·[rows × r].
    let mut s = GemmSpec::new(t, d, r, cap, true, false);
    s.stride_a = act_stride;
    s.stride_b = t_stride;
    s.stride_c = w_stride;
    s.offset_c = w_off;
    weight.push(Gemm::new(gpu, &s, io.xl, dt, None, None, dv)?);
    // g_l += dt V_lᵀ: [rows × r]·[D × r]ᵀ.
    let mut s = GemmSpec::new(t, cap, d, r, false, true);
    s.stride_a = t_stride;
    s.stride_b = w_stride;
    s.offset_b = w_off;
    s.stride_c = act_stride;
    s.accumulate = true;
    let input = Gemm::new(gpu, &s, dt, vw, None, None, io.g_out)?;
    Ok(LayerGemms {
        forward,
        weight,
        input,
    })
}
