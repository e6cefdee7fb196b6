//! The training policy: what the `[train]` section says about *how* parameters move, kept out of
//! the graph (which only knows *what* the model is). The optimizers with their fixed
//! hyper-parameters are chosen here once ([`TrainPolicy::optimizers`]: the graph sizes their state
//! from them), and every step reaches the graph as plain rates ([`StepRates`], from the
//! learning-rate [`Schedule`]).
//!
//! A caller that drives [`Graph::train_step`](crate::graph::Graph::train_step) itself (a test, a
//! bench, an online learner) builds one `TrainPolicy` and asks it for each step's rates.

pub use crate::graph::{Optimizers, StepRates};

use crate::config::{DenseOptimizerName, LrDecay, SparseDecayMode, SparseOptimizerName, Train};
use crate::kernels::dense::optim::DenseOptimizerKind;
use crate::kernels::embedding::{DecayMode, SparseOptimizer};

/// The policy of a `[train]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPolicy {
    optimizers: Optimizers,
    /// The schedule as a factor (peak 1) applied to both learning rates.
    schedule: Schedule,
    dense_lr: f32,
    sparse_lr: f32,
    sparse_weight_decay: f32,
}

impl TrainPolicy {
    /// The policy `train` states.
    pub fn new(train: &Train) -> Self {
        let dense = match train.dense_optimizer {
            DenseOptimizerName::Adam => DenseOptimizerKind::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
            DenseOptimizerName::Sgd => DenseOptimizerKind::SgdMomentum {
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            },
        };
        let decay_mode = match train.sparse_weight_decay_mode {
            SparseDecayMode::Row => DecayMode::Row,
            SparseDecayMode::Frequency => DecayMode::Frequency,
        };
        TrainPolicy {
            optimizers: Optimizers {
                dense,
                clip_norm: train.clip_norm,
                sparse: sparse_optimizer(train.sparse_optimizer),
                decay_mode,
            },
            schedule: schedule(train),
            dense_lr: train.dense_lr,
            sparse_lr: train.sparse_lr,
            sparse_weight_decay: train.sparse_weight_decay,
        }
    }

    /// The optimizers to compile the graph with.
    pub fn optimizers(&self) -> Optimizers {
        self.optimizers
    }

    /// The rates of 1-based step `step`.
    pub fn rates(&self, step: u64) -> StepRates {
        let factor = self.schedule.lr(step);
        StepRates {
            dense_lr: self.dense_lr * factor,
            sparse_lr: self.sparse_lr * factor,
            sparse_weight_decay: self.sparse_weight_decay,
        }
    }
}

/// The table optimizer a config names, with its fixed hyper-parameters (one place for the graph,
/// its memory check and the trainer).
pub fn sparse_optimizer(name: SparseOptimizerName) -> SparseOptimizer {
    match name {
        SparseOptimizerName::Adagrad => SparseOptimizer::RowwiseAdagrad { eps: 1e-8 },
        SparseOptimizerName::Sgd => SparseOptimizer::Sgd,
        SparseOptimizerName::Adam => SparseOptimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    }
}

/// Warm-up and decay as a factor of the configured rates (peak 1).
fn schedule(train: &Train) -> Schedule {
    let warmup = train.warmup_steps;
    match train.lr_decay {
        None => Schedule::WarmupCosine {
            peak: 1.0,
            floor: 1.0,
            warmup,
            total: warmup,
        },
        Some(LrDecay::Cosine { steps, floor }) => Schedule::WarmupCosine {
            peak: 1.0,
            floor,
            warmup,
            total: warmup + steps,
        },
        Some(LrDecay::Step { every, gamma }) => Schedule::StepDecay {
            lr: 1.0,
            gamma,
            every,
        },
    }
}

/// A learning-rate schedule over 1-based steps, evaluated on the host (in f64) each step and
/// written with [`DenseOptimizer::set_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The same rate every step.
    Constant {
        /// The rate.
        lr: f32,
    },
    /// Linear warm-up to `peak` over steps 1..=`warmup` (step s gets peak·s/warmup, so no step is
    /// wasted at rate 0), then half a cosine from `peak` down to `floor`, reached at step `total`
    /// and held after it.
    WarmupCosine {
        /// Rate at the end of the warm-up.
        peak: f32,
        /// Rate from step `total` on.
        floor: f32,
        /// Warm-up steps (0: start at the peak).
        warmup: u64,
        /// Step at which the floor is reached.
        total: u64,
    },
    /// `lr · gamma^⌊(s − 1) / every⌋` (torch's StepLR stepped once per step); `every = 0` never
    /// decays.
    StepDecay {
        /// Initial rate.
        lr: f32,
        /// Factor per decay.
        gamma: f32,
        /// Steps between decays.
        every: u64,
    },
}

impl Schedule {
    /// The rate at 1-based step `step`.
    pub fn lr(&self, step: u64) -> f32 {
        let rate = match *self {
            Schedule::Constant { lr } => lr as f64,
            Schedule::WarmupCosine {
                peak,
                floor,
                warmup,
                total,
            } => {
                let (peak, floor) = (peak as f64, floor as f64);
                if warmup > 0 && step <= warmup {
                    peak * step as f64 / warmup as f64
                } else if step >= total {
                    floor
                } else {
                    let progress = (step - warmup) as f64 / (total - warmup) as f64;
                    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
                }
            }
            Schedule::StepDecay { lr, gamma, every } => {
                let decays = step.saturating_sub(1).checked_div(every).unwrap_or(0);
                lr as f64 * (gamma as f64).powf(decays as f64)
            }
        };
        rate as f32
    }
}
