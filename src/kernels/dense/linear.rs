//! `Linear`: the one table-batched linear layer of the crate, `Y = act(X Wᵀ + b)` for `tables`
//! independent layers in one dispatch per op, with its backward. The MLP stack, the experts'
//! projections, the towers' hidden layers, the heads and the gate's logits are all this type; they
//! differ only in where their tensors live ([`LinearBuffers`]).
//!
//! # Layouts (all `f32`, table-major)
//! - `x` `[tables, batch_cap, fan_in]` (its gradient `dx` the same), from element 0;
//! - `weight` `[tables, out, fan_in]` (PyTorch's `Linear` layout) and `bias` `[tables, out]` at
//!   any element offset of their buffers (a model's flat parameter buffer), gradients likewise;
//! - `y` and `dy` `[tables, batch_cap, out]` at one element offset (a slice of a larger
//!   activation, e.g. one expert group's rows of the projection output).
//!
//! # Dispatches
//! Forward: one `gemm` (bias and ReLU fused); an optional second forward reads another input
//! (`x_eval`, the pre-dropout activation at evaluation). Backward: `dW = dZᵀ·X` (`gemm`),
//! `db = Σ dZ` (`column_sum`, when there is a bias), `dX = dZ·W` (`gemm`, when `dx` is given),
//! where `dZ = dY ⊙ (Y > 0)` under ReLU is never stored: it is the ReLU-mask gate on the `dY`
//! operand, read from the stored `Y`. Parameter gradients are overwritten.
//!
//! Launched by the graph's layers and [`super::mlp`]; tested through `kernels_tests/dense_mlp.rs`
//! and the graph tests (`kernels_tests/graph*.rs`, PyTorch trajectory and finite differences).

use super::column_sum::{ColumnSum, SumOutput};
use super::gemm::{Epilogue, Gate, GateKind, Gemm, GemmSpec, Operand};
use crate::error::Result;
use crate::gpu::Gpu;

/// A tensor's place: its buffer and the element offset of table 0.
#[derive(Clone, Copy)]
pub struct At<'a> {
    /// The buffer.
    pub buffer: &'a wgpu::Buffer,
    /// Element offset.
    pub offset: u64,
}

impl<'a> At<'a> {
    /// From element 0 of `buffer`.
    pub fn start(buffer: &'a wgpu::Buffer) -> Self {
        At { buffer, offset: 0 }
    }
}

/// The shape of a table-batched linear layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearSpec {
    /// Independent layers (one dispatch per op for all).
    pub tables: u32,
    /// Largest batch.
    pub batch_cap: u32,
    /// Input width.
    pub fan_in: u32,
    /// Output width.
    pub out: u32,
    /// ReLU after the affine map (fused; its mask gates every backward op).
    pub relu: bool,
}

/// Where a linear layer's tensors live.
pub struct LinearBuffers<'a> {
    /// Input.
    pub x: &'a wgpu::Buffer,
    /// The input read by [`Linear::record_eval`] instead of `x`, when they differ.
    pub x_eval: Option<&'a wgpu::Buffer>,
    /// The input gradient, when one is wanted.
    pub dx: Option<&'a wgpu::Buffer>,
    /// Output (after the activation; the ReLU mask reads it).
    pub y: At<'a>,
    /// Output gradient (same offset as `y`).
    pub dy: &'a wgpu::Buffer,
    /// Weight values and gradients.
    pub weight: (At<'a>, At<'a>),
    /// Bias values and gradients, when there is a bias.
    pub bias: Option<(At<'a>, At<'a>)>,
}

/// A prepared linear layer (see the module docs).
pub struct Linear {
    spec: LinearSpec,
    forward: Gemm,
    forward_eval: Option<Gemm>,
    grad_weight: Gemm,
    grad_bias: Option<ColumnSum>,
    grad_input: Option<Gemm>,
}

impl Linear {
    /// Prepares every op over `buffers`.
    pub fn new(gpu: &Gpu, spec: LinearSpec, buffers: &LinearBuffers<'_>) -> Result<Self> {
        Self::build(gpu, spec, buffers, false)
    }

    /// Like [`Linear::new`], but every table reads the same input `x` `[batch_cap, fan_in]`
    /// (stride 0 between tables: the per-task gates over one concatenation of the experts); `dx`,
    /// when given, is still per table `[tables, batch_cap, fan_in]`.
    pub fn over_shared_input(
        gpu: &Gpu,
        spec: LinearSpec,
        buffers: &LinearBuffers<'_>,
    ) -> Result<Self> {
        Self::build(gpu, spec, buffers, true)
    }

    fn build(
        gpu: &Gpu,
        spec: LinearSpec,
        buffers: &LinearBuffers<'_>,
        shared_input: bool,
    ) -> Result<Self> {
        let x_stride = if shared_input {
            0
        } else {
            spec.batch_cap as u64 * spec.fan_in as u64
        };
        let LinearSpec {
            tables: t,
            batch_cap: cap,
            fan_in,
            out,
            relu,
        } = spec;
        let b = buffers;
        let gate = relu.then_some(Gate {
            operand: Operand::A,
            kind: GateKind::ReluMask,
        });
        let mask = relu.then_some(b.y.buffer);
        // Y = act(X · Wᵀ + b): X [cap, in], W stored [out, in].
        let fwd = GemmSpec {
            bias: b.bias.is_some(),
            offset_b: b.weight.0.offset,
            offset_bias: b.bias.map_or(0, |(v, _)| v.offset),
            offset_c: b.y.offset,
            epilogue: if relu {
                Epilogue::Relu
            } else {
                Epilogue::Identity
            },
            stride_a: x_stride,
            ..GemmSpec::new(t, cap, out, fan_in, false, true)
        };
        let forward_from = |x: &wgpu::Buffer| {
            let bias = b.bias.map(|(v, _)| v.buffer);
            Gemm::new(gpu, &fwd, x, b.weight.0.buffer, bias, None, b.y.buffer)
        };
        let forward = forward_from(b.x)?;
        let forward_eval = b.x_eval.map(forward_from).transpose()?;
        // dW [out, in] = dZᵀ · X: dY stored [cap, out] = k × m (trans_a), X [cap, in] = k × n.
        let dw = GemmSpec {
            offset_a: b.y.offset,
            offset_c: b.weight.1.offset,
            gate,
            stride_b: x_stride,
            ..GemmSpec::new(t, out, fan_in, cap, true, false)
        };
        let grad_weight = Gemm::new(gpu, &dw, b.dy, b.x, None, mask, b.weight.1.buffer)?;
        let grad_bias = match b.bias {
            Some((_, grad)) => Some(Self::bias_grad(gpu, spec, b, grad)?),
            None => None,
        };
        // dX [cap, in] = dZ · W: dY [cap, out] = m × k, W [out, in] = k × n.
        let di = GemmSpec {
            offset_a: b.y.offset,
            offset_b: b.weight.0.offset,
            gate,
            ..GemmSpec::new(t, cap, fan_in, out, false, false)
        };
        let grad_input = (b.dx)
            .map(|dx| Gemm::new(gpu, &di, b.dy, b.weight.0.buffer, None, mask, dx))
            .transpose()?;
        Ok(Linear {
            spec,
            forward,
            forward_eval,
            grad_weight,
            grad_bias,
            grad_input,
        })
    }

    fn bias_grad(
        gpu: &Gpu,
        spec: LinearSpec,
        b: &LinearBuffers<'_>,
        grad: At<'_>,
    ) -> Result<ColumnSum> {
        let LinearSpec {
            tables,
            batch_cap,
            out,
            relu,
            ..
        } = spec;
        let sum = ColumnSum::new_at(
            gpu,
            tables,
            batch_cap,
            out,
            out,
            batch_cap as u64 * out as u64,
            false,
            relu.then_some(GateKind::ReluMask),
            b.dy,
            relu.then_some(b.y.buffer),
            grad.buffer,
            SumOutput {
                offset: grad.offset,
                stride: out as u64,
            },
        )?;
        match b.y.offset {
            0 => Ok(sum),
            at => sum.with_input_offset(gpu, at),
        }
    }

    /// The shape.
    pub fn spec(&self) -> LinearSpec {
        self.spec
    }

    /// Sets the batch of the next runs (≤ `batch_cap`).
    pub fn set_rows(&self, gpu: &Gpu, rows: u32) -> Result<()> {
        let LinearSpec { fan_in, out, .. } = self.spec;
        self.forward.set_dims(gpu, rows, out, fan_in)?;
        if let Some(f) = &self.forward_eval {
            f.set_dims(gpu, rows, out, fan_in)?;
        }
        self.grad_weight.set_dims(gpu, out, fan_in, rows)?;
        if let Some(s) = &self.grad_bias {
            s.set_rows(gpu, rows)?;
        }
        if let Some(g) = &self.grad_input {
            g.set_dims(gpu, rows, fan_in, out)?;
        }
        Ok(())
    }

    /// Records the forward from `x` (training).
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.forward.record(gpu, pass);
    }

    /// Records the forward from `x_eval` when given, else from `x` (evaluation).
    pub fn record_eval(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.forward_eval
            .as_ref()
            .unwrap_or(&self.forward)
            .record(gpu, pass);
    }

    /// Records the backward: `dW`, `db`, `dX`, from `dy` (written by the caller).
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.grad_weight.record(gpu, pass);
        if let Some(s) = &self.grad_bias {
            s.record(gpu, pass);
        }
        if let Some(g) = &self.grad_input {
            g.record(gpu, pass);
        }
    }

    /// Dispatches of (forward, backward).
    pub fn dispatches(&self) -> (u64, u64) {
        (
            1,
            1 + self.grad_bias.is_some() as u64 + self.grad_input.is_some() as u64,
        )
    }

    /// Floating-point operations of one forward at the current batch.
    pub fn forward_flops(&self) -> u64 {
        self.forward.flops()
    }
}
