//! The dense parameters of a model in one flat buffer (and their gradients in another), so one
//! [`DenseOptimizer`](crate::kernels::dense::optim::DenseOptimizer) dispatch updates them all and
//! global-norm clipping sees every gradient.
//!
//! The layout is the model plan's (`crate::model`, `ModelPlan::dense`). The graph's
//! [`Linear`](crate::kernels::dense::linear::Linear) layers (the per-table projections, the gate
//! logits, the tower, the head) read and write the flat buffers in place at element offsets. Ops
//! that own their tensors (the experts, BatchNorm's γ and β) keep them: the step copies their
//! gradients into the flat gradient buffer before the optimizer and the updated values back after
//! it — copy commands in the same encoder, no dispatch and no host round trip. The flat buffer is
//! the master copy: a checkpoint reads it, a restore writes it and then the owned copies.
//!
//! Every tensor starts at a multiple of 4 floats (the GEMM's vec4 loads need it); the gaps hold
//! zeros with zero gradients, which every optimizer leaves at zero.

use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::dense::linear::At;
use crate::model::ModelPlan;

/// One named tensor of the flat buffer.
#[derive(Debug, Clone)]
pub struct Param {
    /// Checkpoint name, e.g. `mlp.0.weight`.
    pub name: String,
    /// Shape (row-major), its product is `len`.
    pub shape: Vec<usize>,
    /// First element in the flat buffers.
    pub offset: u64,
    /// Elements.
    pub len: u64,
    /// For a tensor an op owns: its value and gradient buffers (copied to and from the flat ones).
    pub owned: Option<(wgpu::Buffer, wgpu::Buffer)>,
}

/// The layout of the flat parameter buffer, built up tensor by tensor.
#[derive(Debug, Default)]
pub struct ParamLayout {
    /// Tensors in allocation order.
    pub params: Vec<Param>,
    len: u64,
}

impl ParamLayout {
    /// Reserves `shape` under `name` in the flat buffer and returns its element offset (the next
    /// multiple of 4 floats). [`FlatParams::own`] later makes it an owned tensor.
    pub fn flat(&mut self, name: impl Into<String>, shape: &[usize]) -> u64 {
        let len = shape.iter().product::<usize>() as u64;
        let offset = self.len.next_multiple_of(4);
        self.len = offset + len;
        self.params.push(Param {
            name: name.into(),
            shape: shape.to_vec(),
            offset,
            len,
            owned: None,
        });
        offset
    }

    /// Elements of the flat buffers (a multiple of 4, at least 4).
    pub fn len(&self) -> u64 {
        self.len.next_multiple_of(4).max(4)
    }

    /// Whether no tensor was registered.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// A named tensor read back: name, shape, values.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// The flat buffers themselves.
pub struct FlatParams {
    /// Tensor layout.
    pub layout: ParamLayout,
    /// Values.
    pub values: wgpu::Buffer,
    /// Gradients (rewritten every step).
    pub grads: wgpu::Buffer,
}

impl FlatParams {
    /// The value and gradient places of the tensor starting at element `offset` (a planned
    /// tensor's [`DenseParam::offset`](crate::model::DenseParam)), as a layer binds them.
    pub fn at(&self, offset: u64) -> (At<'_>, At<'_>) {
        (
            At {
                buffer: &self.values,
                offset,
            },
            At {
                buffer: &self.grads,
                offset,
            },
        )
    }

    /// Allocates zeroed value and gradient buffers for `layout`.
    pub fn new(gpu: &Gpu, layout: ParamLayout) -> Self {
        let len = layout.len();
        FlatParams {
            layout,
            values: gpu.buffer("dense params", len * 4, storage_usage()),
            grads: gpu.buffer("dense grads", len * 4, storage_usage()),
        }
    }

    /// Zeroed buffers laid out as `plan`'s dense tensors; the owners of owned tensors attach
    /// their buffers with [`FlatParams::own`].
    pub fn for_plan(gpu: &Gpu, plan: &ModelPlan) -> Result<Self> {
        let mut layout = ParamLayout::default();
        for p in &plan.dense {
            let offset = layout.flat(p.name.clone(), &p.shape);
            if offset != p.offset {
                return Err(Error::Graph(format!(
                    "dense tensor {} is planned at offset {}, packed at {offset}",
                    p.name, p.offset
                )));
            }
        }
        Ok(Self::new(gpu, layout))
    }

    /// Makes tensor `name` an owned one: `value` and `grad` are its owner's buffers, copied to and
    /// from the flat ones around the optimizer.
    pub fn own(&mut self, name: &str, value: &wgpu::Buffer, grad: &wgpu::Buffer) -> Result<()> {
        let p = (self.layout.params.iter_mut())
            .find(|p| p.name == name)
            .ok_or_else(|| Error::Graph(format!("no dense parameter {name:?}")))?;
        let need = p.len * 4;
        if value.size() < need || grad.size() < need {
            return Err(Error::Graph(format!(
                "the buffers of {name:?} hold {} bytes, {need} needed",
                value.size().min(grad.size())
            )));
        }
        p.owned = Some((value.clone(), grad.clone()));
        Ok(())
    }

    /// Records the copies of owned gradients into the flat gradient buffer.
    pub fn gather_grads(&self, encoder: &mut wgpu::CommandEncoder) {
        for p in &self.layout.params {
            if let Some((_, grad)) = &p.owned {
                encoder.copy_buffer_to_buffer(grad, 0, &self.grads, p.offset * 4, p.len * 4);
            }
        }
    }

    /// Records the copies of flat values back into the owned value buffers.
    pub fn scatter_values(&self, encoder: &mut wgpu::CommandEncoder) {
        for p in &self.layout.params {
            if let Some((value, _)) = &p.owned {
                encoder.copy_buffer_to_buffer(&self.values, p.offset * 4, value, 0, p.len * 4);
            }
        }
    }

    /// Records the copies of owned values into the flat buffer (after an op initialised its own).
    pub fn gather_values(&self, encoder: &mut wgpu::CommandEncoder) {
        for p in &self.layout.params {
            if let Some((value, _)) = &p.owned {
                encoder.copy_buffer_to_buffer(value, 0, &self.values, p.offset * 4, p.len * 4);
            }
        }
    }

    /// Writes `data` into tensor `name` (flat and owned copy).
    pub fn write(&self, gpu: &Gpu, name: &str, data: &[f32]) -> Result<()> {
        let p = self
            .layout
            .get(name)
            .ok_or_else(|| Error::Graph(format!("no dense parameter {name:?}")))?;
        if data.len() as u64 != p.len {
            return Err(Error::Graph(format!(
                "parameter {name:?} holds {} values, {} given",
                p.len,
                data.len()
            )));
        }
        let bytes = bytemuck::cast_slice(data);
        gpu.queue.write_buffer(&self.values, p.offset * 4, bytes);
        if let Some((value, _)) = &p.owned {
            gpu.queue.write_buffer(value, 0, bytes);
        }
        Ok(())
    }

    /// Reads every tensor's values (name, shape, data), from the flat master copy.
    pub fn read_all(&self, gpu: &Gpu) -> Result<Vec<NamedTensor>> {
        let all: Vec<f32> = gpu.read(&self.values, 0, self.layout.len())?;
        Ok(self
            .layout
            .params
            .iter()
            .map(|p| {
                let at = p.offset as usize;
                (
                    p.name.clone(),
                    p.shape.clone(),
                    all[at..at + p.len as usize].to_vec(),
                )
            })
            .collect())
    }

    /// Reads every tensor's gradient of the last step (name, data): for tests and diagnostics.
    pub fn read_grads(&self, gpu: &Gpu) -> Result<Vec<(String, Vec<f32>)>> {
        let all: Vec<f32> = gpu.read(&self.grads, 0, self.layout.len())?;
        Ok(self
            .layout
            .params
            .iter()
            .map(|p| {
                let at = p.offset as usize;
                (p.name.clone(), all[at..at + p.len as usize].to_vec())
            })
            .collect())
    }
}
