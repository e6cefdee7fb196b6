//! Launchers of `gemm` and `gemm_vec4` (strided-batched GEMM with fused bias, activation,
//! accumulation and operand gates) in `shaders/gemm.wgsl`, and of its workgroup-memory tiled
//! variant `gemm_tiled` (`shaders/gemm_tiled.wgsl`, chosen per device: [`variants`]); [`ColumnSum`] (the bias gradient, same
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
//! # Variants and tiling (measured on llvmpipe, 2 cores; see the shader headers)
//! Workgroups are 8 × 8 invocations. When A's and B's leading dimensions and per-table strides are
//! multiples of 4 and their buffers hold the extent rounded up to a whole vec4, the operands load
//! as vec4s ([`Gemm::vectorized`]) and each invocation owns an 8 × 8 register tile
//! (`gemm_vec4_8x8`, gemm_wide.wgsl); otherwise `gemm` loads scalars into a 4 × 4 tile. The
//! device's variant choice ([`crate::gpu::Family::Gemm`]) may replace the vec4 kernel by another
//! register tile or a workgroup-memory tiled kernel ([`variants`] has the variants and the rule).

mod spec;
pub mod variants;

use std::sync::atomic::{AtomicU32, Ordering};

pub use super::column_sum::{ColumnSum, ColumnSumParams, COLUMN_SUM, COLUMN_SUM_WG};
use super::matrix::vec4_fits;
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;
use spec::{base_params, check_buffers};
pub use spec::{Epilogue, Gate, GateKind, GemmParams, GemmSpec, Operand};
pub(super) use variants::gate_code;
pub use variants::{shape_class, GEMM_TILED, VARIANTS};

/// Rows and columns of C one invocation of `gemm` and `gemm_vec4` computes (the shader's `TM`,
/// `TN`); the default's vec4 kernel owns 2·TILE × 2·TILE ([`variants`]).
pub const TILE: u32 = 4;
/// Invocations along `n` per workgroup.
pub const GEMM_WG_X: u32 = 8;
/// Invocations along `m` per workgroup.
pub const GEMM_WG_Y: u32 = 8;

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

/// A prepared strided-batched GEMM over fixed buffers; dims change per step with [`Gemm::set_dims`].
pub struct Gemm {
    launch: Launch,
    params: Uniform<GemmParams>,
    base: GemmParams,
    spec: GemmSpec,
    vectorized: bool,
    variant: &'static str,
    wg: [u32; 2],
    tile: [u32; 2],
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
        let choice = variants::choose(gpu, s, vectorized);
        let grid = grid_for(choice.wg, choice.tile, s.tables, s.m, s.n);
        let base = base_params(s)?;
        let pipeline = gpu.pipeline(choice.kernel, &choice.constants)?;
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
            variant: choice.name,
            wg: choice.wg,
            tile: choice.tile,
            dims: [s.m, s.n, s.k].map(AtomicU32::new),
        })
    }

    /// The variant that runs ([`variants`]): `"default"` (`gemm_vec4` or `gemm`) or a tiled one.
    pub fn variant(&self) -> &'static str {
        self.variant
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
        let grid = grid_for(self.wg, self.tile, self.spec.tables, m, n);
        self.launch.record_grid(gpu, pass, Grid::Dims(grid));
    }

    /// Floating-point operations of one run at the current dims: `2 · tables · m · n · k`.
    pub fn flops(&self) -> u64 {
        let (m, n, k) = self.dims();
        2 * self.spec.tables as u64 * m as u64 * n as u64 * k as u64
    }
}

/// The grid of a kernel whose workgroups have `wg` = (along n, along m) invocations, each owning
/// `tile` = (columns, rows) of C.
fn grid_for(wg: [u32; 2], tile: [u32; 2], tables: u32, m: u32, n: u32) -> [u32; 3] {
    [
        n.div_ceil(tile[0] * wg[0]).max(1),
        m.div_ceil(tile[1] * wg[1]).max(1),
        tables,
    ]
}
