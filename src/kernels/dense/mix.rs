//! Launchers of `mix.wgsl`: the multi-task mixture. `U` units (one per task or scenario, each with
//! its tower) mix `E` experts, each unit with its own softmax gate (MMoE, STEM, PLE, AME:
//! METHODS.md §3), or with the plain mean of its experts (a shared bottom).
//!
//! With expert outputs `h` `[E, rows_cap, W]` and, per unit, gate logits `a` `[U, rows_cap, E]`
//! (the caller's GEMM over the concatenated experts), and a route table `[U, E]` of
//! [`ROUTE_PRESENT`], [`ROUTE_TRAIN`] and [`ROUTE_READ`] bits:
//!
//! - forward: `g[u, b, :] = softmax over present e of a[u, b, :]` (absent experts get exactly 0),
//!   saved `[U, rows_cap, E]`; `c[u, b, j] = Σ_e g[u, b, e] · h[e, b, j]`, `[U, rows_cap, W]`;
//! - backward from `dc`: `da[u, b, e] = g · (dg − Σ_k g_k dg_k)` with `dg[u, b, e] = Σ_j dc[u, b, j] ·
//!   h[e, b, j]` for every present expert (the gate learns its weights on stop-gradient experts
//!   too), 0 for absent ones; `dh[e, b, j] = Σ_u (TRAIN: g[u, b, e] · dc[u, b, j]) + (READ: dx[u, b,
//!   e·W + j])`, units in order, the mixture term before the gate-input term of each unit. `dx`
//!   `[U, rows_cap, E·W]` is what the caller's gate GEMM backward wrote for each unit's input.
//!   Without `TRAIN`, unit u's loss does not reach expert e through the mixture: STEM's "All
//!   Forward, Task-specific Backward".
//!
//! [`MixTranspose`] moves the towers' logits `[U, rows_cap]` into the loss's `[rows_cap, U]` and the
//! logits' gradient back.
//!
//! Dispatches, whatever U and E: two forward (the softmax, one invocation per (unit, row); the
//! mixture, one per output element), two backward (da, one workgroup per (unit, row); dh, one
//! invocation per element of dh, so it has one writer and needs no atomics), one in uniform mode
//! (no da). Every sum runs in a fixed order; rows past `rows` are not touched.

use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{rows_field, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup (the WGSL `WG` override).
pub const MIX_WG: u32 = 64;

/// Most experts a mixture takes (`MAX_EXPERTS` in `mix.wgsl`: the backward keeps one (unit, row)'s
/// `dg` in workgroup memory, as the gate does).
pub const MIX_MAX_EXPERTS: u32 = 256;

/// Route bit: the expert is in the unit's mixture.
pub const ROUTE_PRESENT: u32 = 1;
/// Route bit: the unit's loss reaches the expert's output through the mixture (absent:
/// stop-gradient). Needs [`ROUTE_PRESENT`].
pub const ROUTE_TRAIN: u32 = 2;
/// Route bit: the gradient of the unit's gate input reaches the expert's output (needs
/// [`ROUTE_PRESENT`] and [`MixSpec::gate_input_grad`]).
pub const ROUTE_READ: u32 = 4;

/// [`MixParams::flags`] bit: uniform weights, no logits (`UNIFORM` in `mix.wgsl`).
pub const MIX_UNIFORM: u32 = 1;
/// [`MixParams::flags`] bit: `dx` is bound and adds to `dh` where [`ROUTE_READ`] is set.
pub const MIX_GATE_INPUT_GRAD: u32 = 2;

/// Mirrors `MixParams` in `mix.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MixParams {
    /// Units U.
    pub units: u32,
    /// Experts E.
    pub experts: u32,
    /// Rows of this step (≤ `rows_cap`).
    pub rows: u32,
    /// Row stride of every slab.
    pub rows_cap: u32,
    /// Columns W of an expert's output (and of a unit's mixture).
    pub cols: u32,
    /// [`MIX_UNIFORM`] | [`MIX_GATE_INPUT_GRAD`].
    pub flags: u32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 2],
}

rows_field!(MixParams);

use Access::{Read as R, ReadWrite as W, Uniform as U};

/// Softmax of each (unit, row)'s present logits into the gate (forward, first dispatch).
pub const MIX_SOFTMAX: Kernel = Kernel::new(shaders::MIX, "mix_softmax", &[R, R, R, W, W, U]);
/// The mixture `c = Σ_e g_e h_e` per unit (forward, second dispatch).
pub const MIX_FORWARD: Kernel = Kernel::new(shaders::MIX, "mix_forward", &[R, R, R, W, W, U]);
const BACKWARD: &[Access] = &[R, R, R, R, R, W, W, U];
/// The gradient of the gate logits.
pub const MIX_BACKWARD_GATE: Kernel = Kernel::new(shaders::MIX, "mix_backward_gate", BACKWARD);
/// The gradient of the experts' outputs, summed over units.
pub const MIX_BACKWARD_H: Kernel = Kernel::new(shaders::MIX, "mix_backward_h", BACKWARD);
/// `[U, rows_cap] → [rows_cap, U]`.
pub const MIX_TO_ROWS: Kernel = Kernel::new(shaders::MIX, "mix_to_rows", &[R, W, U]);
/// `[rows_cap, U] → [U, rows_cap]`.
pub const MIX_TO_UNITS: Kernel = Kernel::new(shaders::MIX, "mix_to_units", &[R, W, U]);

/// The shape and routing of a [`Mix`].
#[derive(Debug, Clone, Copy)]
pub struct MixSpec<'a> {
    /// Units U (tasks or scenarios), ≥ 1.
    pub units: u32,
    /// Experts E, 1 ..= [`MIX_MAX_EXPERTS`].
    pub experts: u32,
    /// Rows the buffers hold.
    pub rows_cap: u32,
    /// Columns W of each expert's output, ≥ 1.
    pub cols: u32,
    /// Every present expert weighs 1 / (number present): no logits, no da.
    pub uniform: bool,
    /// `dx` is given and adds to `dh` where [`ROUTE_READ`] is set (learned gates only).
    pub gate_input_grad: bool,
    /// `[U, E]` route bits, uploaded once.
    pub route: &'a [u32],
}

/// The caller's buffers of a [`Mix`] (f32).
pub struct MixBuffers<'a> {
    /// Expert outputs `[E, rows_cap, W]` (read).
    pub h: &'a wgpu::Buffer,
    /// Gate logits `[U, rows_cap, E]` (read); `None` in uniform mode.
    pub logits: Option<&'a wgpu::Buffer>,
    /// Gate weights `[U, rows_cap, E]`: written by the forward, read by the backward.
    pub gate: &'a wgpu::Buffer,
    /// Mixtures `[U, rows_cap, W]`.
    pub out: &'a wgpu::Buffer,
    /// Gradient of the mixtures `[U, rows_cap, W]` (read).
    pub grad_out: &'a wgpu::Buffer,
    /// Gradient of `h`, `[E, rows_cap, W]` (overwritten).
    pub grad_h: &'a wgpu::Buffer,
    /// Gradient of the logits `[U, rows_cap, E]` (overwritten); `None` in uniform mode.
    pub grad_logits: Option<&'a wgpu::Buffer>,
    /// Gradient of each unit's gate input `[U, rows_cap, E·W]` (read); `Some` exactly when
    /// [`MixSpec::gate_input_grad`].
    pub grad_x: Option<&'a wgpu::Buffer>,
}

/// A prepared multi-task mixture.
pub struct Mix {
    params: MixParams,
    uniform: Uniform<MixParams>,
    softmax: Launch,
    forward: Launch,
    backward_gate: Option<Launch>,
    backward_h: Launch,
}

/// `Err` unless `route` is `[units, experts]` of known bits, every unit has a present expert, and
/// `TRAIN` / `READ` only mark present experts (`READ` only with a gate-input gradient).
fn check_route(spec: &MixSpec) -> Result<()> {
    let name = MIX_FORWARD.entry;
    let (units, experts) = (spec.units as usize, spec.experts as usize);
    if spec.route.len() != units * experts {
        return Err(Error::kernel(
            name,
            format!(
                "route holds {} entries, units {units} × experts {experts} needed",
                spec.route.len()
            ),
        ));
    }
    let all = ROUTE_PRESENT | ROUTE_TRAIN | ROUTE_READ;
    for (u, row) in spec.route.chunks(experts).enumerate() {
        for (e, &bits) in row.iter().enumerate() {
            let problem = if bits & !all != 0 {
                "has unknown bits (PRESENT = 1, TRAIN = 2, READ = 4)"
            } else if bits & ROUTE_PRESENT == 0 && bits != 0 {
                "sets TRAIN or READ on an absent expert"
            } else if bits & ROUTE_READ != 0 && !spec.gate_input_grad {
                "sets READ without a gate-input gradient (gate_input_grad)"
            } else {
                continue;
            };
            return Err(Error::kernel(
                name,
                format!("route[unit {u}, expert {e}] = {bits:#x} {problem}"),
            ));
        }
        if row.iter().all(|&bits| bits & ROUTE_PRESENT == 0) {
            return Err(Error::kernel(
                name,
                format!("unit {u} has no present expert"),
            ));
        }
    }
    Ok(())
}

/// `Err` unless the shape is in range and the optional buffers match the mode.
fn check_shape(spec: &MixSpec, b: &MixBuffers) -> Result<()> {
    let name = MIX_FORWARD.entry;
    let &MixSpec {
        units,
        experts,
        rows_cap,
        cols,
        ..
    } = spec;
    let dx = units as u64 * rows_cap as u64 * experts as u64 * cols as u64;
    if units == 0 || experts == 0 || cols == 0 || experts > MIX_MAX_EXPERTS || dx > u32::MAX as u64
    {
        return Err(Error::kernel(
            name,
            format!("units {units} × experts {experts} × rows_cap {rows_cap} × cols {cols}: need units, cols ≥ 1, 1 ≤ experts ≤ {MIX_MAX_EXPERTS} and at most 2³² − 1 elements of dx"),
        ));
    }
    let learned = !spec.uniform;
    let problem = if b.logits.is_some() != learned || b.grad_logits.is_some() != learned {
        "logits and grad_logits are given exactly when the gate is learned (not uniform)"
    } else if spec.gate_input_grad && spec.uniform {
        "a uniform mixture has no gate input, so no gate-input gradient"
    } else if b.grad_x.is_some() != spec.gate_input_grad {
        "grad_x is given exactly when gate_input_grad is set"
    } else {
        return Ok(());
    };
    Err(Error::kernel(name, problem))
}

/// `Err` naming the first buffer too small for the spec.
fn check_buffers(spec: &MixSpec, b: &MixBuffers) -> Result<()> {
    let (u, e, r, w) = (
        spec.units as u64,
        spec.experts as u64,
        spec.rows_cap as u64,
        spec.cols as u64,
    );
    let mut wanted = vec![
        ("h", b.h, e * r * w),
        ("grad_h", b.grad_h, e * r * w),
        ("gate", b.gate, u * r * e),
        ("out", b.out, u * r * w),
        ("grad_out", b.grad_out, u * r * w),
    ];
    for (what, buf, n) in [
        ("logits", b.logits, u * r * e),
        ("grad_logits", b.grad_logits, u * r * e),
        ("grad_x", b.grad_x, u * r * e * w),
    ] {
        wanted.extend(buf.map(|buf| (what, buf, n)));
    }
    for (what, buf, n) in wanted {
        check_len(MIX_FORWARD.entry, what, buf, n)?;
    }
    Ok(())
}

/// One launch of `kernel` over `buffers` on `workgroups` folded workgroups.
fn launch(
    gpu: &Gpu,
    kernel: &Kernel,
    buffers: &[&wgpu::Buffer],
    workgroups: u64,
) -> Result<Launch> {
    let pipeline = gpu.pipeline(kernel, &[("WG", MIX_WG as f64)])?;
    let workgroups = u32::try_from(workgroups)
        .map_err(|_| Error::kernel(kernel.entry, format!("{workgroups} workgroups")))?;
    Launch::new(gpu, &pipeline, buffers, Grid::Folded(workgroups))
}

impl Mix {
    /// Validates the spec, the route and the buffers (clear errors, never a panic), uploads the
    /// route, compiles the pipelines and binds them; rows start at `rows_cap`.
    pub fn new(gpu: &Gpu, spec: &MixSpec, b: &MixBuffers) -> Result<Self> {
        check_shape(spec, b)?;
        check_route(spec)?;
        check_buffers(spec, b)?;
        let flags = if spec.uniform { MIX_UNIFORM } else { 0 }
            | if spec.gate_input_grad {
                MIX_GATE_INPUT_GRAD
            } else {
                0
            };
        let params = MixParams {
            units: spec.units,
            experts: spec.experts,
            rows: spec.rows_cap,
            rows_cap: spec.rows_cap,
            cols: spec.cols,
            flags,
            _pad: [0; 2],
        };
        let uniform = Uniform::new(gpu, "mix params", &params);
        let route = gpu.storage_from("mix route", spec.route);
        // Bound where a mode uses nothing (uniform logits and da, no dx), never touched by the
        // shader; two, since one buffer may not be bound read-only and read-write in a dispatch.
        let unused = |label| gpu.storage_from(label, &[0f32; 4]);
        let (unused_read, unused_write) = (unused("mix unused input"), unused("mix unused output"));
        let logits = b.logits.unwrap_or(&unused_read);
        let grad_logits = b.grad_logits.unwrap_or(&unused_write);
        let forward_bufs = [b.h, logits, &route, b.gate, b.out, uniform.buffer()];
        let backward_bufs = [
            b.h,
            b.grad_out,
            &route,
            b.gate,
            b.grad_x.unwrap_or(&unused_read),
            b.grad_h,
            grad_logits,
            uniform.buffer(),
        ];
        let (u, e, r, w) = (
            spec.units as u64,
            spec.experts as u64,
            spec.rows_cap as u64,
            spec.cols as u64,
        );
        let wg = MIX_WG as u64;
        let softmax = launch(gpu, &MIX_SOFTMAX, &forward_bufs, (u * r).div_ceil(wg))?;
        let forward = launch(gpu, &MIX_FORWARD, &forward_bufs, (u * r * w).div_ceil(wg))?;
        let backward_gate = match spec.uniform {
            true => None,
            false => Some(launch(gpu, &MIX_BACKWARD_GATE, &backward_bufs, u * r)?),
        };
        let backward_h = launch(
            gpu,
            &MIX_BACKWARD_H,
            &backward_bufs,
            (e * r * w).div_ceil(wg),
        )?;
        Ok(Mix {
            params,
            uniform,
            softmax,
            forward,
            backward_gate,
            backward_h,
        })
    }

    /// Sets this step's batch (≤ `rows_cap`); takes effect at the next submission.
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let cap = self.params.rows_cap;
        self.uniform
            .set_rows(gpu, MIX_FORWARD.entry, &mut self.params, rows, cap)
    }

    /// The params as the shader sees them.
    pub fn params(&self) -> MixParams {
        self.params
    }

    /// Dispatches recorded by (forward, backward): (2, 2), or (2, 1) in uniform mode, whatever U,
    /// E and the batch.
    pub fn dispatches(&self) -> (u64, u64) {
        (2, 1 + self.backward_gate.is_some() as u64)
    }

    /// Records g from the logits (or the uniform weights), then each unit's mixture.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.softmax.record(gpu, pass);
        self.forward.record(gpu, pass);
    }

    /// Records d(logits) (learned gates) and dh from dc, the saved g and dx.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.record_backward_gate(gpu, pass);
        self.record_backward_h(gpu, pass);
    }

    /// Records d(logits) alone (nothing in uniform mode): the first half of the backward, for a
    /// caller whose gate GEMM turns d(logits) into `dx` before dh reads it.
    pub fn record_backward_gate(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        if let Some(gate) = &self.backward_gate {
            gate.record(gpu, pass);
        }
    }

    /// Records dh alone from dc, the saved g and dx: the second half of the backward.
    pub fn record_backward_h(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.backward_h.record(gpu, pass);
    }
}

/// The caller's buffers of a [`MixTranspose`] (f32).
pub struct MixTransposeBuffers<'a> {
    /// The towers' logits `[U, rows_cap]` (read).
    pub by_unit: &'a wgpu::Buffer,
    /// The same logits `[rows_cap, U]`, for the loss (written by the forward).
    pub by_row: &'a wgpu::Buffer,
    /// The loss's gradient of the logits `[rows_cap, U]` (read).
    pub grad_by_row: &'a wgpu::Buffer,
    /// The same gradient `[U, rows_cap]`, for the towers (written by the backward).
    pub grad_by_unit: &'a wgpu::Buffer,
}

/// The per-unit logits moved between the towers' layout `[U, rows_cap]` and the loss's
/// `[rows_cap, U]`: exact copies, one dispatch each way.
pub struct MixTranspose {
    params: MixParams,
    uniform: Uniform<MixParams>,
    to_rows: Launch,
    to_units: Launch,
}

impl MixTranspose {
    /// Validates `units ≥ 1` and the buffer sizes, then binds both directions; rows start at
    /// `rows_cap`.
    pub fn new(gpu: &Gpu, units: u32, rows_cap: u32, b: &MixTransposeBuffers) -> Result<Self> {
        let name = MIX_TO_ROWS.entry;
        let n = units as u64 * rows_cap as u64;
        if units == 0 || n > u32::MAX as u64 {
            return Err(Error::kernel(
                name,
                format!("units {units} × rows_cap {rows_cap}: need units ≥ 1 and at most 2³² − 1 elements"),
            ));
        }
        for (what, buf) in [
            ("by_unit", b.by_unit),
            ("by_row", b.by_row),
            ("grad_by_row", b.grad_by_row),
            ("grad_by_unit", b.grad_by_unit),
        ] {
            check_len(name, what, buf, n)?;
        }
        let params = MixParams {
            units,
            rows: rows_cap,
            rows_cap,
            ..MixParams::default()
        };
        let uniform = Uniform::new(gpu, "mix transpose params", &params);
        let wg = n.div_ceil(MIX_WG as u64);
        let to_rows = [b.by_unit, b.by_row, uniform.buffer()];
        let to_units = [b.grad_by_row, b.grad_by_unit, uniform.buffer()];
        Ok(MixTranspose {
            to_rows: launch(gpu, &MIX_TO_ROWS, &to_rows, wg)?,
            to_units: launch(gpu, &MIX_TO_UNITS, &to_units, wg)?,
            params,
            uniform,
        })
    }

    /// Sets this step's batch (≤ `rows_cap`); takes effect at the next submission.
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let cap = self.params.rows_cap;
        self.uniform
            .set_rows(gpu, MIX_TO_ROWS.entry, &mut self.params, rows, cap)
    }

    /// Dispatches recorded by (forward, backward): (1, 1).
    pub fn dispatches(&self) -> (u64, u64) {
        (1, 1)
    }

    /// Records `by_unit → by_row`.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.to_rows.record(gpu, pass);
    }

    /// Records `grad_by_row → grad_by_unit`.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.to_units.record(gpu, pass);
    }
}
