//! A graph's whole training state as named tensors, for checkpoints and for interchange with
//! PyTorch (`safetensors`): every embedding table (`emb.{m}.{feature}` `[rows, width]`) with its
//! sparse optimizer state (`….state` `[rows, floats]`, row-wise Adagrad's accumulator in column 0),
//! every dense tensor by name (`mlp.0.weight` `[out, in]`, …), the dense optimizer's state as one
//! flat tensor (`optim.dense.state`, Adam's `m` then `v` over the flat parameter layout), BatchNorm's
//! running statistics, and the step counter. Restoring all of it continues a run bit for bit.
//!
//! An f16 model's tables are F16 tensors (its state F32), and every table is saved and restored
//! in row blocks, so a table of 10^8 rows needs no whole f32 copy on the host beside the file's.

use super::Graph;
use crate::checkpoint::Checkpoint;
use crate::config::MAX_STEPS;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::embedding::Element;
use half::f16;

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
        for t in 0..self.plan.tables.len() {
            self.save_table(gpu, ckpt, t, optimizer_state)?;
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
        for t in 0..self.plan.tables.len() {
            self.load_table(gpu, ckpt, t, weights_only)?;
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

    /// Table `t` into `ckpt`, read in blocks of [`BLOCK_ROWS`]: the weights as the storage keeps
    /// them (F32, or F16 bits for an f16 table: exact, the stored values are halves), the state as
    /// F32 `[rows, raw_stride − width]`.
    fn save_table(&self, gpu: &Gpu, ckpt: &mut Checkpoint, t: usize, state: bool) -> Result<()> {
        let info = &self.plan.tables[t];
        let (w, s) = (self.storage.width(t), self.storage.raw_stride(t));
        let rows = info.rows as usize;
        let f16 = info.element == Element::F16;
        let mut weights = Vec::with_capacity(if f16 { 0 } else { rows * w });
        let mut halves = Vec::with_capacity(if f16 { rows * w } else { 0 });
        let mut extra = Vec::with_capacity(if state { rows * (s - w) } else { 0 });
        for first in (0..info.rows).step_by(BLOCK_ROWS as usize) {
            let block = first..info.rows.min(first + BLOCK_ROWS);
            let raw = self.storage.read_raw_rows(gpu, t, block)?;
            for row in raw.chunks(s) {
                if f16 {
                    halves.extend(row[..w].iter().map(|&x| f16::from_f32(x).to_bits()));
                } else {
                    weights.extend_from_slice(&row[..w]);
                }
                if state {
                    extra.extend_from_slice(&row[w..]);
                }
            }
        }
        if f16 {
            ckpt.insert_f16(&info.name, &[rows, w], halves)?;
        } else {
            ckpt.insert_tensor(&info.name, &[rows, w], weights)?;
        }
        if s > w && state {
            ckpt.insert_tensor(&format!("{}.state", info.name), &[rows, s - w], extra)?;
        }
        Ok(())
    }

    /// Table `t` from `ckpt` in blocks of [`BLOCK_ROWS`]. The weights may be F32 or F16 whatever
    /// the model's dtype: f16 → f32 is exact, and an f32 checkpoint loaded into an f16 model is
    /// rounded to nearest even (how a trained f32 model is shrunk; the model's own f16
    /// checkpoints round-trip bit for bit). `weights_only` zeroes the state.
    fn load_table(&self, gpu: &Gpu, ckpt: &Checkpoint, t: usize, weights_only: bool) -> Result<()> {
        let info = &self.plan.tables[t];
        let (w, s) = (self.storage.width(t), self.storage.raw_stride(t));
        let shape = [info.rows as usize, w];
        let weights = if ckpt.is_f16(&info.name) {
            Weights::F16(ckpt.tensor_f16(&info.name, &shape)?)
        } else {
            Weights::F32(ckpt.tensor(&info.name, &shape)?)
        };
        let state = if s > w && !weights_only {
            Some(ckpt.tensor(&format!("{}.state", info.name), &[shape[0], s - w])?)
        } else {
            None
        };
        for first in (0..info.rows).step_by(BLOCK_ROWS as usize) {
            let rows = first as usize..info.rows.min(first + BLOCK_ROWS) as usize;
            let mut raw = vec![0f32; rows.len() * s];
            for (i, dst) in rows.clone().zip(raw.chunks_mut(s)) {
                match weights {
                    Weights::F32(v) => dst[..w].copy_from_slice(&v[i * w..(i + 1) * w]),
                    Weights::F16(v) => (dst[..w].iter_mut().zip(&v[i * w..(i + 1) * w]))
                        .for_each(|(d, &b)| *d = f16::from_bits(b).to_f32()),
                }
                if let Some(state) = state {
                    dst[w..].copy_from_slice(&state[i * (s - w)..(i + 1) * (s - w)]);
                }
            }
            self.storage.write_raw_rows(gpu, t, first, &raw)?;
        }
        Ok(())
    }
}

/// Rows per block of a table's save and load: 2^16 rows of a 16-wide table with Adam's state are
/// 12 MiB of host f32, so a table of 10^8 rows never has a whole f32 copy on the host.
const BLOCK_ROWS: u32 = 1 << 16;

/// A checkpoint table's weights as the file holds them.
#[derive(Clone, Copy)]
enum Weights<'a> {
    F32(&'a [f32]),
    F16(&'a [u16]),
}
