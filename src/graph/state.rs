//! A graph's whole training state as named tensors, for checkpoints and for interchange with
//! PyTorch (`safetensors`): every embedding table (`emb.{m}.{feature}` `[rows, width]`) with its
//! sparse optimizer state (`….state` `[rows, floats]`, row-wise Adagrad's accumulator in column 0),
//! every dense tensor by name (`mlp.0.weight` `[out, in]`, …), the dense optimizer's state as one
//! flat tensor (`optim.dense.state`, Adam's `m` then `v` over the flat parameter layout), BatchNorm's
//! running statistics, and the step counter. Restoring all of it continues a run bit for bit.

use super::Graph;
use crate::checkpoint::Checkpoint;
use crate::config::MAX_STEPS;
use crate::error::Result;
use crate::gpu::Gpu;

/// Metadata key of the step counter.
pub const STEP_KEY: &str = "graph.step";

/// A step counter as a checkpoint holds it, refused past [`MAX_STEPS`]: a counter of 2^64 − 1
/// would wrap to 0 at the next step (and no run reaches 2^48 steps). Refused while decoding, so the
/// checkpoint's error names its file and the key.
struct StepCount(u64);

impl<'de> serde::Deserialize<'de> for StepCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let step = u64::deserialize(d)?;
        if step > MAX_STEPS {
            return Err(serde::de::Error::custom(format!(
                "step {step} is past the largest a run reaches ({MAX_STEPS}); the checkpoint is \
                 damaged or not wgrec's"
            )));
        }
        Ok(StepCount(step))
    }
}

impl Graph {
    /// Writes every tensor of the model into `ckpt` (waits for the GPU).
    pub fn save_state(&self, gpu: &Gpu, ckpt: &mut Checkpoint) -> Result<()> {
        self.save(gpu, ckpt, true)
    }

    /// Writes what serving reads into `ckpt`: the weights, BatchNorm's running statistics and the
    /// step, without the optimizer state (a serving snapshot; what
    /// [`load_state`](Self::load_state) with `weights_only` restores).
    pub fn save_weights(&self, gpu: &Gpu, ckpt: &mut Checkpoint) -> Result<()> {
        self.save(gpu, ckpt, false)
    }

    fn save(&self, gpu: &Gpu, ckpt: &mut Checkpoint, optimizer_state: bool) -> Result<()> {
        for (t, info) in self.plan.tables.iter().enumerate() {
            let raw = self.storage.read_raw(gpu, t)?;
            let (w, s) = (self.storage.width(t), self.storage.raw_stride(t));
            let rows = info.rows as usize;
            let weights: Vec<f32> = raw.chunks(s).flat_map(|r| &r[..w]).copied().collect();
            ckpt.insert_tensor(&info.name, &[rows, w], weights)?;
            if s > w && optimizer_state {
                let state: Vec<f32> = raw.chunks(s).flat_map(|r| &r[w..]).copied().collect();
                ckpt.insert_tensor(&format!("{}.state", info.name), &[rows, s - w], state)?;
            }
        }
        for (name, shape, data) in self.params.read_all(gpu)? {
            ckpt.insert_tensor(&name, &shape, data)?;
        }
        if optimizer_state {
            let state: Vec<f32> = gpu.read_all(&self.optimizer_state)?;
            ckpt.insert_tensor("optim.dense.state", &[state.len()], state)?;
        }
        if let Some(bn) = &self.bn_stats {
            let shape = [
                self.plan.n_tables() as usize,
                self.plan.config.model.expert_width as usize,
            ];
            let n = shape[0] * shape[1];
            let mean: Vec<f32> = gpu.read(&bn.mean, 0, n as u64)?;
            let var: Vec<f32> = gpu.read(&bn.var, 0, n as u64)?;
            ckpt.insert_tensor("proj.bn.running_mean", &shape, mean)?;
            ckpt.insert_tensor("proj.bn.running_var", &shape, var)?;
        }
        ckpt.insert_json(STEP_KEY, &self.step)?;
        Ok(())
    }

    /// Restores what [`save_state`](Self::save_state) wrote. Every tensor must be present with
    /// its shape (an error names the first that is not); `weights_only` skips optimizer state and
    /// the step (a model imported from elsewhere, or a Predictor).
    pub fn load_state(&mut self, gpu: &Gpu, ckpt: &Checkpoint, weights_only: bool) -> Result<()> {
        for (t, info) in self.plan.tables.iter().enumerate() {
            let (w, s) = (self.storage.width(t), self.storage.raw_stride(t));
            let rows = info.rows as usize;
            let weights = ckpt.tensor(&info.name, &[rows, w])?;
            let mut raw = vec![0f32; rows * s];
            for (dst, src) in raw.chunks_mut(s).zip(weights.chunks(w)) {
                dst[..w].copy_from_slice(src);
            }
            if s > w && !weights_only {
                let state = ckpt.tensor(&format!("{}.state", info.name), &[rows, s - w])?;
                for (dst, src) in raw.chunks_mut(s).zip(state.chunks(s - w)) {
                    dst[w..].copy_from_slice(src);
                }
            }
            self.storage.write_raw(gpu, t, &raw)?;
        }
        for p in &self.params.layout.params {
            let data = ckpt.tensor(&p.name, &p.shape)?;
            self.params.write(gpu, &p.name, data)?;
        }
        if let Some(bn) = &self.bn_stats {
            let shape = [
                self.plan.n_tables() as usize,
                self.plan.config.model.expert_width as usize,
            ];
            let mean = ckpt.tensor("proj.bn.running_mean", &shape)?;
            let var = ckpt.tensor("proj.bn.running_var", &shape)?;
            gpu.queue
                .write_buffer(&bn.mean, 0, bytemuck::cast_slice(mean));
            gpu.queue
                .write_buffer(&bn.var, 0, bytemuck::cast_slice(var));
        }
        if !weights_only {
            let n = (self.optimizer_state.size() / 4) as usize;
            let state = ckpt.tensor("optim.dense.state", &[n])?;
            gpu.queue
                .write_buffer(&self.optimizer_state, 0, bytemuck::cast_slice(state));
            self.step = ckpt.json::<StepCount>(STEP_KEY)?.0;
            self.reset_divergence(gpu);
        }
        // A device failure while the restored values land is the device's error, not the model's.
        gpu.sync()
    }
}
