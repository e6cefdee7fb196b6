//! Launcher of `uncertainty.wgsl`: the loss and logit gradient of the uncertainty heads
//! (METHODS.md §4.4). The heads themselves are a [`Linear`](crate::kernels::dense::linear::Linear)
//! on the tower's last activation; this kernel turns their outputs into the gradient that
//! `Linear`'s backward takes.
//!
//! # Formulas (per row b and output u; `s_bu` from [`loss_scale`])
//! - **Bootstrap** (K heads): `L = Σ_k m_k s_bu BCE(z_k, y)`, `∂L/∂z_k = m_k s_bu (σ(z_k) − y)`,
//!   with `m_k` the (sample, head) mask — Poisson(1) (Oza and Russell's online bootstrap: each
//!   head sees each sample a Poisson(1) number of times) or `2·Bernoulli(½)`. A head therefore
//!   trains on its own resample of the stream, and the heads' spread is the bootstrap's estimate
//!   of the logit's sampling uncertainty.
//! - **Gaussian**: the head writes `μ` and `v = log s²`; `z = μ + s ε`, `s = exp(½ clamp(v))`
//!   ([`LOG_VAR_RANGE`]), `ε ~ N(0, 1)`; `L = s_bu BCE(z, y)`, `∂L/∂μ = s_bu (σ(z) − y)`,
//!   `∂L/∂v = ∂L/∂μ · ε s / 2` (0 where `v` is clamped).
//!
//! # Draws
//! Philox4x32-10 keyed by the run's seed, counter `(row, 16·output + call, step, STREAM)`: a pure
//! function of (seed, step, row, output, head), so a resumed run draws the masks it would have,
//! and no state is stored. A sample's masks are fresh each step it is seen (the online bootstrap's
//! draw per arrival): in a stream every row arrives once; over epochs a row is redrawn each epoch.
//! [`mask`] and [`normal`] recompute any draw on the host.
//!
//! # Layouts
//! `y`/`grad`: value h of (b, u) at `u·stride_u + b·stride_b + h` (the single-tower head's
//! `[rows_cap, outputs·width]`, or the task towers' `[outputs, rows_cap, width]`); labels and the
//! scale `[rows_cap, outputs]`; `loss` `[outputs, rows_cap]`, each (b, u)'s term (the host sums
//! it when it wants the head's loss).

use crate::config::{BootstrapMask, Uncertainty};
use crate::error::Result;
use crate::explore::LOG_VAR_RANGE;
use crate::gpu::{rows_field, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::kernels::dense::check_len;
use crate::rng::philox4x32_10;
use crate::shaders;

/// Invocations per workgroup, one (row, output) each.
pub const UNCERTAINTY_WG: u32 = 64;

/// The Philox counter's fourth word (see the shader).
pub const STREAM: u32 = 0x756E_6365;

/// Mirrors `UncertaintyParams` in `uncertainty.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct UncertaintyParams {
    /// Rows of this step.
    pub rows: u32,
    /// Outputs U.
    pub outputs: u32,
    /// Values per (row, output).
    pub width: u32,
    /// 0 Poisson bootstrap, 1 Bernoulli bootstrap, 2 Gaussian.
    pub kind: u32,
    /// Element stride of an output in `y`.
    pub stride_u: u32,
    /// Element stride of a row in `y`.
    pub stride_b: u32,
    /// Seed, low word (Philox key 0).
    pub seed_lo: u32,
    /// Seed, high word (Philox key 1).
    pub seed_hi: u32,
    /// Training step (Philox counter word 2).
    pub step: u32,
    /// Row stride of `loss`.
    pub rows_cap: u32,
    /// [`LOG_VAR_RANGE`]'s low end.
    pub log_var_lo: f32,
    /// [`LOG_VAR_RANGE`]'s high end.
    pub log_var_hi: f32,
    /// [`poisson_thresholds`].
    pub poisson: [u32; 12],
}

rows_field!(UncertaintyParams);

/// The kernel.
pub const UNCERTAINTY_LOSS: Kernel = Kernel::new(
    shaders::UNCERTAINTY,
    "uncertainty_loss",
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::Uniform,
    ],
);

/// The shape of an [`UncertaintyLoss`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UncertaintySpec {
    /// The head's kind.
    pub kind: Uncertainty,
    /// Outputs U.
    pub outputs: u32,
    /// Largest batch.
    pub rows_cap: u32,
    /// Element strides of an output and of a row in `y` (see the module docs).
    pub stride_u: u32,
    /// See `stride_u`.
    pub stride_b: u32,
}

/// The caller's buffers.
pub struct UncertaintyBuffers<'a> {
    /// The heads' outputs.
    pub y: &'a wgpu::Buffer,
    /// Labels `[rows_cap, outputs]`.
    pub labels: &'a wgpu::Buffer,
    /// [`loss_scale`] `[rows_cap, outputs]`.
    pub scale: &'a wgpu::Buffer,
    /// d(loss)/d(y), `y`'s layout.
    pub grad: &'a wgpu::Buffer,
    /// Each (row, output)'s loss term `[outputs, rows_cap]`.
    pub loss: &'a wgpu::Buffer,
}

/// The prepared kernel: one dispatch per step.
pub struct UncertaintyLoss {
    spec: UncertaintySpec,
    params: UncertaintyParams,
    uniform: Uniform<UncertaintyParams>,
    launch: Launch,
}

/// `floor(F(i) · 2³²)` for `i = 0..12`, F the Poisson(1) CDF: a 32-bit draw `x` gives the mask
/// `#{i : x ≥ T_i}`, Poisson(1) truncated at 12 (the lost mass, `P(X > 12)`, is below 10⁻⁹).
pub fn poisson_thresholds() -> [u32; 12] {
    let mut out = [0u32; 12];
    let (mut term, mut cdf) = ((-1.0f64).exp(), 0.0);
    for (i, t) in out.iter_mut().enumerate() {
        cdf += term;
        term /= (i + 1) as f64;
        *t = (cdf * 4_294_967_296.0).floor() as u32;
    }
    out
}

fn kind_code(kind: Uncertainty) -> u32 {
    match kind {
        Uncertainty::Bootstrap {
            mask: BootstrapMask::Poisson,
            ..
        } => 0,
        Uncertainty::Bootstrap { .. } => 1,
        Uncertainty::Gaussian => 2,
    }
}

/// The words of Philox call `call` for (seed, step, row, output).
fn words(seed: u64, step: u32, row: u32, output: u32, call: u32) -> [u32; 4] {
    let counter = [row, output * 16 + call, step, STREAM];
    philox4x32_10(counter, [seed as u32, (seed >> 32) as u32])
}

/// The bootstrap mask of (row, output, head) at `step`, as the shader draws it.
pub fn mask(mask: BootstrapMask, seed: u64, step: u32, row: u32, output: u32, head: u32) -> u32 {
    let word = words(seed, step, row, output, head / 4)[(head % 4) as usize];
    match mask {
        BootstrapMask::Poisson => {
            poisson_thresholds().iter().filter(|&&t| word >= t).count() as u32
        }
        BootstrapMask::Bernoulli => 2 * (word >= 0x8000_0000) as u32,
    }
}

/// The Gaussian head's ε of (row, output) at `step`, in f64 from the shader's two uniforms.
pub fn normal(seed: u64, step: u32, row: u32, output: u32) -> f64 {
    let w = words(seed, step, row, output, 0);
    let u1 = ((w[0] >> 8) as f64 + 1.0) / 16_777_216.0;
    let u2 = (w[1] >> 8) as f64 / 16_777_216.0;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The per (row, output) loss scale `[rows, outputs]`: the row's weight (1 without weights) over
/// the output's sum of weights of labelled rows, 0 for a missing label (< 0), for an output
/// without a head (`active[u]` false) and where that sum is 0 — the main BCE's normalisation.
pub fn loss_scale(
    labels: &[f32],
    weights: Option<&[f32]>,
    rows: usize,
    active: &[bool],
) -> Vec<f32> {
    let outputs = active.len();
    let w = |b: usize, u: usize| {
        let labelled = labels[b * outputs + u] >= 0.0;
        if !labelled || !active[u] {
            return 0.0;
        }
        weights.map_or(1.0, |w| w[b] as f64)
    };
    let sums: Vec<f64> = (0..outputs)
        .map(|u| (0..rows).map(|b| w(b, u)).sum())
        .collect();
    let mut scale = Vec::with_capacity(rows * outputs);
    for b in 0..rows {
        for (u, &sum) in sums.iter().enumerate() {
            let s = if sum > 0.0 { w(b, u) / sum } else { 0.0 };
            scale.push(s as f32);
        }
    }
    scale
}

impl UncertaintyLoss {
    /// Checks the buffers against `spec` and binds them; rows start at `rows_cap`.
    pub fn new(gpu: &Gpu, spec: UncertaintySpec, b: &UncertaintyBuffers<'_>) -> Result<Self> {
        let name = UNCERTAINTY_LOSS.entry;
        let (cap, outs) = (spec.rows_cap as u64, spec.outputs as u64);
        let width = spec.kind.width();
        let span = (outs.max(1) - 1) * spec.stride_u as u64
            + (cap.max(1) - 1) * spec.stride_b as u64
            + width as u64;
        check_len(name, "y", b.y, span)?;
        check_len(name, "grad", b.grad, span)?;
        check_len(name, "labels", b.labels, cap * outs)?;
        check_len(name, "scale", b.scale, cap * outs)?;
        check_len(name, "loss", b.loss, cap * outs)?;
        let params = UncertaintyParams {
            rows: spec.rows_cap,
            outputs: spec.outputs,
            width,
            kind: kind_code(spec.kind),
            stride_u: spec.stride_u,
            stride_b: spec.stride_b,
            rows_cap: spec.rows_cap,
            log_var_lo: LOG_VAR_RANGE.0,
            log_var_hi: LOG_VAR_RANGE.1,
            poisson: poisson_thresholds(),
            ..Default::default()
        };
        let uniform = Uniform::new(gpu, "uncertainty params", &params);
        let pipeline = gpu.pipeline(&UNCERTAINTY_LOSS, &[("WG", UNCERTAINTY_WG as f64)])?;
        let bind = [b.y, b.labels, b.scale, b.grad, b.loss, uniform.buffer()];
        let launch = Launch::new(
            gpu,
            &pipeline,
            &bind,
            Self::grid(spec.rows_cap, spec.outputs),
        )?;
        Ok(UncertaintyLoss {
            spec,
            params,
            uniform,
            launch,
        })
    }

    fn grid(rows: u32, outputs: u32) -> Grid {
        let n = rows as u64 * outputs as u64;
        Grid::Folded(n.div_ceil(UNCERTAINTY_WG as u64).max(1) as u32)
    }

    /// Sets this step's batch (≤ `rows_cap`).
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let cap = self.spec.rows_cap;
        (self.uniform).set_rows(gpu, UNCERTAINTY_LOSS.entry, &mut self.params, rows, cap)?;
        self.launch.set_grid(Self::grid(rows, self.spec.outputs));
        Ok(())
    }

    /// Sets the seed and step the next submission's draws come from.
    pub fn set_step(&mut self, gpu: &Gpu, seed: u64, step: u32) {
        self.params.seed_lo = seed as u32;
        self.params.seed_hi = (seed >> 32) as u32;
        self.params.step = step;
        self.uniform.write(gpu, &self.params);
    }

    /// Records the loss and gradient (one dispatch).
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}
