//! The recorded programs: a training step, an evaluation forward (prediction), and a training
//! forward alone (for gradient tests). Each uploads its inputs, records the layer walk into one
//! encoder and submits once. The training step is recorded section by section into a [`Sink`]:
//! the plain one keeps one compute pass open across sections (one encoder, one submit), the
//! profiler's ([`super::profile`]) gives each section its own timed pass — one walk, so a
//! profiled step cannot drift from the real one.

use super::layer::{Layer, LayerDispatches, Mode, Phase, StepInputs};
use super::prepare::Prepared;
use super::profile::{OneSubmit, Section, Sink};
use super::{bad, Dispatches, Graph, StepRates};
use crate::data::encode::ModelBatch;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::embedding::SparseStep;
use crate::kernels::loss::STATS_PER_TASK;

impl Graph {
    pub(super) fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        if rows == self.rows {
            return Ok(());
        }
        if rows > self.max_batch {
            return Err(bad(format!(
                "batch of {rows} samples exceeds the graph's maximum {}",
                self.max_batch
            )));
        }
        for layer in &mut self.layers {
            layer.set_rows(gpu, rows)?;
        }
        if let Some(heads) = &mut self.heads {
            heads.set_rows(gpu, rows)?;
        }
        self.objective.set_rows(gpu, rows)?;
        self.rows = rows;
        Ok(())
    }

    /// Uploads a prepared batch to every layer; `sparse` (training) also uploads the sparse update
    /// plans, and `seed_step` the dropout masks' step.
    fn upload(
        &mut self,
        gpu: &Gpu,
        batch: &Prepared,
        sparse: Option<SparseStep>,
        seed_step: Option<(u64, u64)>,
    ) -> Result<()> {
        self.set_rows(gpu, batch.rows)?;
        let inputs = StepInputs {
            batch,
            storage: &self.storage,
            sparse,
            seed_step,
        };
        for layer in &mut self.layers {
            layer.upload(gpu, &inputs)?;
        }
        if let Some(heads) = &mut self.heads {
            heads.upload(gpu, &inputs)?;
        }
        Ok(())
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, mode: Mode) {
        for layer in &self.layers {
            layer.record_forward(gpu, pass, mode);
        }
        if let Some(heads) = &self.heads {
            heads.record_forward(gpu, pass, mode);
        }
    }

    /// One training step on `batch` at `rates` (from the trainer's `TrainPolicy`): forward, loss, backward, sparse and
    /// dense updates, recorded into one encoder and submitted once. Returns without waiting —
    /// except inside a profile window ([`Graph::start_profile`]), where the step is timed (the
    /// same dispatches in the same order, so the same bits) and waited for.
    pub fn train_step(&mut self, gpu: &Gpu, batch: &Prepared, rates: StepRates) -> Result<()> {
        let step = self.step + 1;
        let sparse = SparseStep {
            lr: rates.sparse_lr,
            weight_decay: rates.sparse_weight_decay,
            step,
        };
        let seed = self.plan.config.train.seed;
        let mut profiler = self.profiler.take();
        let role = profiler.as_ref().and_then(|p| p.role(step));
        if role.is_some() {
            gpu.sync()?;
        }
        let start = std::time::Instant::now();
        self.upload(gpu, batch, Some(sparse), Some((seed, step)))?;
        self.objective.upload(gpu, batch)?;
        self.optimizer.set_step(gpu, rates.dense_lr, step)?;
        let result = match (profiler.as_mut(), role) {
            (Some(p), Some(role)) => p.step(gpu, self, role, start),
            _ => {
                let mut sink = OneSubmit::new(gpu);
                self.record_step(gpu, &mut sink);
                sink.submit(gpu);
                Ok(())
            }
        };
        self.profiler = profiler;
        result?;
        self.step = step;
        Ok(())
    }

    /// Records the training step into `sink`, section by section in step order: each layer's
    /// forward, the uncertainty heads, the loss, each layer's backward (in reverse), each layer's
    /// sparse updates, the gradients gathered into the flat buffer, the dense optimizer, the
    /// values scattered back. A section with no dispatch is left out (it records nothing).
    pub(super) fn record_step(&self, gpu: &Gpu, sink: &mut dyn Sink) {
        let layers = self.layers.iter().enumerate();
        for (i, layer) in layers.clone() {
            if layer.dispatches().train_forward > 0 {
                let at = Section::Layer(i, Phase::Forward);
                sink.pass(at, &mut |p| layer.record_forward(gpu, p, Mode::Train));
            }
        }
        if let Some(heads) = &self.heads {
            sink.pass(Section::Heads, &mut |p| {
                heads.record_forward(gpu, p, Mode::Train)
            });
        }
        let loss = &self.objective.loss;
        sink.pass(Section::Loss, &mut |p| loss.record(gpu, p));
        for (i, layer) in layers.clone().rev() {
            if layer.dispatches().backward > 0 {
                let at = Section::Layer(i, Phase::Backward);
                sink.pass(at, &mut |p| layer.record_backward(gpu, p));
            }
        }
        for (i, layer) in layers {
            if layer.dispatches().update > 0 {
                let at = Section::Layer(i, Phase::Update);
                sink.pass(at, &mut |p| layer.record_update(gpu, p));
            }
        }
        sink.copies(Section::GatherGrads, &mut |e| self.params.gather_grads(e));
        sink.pass(Section::Optimizer, &mut |p| self.optimizer.record(gpu, p));
        sink.copies(Section::ScatterValues, &mut |e| {
            self.params.scatter_values(e)
        });
    }

    /// The loss statistics of the last step (`[tasks, 8]`, see [`Loss::stats`]).
    ///
    /// [`Loss::stats`]: crate::kernels::loss::Loss::stats
    pub fn last_loss_stats(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let n = (self.tasks() * STATS_PER_TASK) as u64;
        gpu.read(self.objective.loss.stats(), 0, n)
    }

    /// Probabilities `[rows, tasks]` of `batch` (evaluation mode: BatchNorm's running statistics,
    /// no dropout, the class-weight logit correction applied). One submit, then a read-back.
    pub fn predict(&mut self, gpu: &Gpu, batch: &Prepared) -> Result<Vec<f32>> {
        self.check_trained(gpu)?;
        self.upload(gpu, batch, None, None)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.record_forward(gpu, &mut pass, Mode::Eval);
            self.objective.predict.record(gpu, &mut pass);
        }
        gpu.submit(encoder);
        let n = batch.rows as u64 * self.tasks() as u64;
        gpu.read(&self.objective.probs, 0, n)
    }

    /// [`Self::predict`] and, for a model with an uncertainty head, its belief (see
    /// [`crate::explore::Belief`]); `None` without one.
    pub fn predict_belief(
        &mut self,
        gpu: &Gpu,
        batch: &Prepared,
    ) -> Result<(Vec<f32>, Option<crate::explore::Belief>)> {
        let p = self.predict(gpu, batch)?;
        let belief = (self.heads.as_ref())
            .map(|h| h.belief(gpu, batch.rows))
            .transpose()?;
        Ok((p, belief))
    }

    /// The uncertainty heads' loss in the last training step, per output (0 for an output
    /// without a head); `None` for a model without heads.
    pub fn last_uncertainty_loss(&self, gpu: &Gpu) -> Result<Option<Vec<f64>>> {
        (self.heads.as_ref())
            .map(|h| h.loss(gpu, self.rows))
            .transpose()
    }

    /// Logits `[rows, tasks]` of `batch` in training mode without updating anything (batch
    /// statistics, the dropout masks of the last step): for gradient tests.
    pub fn train_logits(&mut self, gpu: &Gpu, batch: &Prepared) -> Result<Vec<f32>> {
        self.upload(gpu, batch, None, None)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.record_forward(gpu, &mut pass, Mode::Train);
        }
        gpu.submit(encoder);
        let n = batch.rows as u64 * self.tasks() as u64;
        gpu.read(&self.objective.logits, 0, n)
    }

    /// Prepares `batch` on this thread (the loader thread uses [`Graph::preparer`]).
    pub fn prepare(&self, batch: &ModelBatch) -> Result<Prepared> {
        self.preparer.prepare(batch)
    }

    /// Dispatches each program records: the sum of the layers' counts, the loss, the optimizer.
    pub fn dispatches(&self) -> Dispatches {
        let heads = self.heads.as_ref().map(|h| h as &dyn Layer);
        let sum = (self.layers.iter().map(|l| l.as_ref()).chain(heads))
            .map(|l| l.dispatches())
            .fold(LayerDispatches::default(), |a, b| a + b);
        let optimizer = 1 + 2 * self.optimizer.norm_buffer().is_some() as u64;
        let loss = self.objective.loss.dispatches() as u64;
        Dispatches {
            train: sum.train_forward + loss + sum.backward + sum.update + optimizer,
            eval: sum.eval_forward + 1,
        }
    }
}
