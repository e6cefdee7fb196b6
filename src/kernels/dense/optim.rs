//! Launchers of `optim.wgsl`: Adam, AdamW and SGD with momentum over flat buffers, global-norm
//! gradient clipping without a host round trip (the learning-rate schedule that feeds it is the
//! trainer's: `crate::train::policy::Schedule`).
//!
//! # Buffers
//! The graph compiler places every dense tensor of a model at an offset in one flat f32 buffer of
//! `len` parameters; the gradients sit at the same offsets in a buffer of `len`, and the optimizer
//! state in a buffer of [`DenseOptimizer::state_len`] f32, planar so each state tensor slices like
//! its parameter: Adam/AdamW `m` (torch's `exp_avg`) at `[0, len)` and `v` (`exp_avg_sq`) at
//! `[len, 2·len)`; SGD's momentum buffer at `[0, len)`. Step 1 ignores the state's contents (torch
//! starts from zeros and from a copy of g), so a fresh state buffer needs no clearing; a resumed run
//! loads it and continues at its step.
//!
//! # A step
//! [`DenseOptimizer::set_step`] writes the learning rate, the step and the bias corrections (f64 on
//! the host) into the uniform; [`DenseOptimizer::record`] records a fixed number of dispatches: with
//! clipping, `norm_partials` and `norm_finish` (a two-stage, fixed-order sum of squares into the
//! [norm buffer](DenseOptimizer::norm_buffer)), then `dense_step`, which scales g by the clip factor
//! as it reads it. Gradients are never written. Write the uniform once per submission: a queue write
//! lands before every command buffer submitted after it.

use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup of `dense_step` (one element each).
pub const STEP_WG: u32 = 256;
/// Invocations per workgroup of the norm reductions (a power of two).
pub const RED_WG: u32 = 256;
/// Most partial sums the first reduction stage writes: enough workgroups to fill a large GPU, few
/// enough that one workgroup sums them in a handful of loads per invocation.
pub const MAX_PARTIALS: u32 = 1024;

/// Mirrors `OptimParams` in `optim.wgsl`; one struct serves all three entry points.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct OptimParams {
    /// Elements of the parameter and gradient buffers.
    pub len: u32,
    /// Partial sums written by `norm_partials` (its workgroup count).
    pub partial_count: u32,
    /// 1 on step 1: the state's old contents are ignored.
    pub first: u32,
    /// Clipping threshold (global L2 norm).
    pub max_norm: f32,
    /// Learning rate.
    pub lr: f32,
    /// L2 weight decay added to the gradient (Adam, SGD); 0 for AdamW.
    pub weight_decay: f32,
    /// AdamW's decoupled decay factor 1 − lr·wd; 1 otherwise.
    pub decay: f32,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// 1 − β1, computed in f64.
    pub one_minus_beta1: f32,
    /// 1 − β2, computed in f64.
    pub one_minus_beta2: f32,
    /// Adam ε.
    pub eps: f32,
    /// lr / (1 − β1^step).
    pub step_size: f32,
    /// 1 / sqrt(1 − β2^step).
    pub inv_sqrt_bc2: f32,
    /// SGD momentum μ.
    pub momentum: f32,
    /// Padding to 64 bytes.
    pub _pad0: u32,
}

const BINDINGS: &[Access] = &[
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::Uniform,
];

/// The update kernel.
pub const DENSE_STEP: Kernel = Kernel::new(shaders::OPTIM, "dense_step", BINDINGS);
/// First stage of the gradient norm: per-workgroup sums of squares.
pub const NORM_PARTIALS: Kernel = Kernel::new(shaders::OPTIM, "norm_partials", BINDINGS);
/// Second stage: one workgroup sums the partials into the norm and the clip factor.
pub const NORM_FINISH: Kernel = Kernel::new(shaders::OPTIM, "norm_finish", BINDINGS);

/// A dense optimizer and its hyper-parameters, with PyTorch's semantics (f64 here: the kernel gets
/// 1 − β and the bias corrections computed in f64, so an f32 β does not cost digits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DenseOptimizerKind {
    /// `torch.optim.Adam`: weight decay as L2 (g += wd·p).
    Adam {
        /// β1.
        beta1: f64,
        /// β2.
        beta2: f64,
        /// ε.
        eps: f64,
        /// L2 weight decay.
        weight_decay: f64,
    },
    /// `torch.optim.AdamW`: decoupled weight decay (p ·= 1 − lr·wd before the Adam step).
    AdamW {
        /// β1.
        beta1: f64,
        /// β2.
        beta2: f64,
        /// ε.
        eps: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
    /// `torch.optim.SGD` with momentum μ, dampening 0, weight decay as L2.
    SgdMomentum {
        /// μ.
        momentum: f64,
        /// Nesterov momentum (needs μ > 0, as in torch).
        nesterov: bool,
        /// L2 weight decay.
        weight_decay: f64,
    },
}

impl DenseOptimizerKind {
    fn code(&self) -> u32 {
        match self {
            DenseOptimizerKind::Adam { .. } => 0,
            DenseOptimizerKind::AdamW { .. } => 1,
            DenseOptimizerKind::SgdMomentum { nesterov, .. } => 2 + *nesterov as u32,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::kernel(DENSE_STEP.entry, what));
        let (wd, betas, eps) = match *self {
            DenseOptimizerKind::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            }
            | DenseOptimizerKind::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => (weight_decay, [beta1, beta2], eps),
            DenseOptimizerKind::SgdMomentum {
                momentum,
                nesterov,
                weight_decay,
            } => {
                if !(momentum.is_finite() && momentum >= 0.0) || (nesterov && momentum <= 0.0) {
                    return bad(format!(
                        "momentum {momentum} (nesterov {nesterov}): need μ ≥ 0, μ > 0 for Nesterov"
                    ));
                }
                (weight_decay, [0.0, 0.0], 0.0)
            }
        };
        if betas.iter().any(|b| !(0.0..1.0).contains(b)) {
            return bad(format!("betas {betas:?}: each must lie in [0, 1)"));
        }
        if !(eps.is_finite() && eps >= 0.0 && wd.is_finite() && wd >= 0.0) {
            return bad(format!(
                "eps {eps}, weight decay {wd}: need finite values ≥ 0"
            ));
        }
        Ok(())
    }
}

/// The global gradient norm for clipping: partial sums, then their fixed-order total.
struct NormReduction {
    partials: Launch,
    finish: Launch,
    /// Workgroups of the first stage, one partial sum each.
    partial_count: u32,
}

/// A prepared dense optimizer over caller-owned parameter, gradient and state buffers.
pub struct DenseOptimizer {
    kind: DenseOptimizerKind,
    len: u32,
    clip: Option<f32>,
    step: Launch,
    reduction: Option<NormReduction>,
    uniform: Uniform<OptimParams>,
    norm: wgpu::Buffer,
}

impl DenseOptimizer {
    /// State f32s `kind` needs for `len` parameters: 2·len for Adam/AdamW (m, v), len for SGD.
    pub fn state_len(kind: DenseOptimizerKind, len: u64) -> u64 {
        match kind {
            DenseOptimizerKind::SgdMomentum { .. } => len,
            _ => 2 * len,
        }
    }

    /// Validates sizes and hyper-parameters, compiles the pipelines and builds the bind groups.
    /// `clip = Some(max_norm)` clips the global L2 norm of the gradients to `max_norm`. The three
    /// buffers must be distinct (each is bound once). Until the first [`set_step`](Self::set_step)
    /// the uniform says `len = 0`, so a step recorded before it changes nothing.
    pub fn new(
        gpu: &Gpu,
        kind: DenseOptimizerKind,
        len: u64,
        params: &wgpu::Buffer,
        grads: &wgpu::Buffer,
        state: &wgpu::Buffer,
        clip: Option<f32>,
    ) -> Result<Self> {
        let name = DENSE_STEP.entry;
        kind.validate()?;
        if let Some(max) = clip.filter(|m| !(m.is_finite() && *m > 0.0)) {
            return Err(Error::kernel(
                name,
                format!("clip max_norm {max}: need a finite value > 0"),
            ));
        }
        // Index arithmetic (i + stride in the reduction) stays within u32.
        if len > (u32::MAX / 2) as u64 {
            return Err(Error::kernel(
                name,
                format!("{len} parameters; at most {}", u32::MAX / 2),
            ));
        }
        check_len(name, "params", params, len)?;
        check_len(name, "grads", grads, len)?;
        check_len(name, "state", state, Self::state_len(kind, len))?;
        let max = gpu.limits().max_storage_buffer_binding_size;
        for (what, b) in [("params", params), ("grads", grads), ("state", state)] {
            if b.size() > max {
                return Err(Error::kernel(
                    name,
                    format!(
                        "buffer {what} holds {} bytes; one binding takes at most {max}",
                        b.size()
                    ),
                ));
            }
        }
        let norm = gpu.buffer("dense optimizer norm", 16, storage_usage());
        let partials_len = if clip.is_some() {
            MAX_PARTIALS as u64
        } else {
            1
        };
        let partials = gpu.buffer(
            "dense optimizer partials",
            partials_len * 4,
            storage_usage(),
        );
        let uniform = Uniform::new(gpu, "dense optimizer params", &OptimParams::default());
        let buffers = [grads, params, state, &partials, &norm, uniform.buffer()];
        let step = gpu.pipeline(
            &DENSE_STEP,
            &[
                ("WG", STEP_WG as f64),
                ("OPTIMIZER", kind.code() as f64),
                ("CLIP", clip.is_some() as u32 as f64),
            ],
        )?;
        let step_grid = Grid::Folded((len as u32).div_ceil(STEP_WG));
        let step = Launch::new(gpu, &step, &buffers, step_grid)?;
        let reduction = match clip {
            None => None,
            Some(_) => {
                let constants = [("RED_WG", RED_WG as f64)];
                let partials = gpu.pipeline(&NORM_PARTIALS, &constants)?;
                let finish = gpu.pipeline(&NORM_FINISH, &constants)?;
                // At least one workgroup, so an empty model logs a norm of 0.
                let partial_count = (len.div_ceil(RED_WG as u64) as u32).clamp(1, MAX_PARTIALS);
                Some(NormReduction {
                    partials: Launch::new(gpu, &partials, &buffers, Grid::Folded(partial_count))?,
                    finish: Launch::new(gpu, &finish, &buffers, Grid::Folded(1))?,
                    partial_count,
                })
            }
        };
        Ok(DenseOptimizer {
            kind,
            len: len as u32,
            clip,
            step,
            reduction,
            uniform,
            norm,
        })
    }

    /// The uniform for step `step` (from 1) at learning rate `lr`, without writing it.
    pub fn step_params(&self, lr: f32, step: u64) -> Result<OptimParams> {
        if step == 0 || !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::kernel(
                DENSE_STEP.entry,
                format!("step {step}, lr {lr}: steps count from 1 and lr must be finite and ≥ 0"),
            ));
        }
        let lr64 = lr as f64;
        let mut p = OptimParams {
            len: self.len,
            partial_count: self.reduction.as_ref().map_or(0, |r| r.partial_count),
            first: (step == 1) as u32,
            max_norm: self.clip.unwrap_or(0.0),
            lr,
            decay: 1.0,
            ..Default::default()
        };
        match self.kind {
            DenseOptimizerKind::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            }
            | DenseOptimizerKind::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let t = step as f64;
                if matches!(self.kind, DenseOptimizerKind::AdamW { .. }) {
                    p.decay = (1.0 - lr64 * weight_decay) as f32;
                } else {
                    p.weight_decay = weight_decay as f32;
                }
                p.beta1 = beta1 as f32;
                p.beta2 = beta2 as f32;
                p.one_minus_beta1 = (1.0 - beta1) as f32;
                p.one_minus_beta2 = (1.0 - beta2) as f32;
                p.eps = eps as f32;
                p.step_size = (lr64 / (1.0 - beta1.powf(t))) as f32;
                p.inv_sqrt_bc2 = (1.0 / (1.0 - beta2.powf(t)).sqrt()) as f32;
            }
            DenseOptimizerKind::SgdMomentum {
                momentum,
                weight_decay,
                ..
            } => {
                p.weight_decay = weight_decay as f32;
                p.momentum = momentum as f32;
            }
        }
        Ok(p)
    }

    /// Writes step `step`'s learning rate and bias corrections into the uniform (no recompilation,
    /// no new bind groups). Call once per submission, before submitting the recorded step.
    pub fn set_step(&self, gpu: &Gpu, lr: f32, step: u64) -> Result<()> {
        self.uniform.write(gpu, &self.step_params(lr, step)?);
        Ok(())
    }

    /// Records the step: with clipping two reduction dispatches, then the update (nothing for an
    /// empty buffer). The count does not depend on `len`.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        if let Some(r) = &self.reduction {
            r.partials.record(gpu, pass);
            r.finish.record(gpu, pass);
        }
        self.step.record(gpu, pass);
    }

    /// With clipping, the buffer of 4 f32 whose first two are the last step's gradient norm
    /// (before clipping) and the factor the gradients were scaled by; `None` without clipping.
    pub fn norm_buffer(&self) -> Option<&wgpu::Buffer> {
        self.clip.map(|_| &self.norm)
    }

    /// Partial sums the first reduction stage writes (0 without clipping).
    pub fn reduction_partials(&self) -> u32 {
        self.reduction.as_ref().map_or(0, |r| r.partial_count)
    }
}
