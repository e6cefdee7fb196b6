//! The objective after the head: per task BCE, combined-pair or combined-list loss (METHODS.md
//! §4.1) with optional per-sample weights, written with the logits' gradient; and, for
//! evaluation, the probabilities with the class-weight logit correction. Not a [`Layer`]: the
//! loss runs between the forward and backward walks of a training step, the prediction after an
//! evaluation forward.
//!
//! [`Layer`]: super::layer::Layer

use super::bad;
use super::prepare::Prepared;
use super::projection::f32s;
use super::towers::Towers;
use crate::config::Loss as LossConfig;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::loss::{Loss, LossBuffers, LossKind, Predict, LOSS_WITH_FLAG};
use crate::model::ModelPlan;

/// The loss and the prediction over the head's logits.
pub(super) struct Objective {
    pub loss: Loss,
    pub predict: Predict,
    pub labels: wgpu::Buffer,
    weights: Option<wgpu::Buffer>,
    /// The loss per task, then the kernel's divergence flag (read back together).
    pub loss_value: wgpu::Buffer,
    pub logits: wgpu::Buffer,
    pub probs: wgpu::Buffer,
    /// "loss bce", "loss bce+pair (3 outputs)", …: the loss's row in the profile.
    pub name: String,
}

impl Objective {
    /// Over `towers`' logits; `logit_correction` is added to task 0's logit before the sigmoid at
    /// evaluation (the class-weight correction).
    pub(super) fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        towers: &Towers,
        b: u32,
        logit_correction: f64,
    ) -> Result<Self> {
        let c = &plan.config;
        let outputs = c.outputs();
        let tasks = outputs.len() as u32;
        let kinds: Vec<LossKind> = (outputs.iter())
            .map(|o| &c.tasks[o.task])
            .map(|t| match t.loss {
                LossConfig::Bce => LossKind::Bce,
                LossConfig::Pair => LossKind::CombinedPair { alpha: t.alpha },
                LossConfig::List => LossKind::CombinedList { alpha: t.alpha },
            })
            .collect();
        let name = loss_name(&kinds);
        let labels = f32s(gpu, "labels", b as u64 * tasks as u64);
        let weights = c
            .train
            .weights
            .is_some()
            .then(|| f32s(gpu, "weights", b as u64));
        // The loss and the kernel's divergence flag, read back together (zeroed at creation).
        let loss_value = f32s(gpu, "loss", LOSS_WITH_FLAG as u64 * tasks as u64);
        let buffers = LossBuffers {
            logits: &towers.logits,
            labels: &labels,
            weights: weights.as_ref(),
            loss: &loss_value,
            grad_logits: &towers.grad_logits,
        };
        let loss = Loss::new(gpu, &kinds, b, &buffers)?;
        let probs = f32s(gpu, "probabilities", b as u64 * tasks as u64);
        // The class weights follow task 0's label: every output of task 0 is corrected.
        let correction: Vec<f32> = (outputs.iter())
            .map(|o| {
                if o.task == 0 {
                    logit_correction as f32
                } else {
                    0.0
                }
            })
            .collect();
        let predict = Predict::new(gpu, b, &correction, &towers.logits, &probs)?;
        Ok(Objective {
            loss,
            predict,
            labels,
            weights,
            loss_value,
            logits: towers.logits.clone(),
            probs,
            name,
        })
    }

    pub(super) fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.loss.set_rows(gpu, rows)?;
        self.predict.set_rows(gpu, rows)
    }

    /// Writes the batch's labels and, for a weighted model, its weights.
    pub(super) fn upload(&self, gpu: &Gpu, batch: &Prepared) -> Result<()> {
        gpu.queue
            .write_buffer(&self.labels, 0, bytemuck::cast_slice(&batch.labels));
        if let Some(w) = &self.weights {
            let given = (batch.weights.as_ref())
                .ok_or_else(|| bad("the model is weighted but the batch has no weights"))?;
            gpu.queue.write_buffer(w, 0, bytemuck::cast_slice(given));
        }
        Ok(())
    }
}

/// The loss kinds of the outputs, each once in output order, and the number of outputs past one.
fn loss_name(kinds: &[LossKind]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for k in kinds {
        let n = match k {
            LossKind::Bce => "bce",
            LossKind::CombinedPair { .. } => "pair",
            LossKind::CombinedList { .. } => "list",
        };
        if !names.contains(&n) {
            names.push(n);
        }
    }
    match kinds.len() {
        1 => format!("loss {}", names.join("+")),
        n => format!("loss {} ({n} outputs)", names.join("+")),
    }
}
