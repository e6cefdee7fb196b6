//! Launchers of `gemm` and `gemm_vec4` (strided-batched GEMM with fused bias, activation,
//! accumulation and operand gates) in `shaders/gemm.wgsl`; [`ColumnSum`] (the bias gradient, same
//! shader) lives in [`super::column_sum`] and is re-exported here.
//!
//! # Layouts
//! All matrices are `f32`, row-major, table-batched: table `t`'s matrix starts `t · stride` elements
//! into its buffer (`stride` 0 = one matrix shared by every table, e.g. one weight).
//! - `A` is stored `m × k` with leading dimension `lda` (`trans_a = false`) or `k × m` (`trans_a`);
//! - `B` is stored `k × n` with `ldb` (`trans_b = false`) or `n × k` (`trans_b`);
//! - `C` is `m × n` with `ldc`; `bias` is `[tables, n]` with `stride_bias` per table (0 = shared).
//!
//! Linear layers (`y = x Wᵀ + b`, `W` stored `[out, in]`) map as: forward `Y = X · Wᵀ`
//! (`trans_b`), input gradient `dX = dY · W` (no transposes), weight gradient `dW = dYᵀ · X`
//! (`trans_a`), bias gradient [`ColumnSum`] over `dY`. ReLU backward fuses as
//! [`Gate`]`{ kind: ReluMask }` on the `dY` operand, gated by the stored output `Y`.
//!
//! # Bounds
//! [`Gemm::new`] checks every buffer against the largest index the capacities can reach (and that
//! it fits in `u32`), and [`Gemm::set_dims`] keeps dims within the capacities, so no index the
//! shader computes can leave its buffer. The pipelines nevertheless keep wgpu's injected bounds
//! checks: built without them (`create_shader_module_trusted`, `ShaderRuntimeChecks::unchecked()`)
//! the GEMM ran no faster on llvmpipe (4096×400×400: 3.5–3.6 GFLOP/s either way, alternating runs
//! in one session), so the unsafe opt-in was not worth adding.
//!
//! # Variants and tiling (measured on llvmpipe, 2 cores; see the shader header)
//! Each invocation owns a 4 × 4 register tile; workgroups are 8 × 8 invocations. When A's and B's
//! leading dimensions and per-table strides are multiples of 4 and their buffers hold the extent
//! rounded up to a whole vec4, `gemm_vec4` loads the operands as vec4s ([`Gemm::vectorized`]);
//! otherwise `gemm` loads scalars.

use std::sync::atomic::{AtomicU32, Ordering};

pub use super::column_sum::{ColumnSum, ColumnSumParams, COLUMN_SUM, COLUMN_SUM_WG};
use super::matrix::{check_matrix, extent, fits, vec4_fits};
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Rows and columns of C one invocation computes (the shader's `TM`, `TN`).
pub const TILE: u32 = 4;
/// Invocations along `n` per workgroup.
pub const GEMM_WG_X: u32 = 8;
/// Invocations along `m` per workgroup.
pub const GEMM_WG_Y: u32 = 8;

/// The GEMM's variants ([`crate::gpu::variants`]); the first is the default path.
pub const VARIANTS: &[crate::gpu::Variant] = &[crate::gpu::Variant::DEFAULT];

/// Mirrors `GemmParams` in `gemm.wgsl`: the host's (trans, ld) folded into element strides.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GemmParams {
    /// Rows of C.
    pub m: u32,
    /// Columns of C.
    pub n: u32,
    /// Inner dimension.
    pub k: u32,
    /// Stride of A between rows `i` of op(A).
    pub a_row: u32,
    /// Stride of A between inner indices `p`.
    pub a_step: u32,
    /// Stride of B between inner indices `p`.
    pub b_step: u32,
    /// Stride of B between columns `j` of op(B).
    pub b_col: u32,
    /// Leading dimension of C.
    pub ldc: u32,
    /// Per-table stride of A (0 = shared).
    pub stride_a: u32,
    /// Per-table stride of B (0 = shared).
    pub stride_b: u32,
    /// Per-table stride of C.
    pub stride_c: u32,
    /// Per-table stride of the bias (0 = shared).
    pub stride_bias: u32,
    /// Element offset of table 0's A (and of the gate when it gates A).
    pub offset_a: u32,
    /// Element offset of table 0's B (and of the gate when it gates B).
    pub offset_b: u32,
    /// Element offset of table 0's C.
    pub offset_c: u32,
    /// Element offset of table 0's bias.
    pub offset_bias: u32,
}

/// The GEMM kernel's description.
pub const GEMM: Kernel = Kernel::new(
    shaders::GEMM,
    "gemm",
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::Uniform,
    ],
);

/// The GEMM kernel's vec4-load variant (both operands' leading dimensions and strides multiples
/// of 4).
pub const GEMM_VEC4: Kernel = Kernel::new(GEMM.shader, "gemm_vec4", GEMM.bindings);

/// The activation applied after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Epilogue {
    /// `x`
    #[default]
    Identity,
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + e^-x)`
    Sigmoid,
}

/// Which operand of the product a [`Gate`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// The left operand, A.
    A,
    /// The right operand, B.
    B,
}

/// How a gate value `p` modifies an operand value `x` on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    /// `x · (p > 0)`: ReLU backward through the stored ReLU output `p`.
    ReluMask,
    /// `x · p`.
    Product,
}

/// An elementwise gate on one operand; the gate buffer has the operand's layout (same leading
/// dimension, same per-table stride, same transposition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The gated operand.
    pub operand: Operand,
    /// The gate function.
    pub kind: GateKind,
}

/// The shape and layout of a strided-batched GEMM; see the module docs for the layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmSpec {
    /// Matrices in the batch (the z grid dimension).
    pub tables: u32,
    /// Capacity of rows of C.
    pub m: u32,
    /// Capacity of columns of C.
    pub n: u32,
    /// Capacity of the inner dimension.
    pub k: u32,
    /// A is stored `k × m` rather than `m × k`.
    pub trans_a: bool,
    /// B is stored `n × k` rather than `k × n`.
    pub trans_b: bool,
    /// Leading dimension of A as stored.
    pub lda: u32,
    /// Leading dimension of B as stored.
    pub ldb: u32,
    /// Leading dimension of C.
    pub ldc: u32,
    /// Elements between tables' A (0 = shared).
    pub stride_a: u64,
    /// Elements between tables' B (0 = shared).
    pub stride_b: u64,
    /// Elements between tables' C.
    pub stride_c: u64,
    /// Whether a bias `[tables, n]` is added.
    pub bias: bool,
    /// Elements between tables' bias (0 = shared).
    pub stride_bias: u64,
    /// The activation.
    pub epilogue: Epilogue,
    /// C += result instead of C = result.
    pub accumulate: bool,
    /// An optional gate on A or B (its buffer has the gated operand's layout and offset).
    pub gate: Option<Gate>,
    /// Element offset of table 0's A in its buffer: with the strides, tensors can live at any
    /// place of a larger buffer (a model's flat parameter buffer, one layer of a stack).
    pub offset_a: u64,
    /// Element offset of table 0's B.
    pub offset_b: u64,
    /// Element offset of table 0's C.
    pub offset_c: u64,
    /// Element offset of table 0's bias.
    pub offset_bias: u64,
}

impl GemmSpec {
    /// Contiguous tensors: leading dimensions as stored, strides one full matrix per table, no
    /// bias, identity, overwrite, no gate.
    pub fn new(tables: u32, m: u32, n: u32, k: u32, trans_a: bool, trans_b: bool) -> Self {
        GemmSpec {
            tables,
            m,
            n,
            k,
            trans_a,
            trans_b,
            lda: if trans_a { m } else { k },
            ldb: if trans_b { k } else { n },
            ldc: n,
            stride_a: m as u64 * k as u64,
            stride_b: k as u64 * n as u64,
            stride_c: m as u64 * n as u64,
            bias: false,
            stride_bias: n as u64,
            epilogue: Epilogue::Identity,
            accumulate: false,
            gate: None,
            offset_a: 0,
            offset_b: 0,
            offset_c: 0,
            offset_bias: 0,
        }
    }
}

/// A prepared strided-batched GEMM over fixed buffers; dims change per step with [`Gemm::set_dims`].
pub struct Gemm {
    launch: Launch,
    params: Uniform<GemmParams>,
    base: GemmParams,
    spec: GemmSpec,
    vectorized: bool,
    dims: [AtomicU32; 3],
}

impl Gemm {
    /// Validates `spec` against the buffers (at capacity) and builds the pipeline and bind group.
    /// `bias` is required iff `spec.bias`, `gate` iff `spec.gate`. `c` must not alias an input.
    pub fn new(
        gpu: &Gpu,
        spec: &GemmSpec,
        a: &wgpu::Buffer,
        b: &wgpu::Buffer,
        bias: Option<&wgpu::Buffer>,
        gate: Option<&wgpu::Buffer>,
        c: &wgpu::Buffer,
    ) -> Result<Gemm> {
        check_buffers(spec, a, b, bias, gate, c)?;
        let s = spec;
        let dummy = gpu.buffer("gemm unused binding", 16, storage_usage());
        let vectorized = vec4_fits(s, a, b, gate);
        let grid = Self::grid_for(s.tables, s.m, s.n);
        let base = base_params(s)?;
        let constants = constants(s);
        let kernel = if vectorized { &GEMM_VEC4 } else { &GEMM };
        // The scalar kernel has no A_ALONG_K / B_ALONG_K overrides.
        let constants = if vectorized {
            &constants[..]
        } else {
            &constants[..constants.len() - 2]
        };
        let pipeline = gpu.pipeline(kernel, constants)?;
        pipeline.check_grid(gpu, grid)?;
        let params = Uniform::new(gpu, "gemm params", &base);
        let buffers = [
            a,
            b,
            bias.unwrap_or(&dummy),
            gate.unwrap_or(&dummy),
            c,
            params.buffer(),
        ];
        Ok(Gemm {
            launch: Launch::new(gpu, &pipeline, &buffers, Grid::Dims(grid))?,
            params,
            base,
            spec: *spec,
            vectorized,
            dims: [s.m, s.n, s.k].map(AtomicU32::new),
        })
    }

    fn grid_for(tables: u32, m: u32, n: u32) -> [u32; 3] {
        [
            n.div_ceil(TILE * GEMM_WG_X).max(1),
            m.div_ceil(TILE * GEMM_WG_Y).max(1),
            tables,
        ]
    }

    /// The spec it was built with (capacities).
    pub fn spec(&self) -> &GemmSpec {
        &self.spec
    }

    /// Sets the dims of the next recorded runs (each ≤ its capacity). Call before [`Gemm::record`]:
    /// the grid is sized from the dims at record time, the uniform is written at the next submit.
    pub fn set_dims(&self, gpu: &Gpu, m: u32, n: u32, k: u32) -> Result<()> {
        let s = &self.spec;
        if m > s.m || n > s.n || k > s.k {
            return Err(Error::kernel(
                GEMM.entry,
                format!(
                    "dims {m}×{n}×{k} exceed the capacities {}×{}×{}",
                    s.m, s.n, s.k
                ),
            ));
        }
        let params = GemmParams {
            m,
            n,
            k,
            ..self.base
        };
        self.params.write(gpu, &params);
        for (slot, v) in self.dims.iter().zip([m, n, k]) {
            slot.store(v, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether the vec4-load variant (`gemm_vec4`) was chosen: every leading dimension and
    /// per-table stride of A, B (and the gate) is a multiple of 4 and each buffer holds its extent
    /// rounded up to a whole vec4.
    pub fn vectorized(&self) -> bool {
        self.vectorized
    }

    /// The current dims (m, n, k).
    pub fn dims(&self) -> (u32, u32, u32) {
        let [m, n, k] = self.dims.each_ref().map(|d| d.load(Ordering::Relaxed));
        (m, n, k)
    }

    /// Records exactly one dispatch (at least one workgroup per dimension even when m or n is 0,
    /// so a step's dispatch count does not depend on the batch; empty tiles exit at once). Nothing
    /// is recorded only when `tables` is 0.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        let (m, n, _) = self.dims();
        let grid = Self::grid_for(self.spec.tables, m, n);
        self.launch.record_grid(gpu, pass, Grid::Dims(grid));
    }

    /// Floating-point operations of one run at the current dims: `2 · tables · m · n · k`.
    pub fn flops(&self) -> u64 {
        let (m, n, k) = self.dims();
        2 * self.spec.tables as u64 * m as u64 * n as u64 * k as u64
    }
}

/// `Err` naming the kernel unless every buffer holds its matrix at capacity, C's tables do not
/// overlap, and the optional buffers match the spec.
fn check_buffers(
    spec: &GemmSpec,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    gate: Option<&wgpu::Buffer>,
    c: &wgpu::Buffer,
) -> Result<()> {
    let name = GEMM.entry;
    let s = spec;
    let (a_rows, a_cols) = if s.trans_a { (s.k, s.m) } else { (s.m, s.k) };
    let (b_rows, b_cols) = if s.trans_b { (s.n, s.k) } else { (s.k, s.n) };
    check_matrix(
        name, "A", a, s.offset_a, s.tables, s.stride_a, a_rows, a_cols, s.lda,
    )?;
    check_matrix(
        name, "B", b, s.offset_b, s.tables, s.stride_b, b_rows, b_cols, s.ldb,
    )?;
    check_matrix(
        name, "C", c, s.offset_c, s.tables, s.stride_c, s.m, s.n, s.ldc,
    )?;
    if s.tables > 1 && s.m > 0 && s.n > 0 && s.stride_c < extent(1, 0, s.m, s.n, s.ldc) {
        return Err(Error::kernel(
            name,
            format!(
                "C: per-table stride {} overlaps a {}×{} matrix with ldc {}",
                s.stride_c, s.m, s.n, s.ldc
            ),
        ));
    }
    if bias.is_some() != s.bias || gate.is_some() != s.gate.is_some() {
        return Err(Error::kernel(
            name,
            format!(
                "spec says bias {} gate {}, buffers given: bias {} gate {}",
                s.bias,
                s.gate.is_some(),
                bias.is_some(),
                gate.is_some()
            ),
        ));
    }
    if let Some(bias) = bias {
        check_matrix(
            name,
            "bias",
            bias,
            s.offset_bias,
            s.tables,
            s.stride_bias,
            1,
            s.n,
            s.n,
        )?;
    }
    if let (Some(g), Some(gate)) = (s.gate, gate) {
        let (offset, stride, rows, cols, ld) = match g.operand {
            Operand::A => (s.offset_a, s.stride_a, a_rows, a_cols, s.lda),
            Operand::B => (s.offset_b, s.stride_b, b_rows, b_cols, s.ldb),
        };
        check_matrix(name, "gate", gate, offset, s.tables, stride, rows, cols, ld)?;
    }
    Ok(())
}

/// The uniform at capacity: the host's (trans, ld) folded into element strides.
fn base_params(s: &GemmSpec) -> Result<GemmParams> {
    let name = GEMM.entry;
    Ok(GemmParams {
        m: s.m,
        n: s.n,
        k: s.k,
        a_row: if s.trans_a { 1 } else { s.lda },
        a_step: if s.trans_a { s.lda } else { 1 },
        b_step: if s.trans_b { 1 } else { s.ldb },
        b_col: if s.trans_b { s.ldb } else { 1 },
        ldc: s.ldc,
        stride_a: fits(name, "stride_a", s.stride_a)?,
        stride_b: fits(name, "stride_b", s.stride_b)?,
        stride_c: fits(name, "stride_c", s.stride_c)?,
        stride_bias: fits(name, "stride_bias", s.stride_bias)?,
        offset_a: fits(name, "offset_a", s.offset_a)?,
        offset_b: fits(name, "offset_b", s.offset_b)?,
        offset_c: fits(name, "offset_c", s.offset_c)?,
        offset_bias: fits(name, "offset_bias", s.offset_bias)?,
    })
}

/// The pipeline's override constants; the last two only exist in `gemm_vec4`.
fn constants(s: &GemmSpec) -> [(&'static str, f64); 9] {
    [
        ("WG_X", GEMM_WG_X as f64),
        ("WG_Y", GEMM_WG_Y as f64),
        ("EPILOGUE", s.epilogue as u32 as f64),
        ("HAS_BIAS", s.bias as u32 as f64),
        ("ACCUMULATE", s.accumulate as u32 as f64),
        ("GATE", gate_code(s.gate.map(|g| g.kind))),
        (
            "GATE_ON_B",
            (s.gate.map(|g| g.operand) == Some(Operand::B)) as u32 as f64,
        ),
        ("A_ALONG_K", !s.trans_a as u32 as f64),
        ("B_ALONG_K", s.trans_b as u32 as f64),
    ]
}

pub(super) fn gate_code(kind: Option<GateKind>) -> f64 {
    match kind {
        None => 0.0,
        Some(GateKind::ReluMask) => 1.0,
        Some(GateKind::Product) => 2.0,
    }
}
