//! What a compiled graph needs of the training policy, as plain data: the optimizers it is
//! compiled with (their state lives in its buffers) and, each step, the rates. The policy that
//! chooses them from a `[train]` section is the trainer's (`crate::train::policy`); the graph
//! never reads the schedule or the hyper-parameters itself.

use crate::kernels::dense::optim::DenseOptimizerKind;
use crate::kernels::embedding::{DecayMode, SparseOptimizer};

/// The optimizers a graph is compiled with (their state buffers depend on them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimizers {
    /// The dense optimizer over the flat parameters.
    pub dense: DenseOptimizerKind,
    /// Global-norm clipping of the dense gradients.
    pub clip_norm: Option<f32>,
    /// The table optimizer, fused into the sparse update.
    pub sparse: SparseOptimizer,
    /// How the tables' weight decay scales with a row's frequency.
    pub decay_mode: DecayMode,
}

impl Optimizers {
    /// For a graph that only predicts (a Predictor): plain SGD everywhere, so the tables carry no
    /// optimizer state and the dense state is as small as it gets. The forward is the same.
    pub fn inference() -> Self {
        Optimizers {
            dense: DenseOptimizerKind::SgdMomentum {
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            },
            clip_norm: None,
            sparse: SparseOptimizer::Sgd,
            decay_mode: DecayMode::Row,
        }
    }
}

/// One step's rates, as the graph applies them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepRates {
    /// The dense learning rate.
    pub dense_lr: f32,
    /// The table learning rate.
    pub sparse_lr: f32,
    /// The tables' L2 weight decay (a table's own `embedding_l2` overrides it).
    pub sparse_weight_decay: f32,
}
