//! Divergence: the loss kernel flags the first step whose loss went NaN or infinite
//! (`loss.wgsl`), in the buffer the loss is read back from, so the trainer learns it at its next
//! loss read-back at no extra cost, with the exact step. Evaluation reads the flag once if
//! training moved on since, so NaN weights never reach the metrics as "a NaN prediction".

use super::Graph;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::loss::{first_non_finite, LOSS_WITH_FLAG};

impl Graph {
    /// The per-task loss of the last step (waits for it); [`Error::Diverged`] when any step since
    /// the graph was built or restored had a non-finite loss.
    pub fn last_loss(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let tasks = self.tasks();
        let mut values = gpu.read(
            &self.objective.loss_value,
            0,
            (LOSS_WITH_FLAG * tasks) as u64,
        )?;
        if let Some((task, run)) = first_non_finite(&values, tasks) {
            return Err(Error::Diverged {
                step: self.flag_base + run,
                task,
                name: self.plan.config.outputs()[task].name.clone(),
            });
        }
        self.checked_step.set(self.step);
        values.truncate(tasks);
        Ok(values)
    }

    /// Reads the divergence flag when steps ran since it was last read (before evaluation).
    pub(super) fn check_trained(&self, gpu: &Gpu) -> Result<()> {
        if self.checked_step.get() != self.step {
            self.last_loss(gpu)?;
        }
        Ok(())
    }

    /// Zeroes the flag after the step counter was restored: counts restart from `self.step`.
    pub(super) fn reset_divergence(&mut self, gpu: &Gpu) {
        let tasks = self.tasks();
        let zeros = vec![0f32; (LOSS_WITH_FLAG - 1) * tasks];
        gpu.queue.write_buffer(
            &self.objective.loss_value,
            (tasks * 4) as u64,
            bytemuck::cast_slice(&zeros),
        );
        self.flag_base = self.step;
        self.checked_step.set(self.step);
    }
}
