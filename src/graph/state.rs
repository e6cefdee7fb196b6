//! A graph's whole training state as named tensors, for checkpoints and for interchange with
//! PyTorch (`safetensors`): every embedding table (`emb.{m}.{feature}` `[rows, width]`) with its
//! sparse optimizer state (`….state` `[rows, floats]`, row-wise Adagrad's accumulator in column 0),
//! every dense tensor by name (`mlp.0.weight` `[out, in]`, …), the dense optimizer's state as one
//! flat tensor (`optim.dense.state`, Adam's `m` then `v` over the flat parameter layout), BatchNorm's
//! running statistics, and the step counter. Restoring all of it continues a run bit for bit.

use super::Graph;
use crate::checkpoint::Checkpoint;
use crate::config::MAX_STEPS;
use crate::error::{Error, Result};
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
        let layout = &self.storage.layout;
        for (t, info) in self.tables.iter().enumerate() {
            let raw = self.storage.read_raw(gpu, t)?;
            let p = layout.tables[t];
            let (w, s) = (p.width4 as usize * 4, p.stride4 as usize * 4);
            let rows = info.rows as usize;
            let weights: Vec<f32> = raw.chunks(s).flat_map(|r| &r[..w]).copied().collect();
            ckpt.insert_tensor(&info.name, &[rows, w], weights)?;
            if s > w {
                let state: Vec<f32> = raw.chunks(s).flat_map(|r| &r[w..]).copied().collect();
                ckpt.insert_tensor(&format!("{}.state", info.name), &[rows, s - w], state)?;
            }
        }
        for (name, shape, data) in self.params.read_all(gpu)? {
            ckpt.insert_tensor(&name, &shape, data)?;
        }
        let state: Vec<f32> = gpu.read_all(&self.optimizer_state)?;
        ckpt.insert_tensor("optim.dense.state", &[state.len()], state)?;
        if let Some((_, _, bn)) = &self.bn {
            let shape = [
                self.config.model.tables as usize,
                self.config.model.expert_width as usize,
            ];
            let n = shape[0] * shape[1];
            let mean: Vec<f32> = gpu.read(&bn.running_mean, 0, n as u64)?;
            let var: Vec<f32> = gpu.read(&bn.running_var, 0, n as u64)?;
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
        let layout = &self.storage.layout;
        for (t, info) in self.tables.iter().enumerate() {
            let p = layout.tables[t];
            let (w, s) = (p.width4 as usize * 4, p.stride4 as usize * 4);
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
        if let Some((_, _, bn)) = &self.bn {
            let shape = [
                self.config.model.tables as usize,
                self.config.model.expert_width as usize,
            ];
            let mean = ckpt.tensor("proj.bn.running_mean", &shape)?;
            let var = ckpt.tensor("proj.bn.running_var", &shape)?;
            gpu.queue
                .write_buffer(&bn.running_mean, 0, bytemuck::cast_slice(mean));
            gpu.queue
                .write_buffer(&bn.running_var, 0, bytemuck::cast_slice(var));
        }
        if !weights_only {
            let n = (self.optimizer_state.size() / 4) as usize;
            let state = ckpt.tensor("optim.dense.state", &[n])?;
            gpu.queue
                .write_buffer(&self.optimizer_state, 0, bytemuck::cast_slice(state));
            self.step = ckpt.json::<StepCount>(STEP_KEY)?.0;
            self.reset_divergence(gpu);
        }
        gpu.sync()
            .map_err(|e| Error::Layout(format!("restoring the model: {e}")))
    }
}

impl Graph {
    /// The compiled model as plain data, for other implementations of the same model (the
    /// PyTorch side of `scripts/bench-vs-torch.sh` builds itself from it): tables in storage order,
    /// the field order, the features, the expert groups with their kinds and the dense shapes. The
    /// tensors themselves are [`save_state`](Self::save_state)'s.
    pub fn describe(&self) -> serde_json::Value {
        use crate::config::{BagPooling, Combine, FeatureKind, Loss};
        use crate::kernels::dense::expert::ExpertKind;
        use crate::kernels::dense::pairwise::PairwiseKind;
        use serde_json::json;
        let c = &self.config;
        let features: Vec<serde_json::Value> = c
            .features
            .iter()
            .enumerate()
            .map(|(f, feature)| match &feature.kind {
                FeatureKind::Categorical { .. } => {
                    json!({"name": feature.name, "kind": "categorical"})
                }
                FeatureKind::Bag { pooling, .. } => json!({
                    "name": feature.name, "kind": "bag",
                    "pooling": match pooling { BagPooling::Mean => "mean", BagPooling::Sum => "sum" },
                }),
                FeatureKind::Numeric { .. } => {
                    let mns: Vec<[u32; 2]> = self
                        .preparer
                        .mns(f)
                        .iter()
                        .map(|b| [b.radix, b.digits])
                        .collect();
                    json!({"name": feature.name, "kind": "numeric", "mns": mns})
                }
                FeatureKind::Sequence {
                    item,
                    side,
                    max_len,
                    ..
                } => json!({
                    "name": feature.name, "kind": "sequence", "item": item, "side": side,
                    "max_len": max_len,
                }),
            })
            .collect();
        let groups: Vec<serde_json::Value> = self
            .groups
            .iter()
            .map(|g| {
                let spec = g.expert.spec();
                let expert = match &spec.kind {
                    ExpertKind::Dcn { layers, rank } => {
                        json!({"type": "dcn", "layers": layers, "rank": rank})
                    }
                    ExpertKind::Mlp { widths } => json!({"type": "mlp", "widths": widths}),
                    ExpertKind::Pairwise(PairwiseKind::Fm) => json!({"type": "fm"}),
                    ExpertKind::Pairwise(PairwiseKind::FwFm) => json!({"type": "fwfm"}),
                    ExpertKind::Pairwise(PairwiseKind::Ipnn) => json!({"type": "ipnn"}),
                    ExpertKind::Pairwise(PairwiseKind::GwPfm { blocks, partition }) => {
                        json!({"type": "gwpfm", "groups": blocks, "partition": partition})
                    }
                };
                json!({
                    "tables": g.tables,
                    "width": spec.in_cols() / spec.fields,
                    "expert": expert,
                })
            })
            .collect();
        let tables: Vec<serde_json::Value> = self
            .tables
            .iter()
            .map(|t| json!({"name": t.name, "rows": t.rows, "width": t.width}))
            .collect();
        let tasks: Vec<serde_json::Value> = c
            .tasks
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "loss": match t.loss { Loss::Bce => "bce", Loss::Pair => "pair", Loss::List => "list" },
                    "alpha": t.alpha,
                })
            })
            .collect();
        json!({
            "dim": c.model.dim,
            "tables": tables,
            "fields": self.fields,
            "features": features,
            "groups": groups,
            "expert_width": c.model.expert_width,
            "batch_norm": c.model.batch_norm,
            "combine": match c.model.combine {
                Combine::Mean => "mean",
                Combine::Concat => "concat",
                Combine::Gate => "gate",
            },
            "hidden": c.model.hidden,
            "dropout": c.model.dropout,
            "tasks": tasks,
            "sparse_lr": c.train.sparse_lr,
            "dense_lr": c.train.dense_lr,
            "batch": self.max_batch,
        })
    }
}
