//! Launcher of `loss_predict` (`loss.wgsl`): the inference head, `p = σ(z − correction)` per task,
//! with the class-weight correction of METHODS.md §4.2
//! ([`class_weight_correction`](super::class_weight_correction)).

use super::{check_shape, LossParams, LOSS_PREDICT, LOSS_WG};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Grid, Launch, Uniform};
use crate::kernels::dense::check_len;

/// A prepared inference head: `p[i, t] = σ(z[i, t] − correction[t])` for `i < rows`, the exact
/// class-weight correction of METHODS.md §4.2 (see
/// [`class_weight_correction`](super::class_weight_correction)).
pub struct Predict {
    params: LossParams,
    uniform: Uniform<LossParams>,
    correction: wgpu::Buffer,
    launch: Launch,
}

impl Predict {
    /// Binds `logits` and `probs` (`[rows_cap, tasks]` each); `correction` holds one logit offset per
    /// task (0: plain σ). Rows start at `rows_cap`.
    pub fn new(
        gpu: &Gpu,
        rows_cap: u32,
        correction: &[f32],
        logits: &wgpu::Buffer,
        probs: &wgpu::Buffer,
    ) -> Result<Self> {
        let name = LOSS_PREDICT.entry;
        let elems = check_shape(name, rows_cap, correction.len())?;
        check_len(name, "logits", logits, elems)?;
        check_len(name, "probs", probs, elems)?;
        check_finite(name, correction)?;
        let params = LossParams {
            rows: rows_cap,
            rows_cap,
            tasks: correction.len() as u32,
            weighted: 0,
        };
        let uniform = Uniform::new(gpu, "predict params", &params);
        let correction = gpu.storage_from("predict correction", correction);
        let pipeline = gpu.pipeline(&LOSS_PREDICT, &[("WG", LOSS_WG as f64)])?;
        let grid = Grid::Folded(elems.div_ceil(LOSS_WG as u64) as u32);
        let buffers = [logits, &correction, probs, uniform.buffer()];
        let launch = Launch::new(gpu, &pipeline, &buffers, grid)?;
        Ok(Predict {
            params,
            uniform,
            correction,
            launch,
        })
    }

    /// Sets this batch's rows (≤ `rows_cap`).
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let cap = self.params.rows_cap;
        self.uniform
            .set_rows(gpu, LOSS_PREDICT.entry, &mut self.params, rows, cap)
    }

    /// Replaces the per-task corrections (one per task, finite).
    pub fn set_correction(&mut self, gpu: &Gpu, correction: &[f32]) -> Result<()> {
        let name = LOSS_PREDICT.entry;
        if correction.len() != self.params.tasks as usize {
            return Err(Error::kernel(
                name,
                format!(
                    "{} corrections for {} tasks",
                    correction.len(),
                    self.params.tasks
                ),
            ));
        }
        check_finite(name, correction)?;
        gpu.queue
            .write_buffer(&self.correction, 0, bytemuck::cast_slice(correction));
        Ok(())
    }

    /// Records one dispatch.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}

fn check_finite(kernel: &'static str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::kernel(
            kernel,
            format!("correction[{i}] = {} is not finite", values[i]),
        )),
        None => Ok(()),
    }
}
