//! `MlpStack`: Linear layers (ReLU after each, optionally not after the last) batched over tables,
//! built from [`Gemm`] and [`ColumnSum`]: forward keeps every layer's output, backward writes the
//! input gradient and every weight and bias gradient.
//!
//! # Layouts (all `f32`, table-major)
//! - input `x`: `[tables, batch_cap, widths[0]]`;
//! - layer `l` (`in = widths[l]`, `out = widths[l + 1]`): `weight [tables, out, in]` (PyTorch's
//!   `Linear` layout, `y = x Wᵀ + b`), `bias [tables, out]`, `output` and `grad_output`
//!   `[tables, batch_cap, out]`, `grad_weight` and `grad_bias` shaped like the parameters;
//! - `grad_x` (optional): `[tables, batch_cap, widths[0]]`.
//!
//! # Dispatches
//! Forward: one `gemm` per layer (bias and ReLU fused). Backward, per layer from the last: `dW =
//! dZᵀ·X` and `dX = dZ·W` as `gemm`s and `db = Σ dZ` as `column_sum`, where `dZ = dY ⊙ (Y > 0)` is
//! never stored: it is the ReLU-mask gate on the `dY` operand, gated by the stored output `Y`. The
//! first layer's `dX` is skipped when no `grad_x` is given. Parameter gradients are overwritten.

use super::gemm::{ColumnSum, Epilogue, Gate, GateKind, Gemm, GemmSpec, Operand};
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Gpu};

/// The shape of an MLP stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlpSpec {
    /// Independent stacks (one per table), one dispatch per op for all of them.
    pub tables: u32,
    /// Largest batch the buffers hold.
    pub batch_cap: u32,
    /// Input width followed by every layer's output width (at least two entries).
    pub widths: Vec<u32>,
    /// Whether the last layer is followed by ReLU too.
    pub relu_last: bool,
}

/// One layer's parameters, gradients and activations.
pub struct MlpLayer {
    /// `[tables, out, in]`
    pub weight: wgpu::Buffer,
    /// `[tables, out]`
    pub bias: wgpu::Buffer,
    /// `[tables, out, in]`, overwritten by backward.
    pub grad_weight: wgpu::Buffer,
    /// `[tables, out]`, overwritten by backward.
    pub grad_bias: wgpu::Buffer,
    /// `[tables, batch_cap, out]`: the layer's output after its activation (kept for backward).
    pub output: wgpu::Buffer,
    /// `[tables, batch_cap, out]`: the loss gradient with respect to `output`; the caller writes the
    /// last layer's, backward writes the others.
    pub grad_output: wgpu::Buffer,
    /// `in`, `out`.
    pub shape: (u32, u32),
    /// Whether ReLU follows.
    pub relu: bool,
}

struct Backward {
    grad_weight: Gemm,
    grad_bias: ColumnSum,
    grad_input: Option<Gemm>,
}

/// A prepared MLP stack over the caller's input buffer (see the module docs).
pub struct MlpStack {
    /// The layers, input side first.
    pub layers: Vec<MlpLayer>,
    forward: Vec<Gemm>,
    backward: Vec<Backward>,
    spec: MlpSpec,
}

impl MlpStack {
    /// Allocates parameters (zeroed: the caller writes them), gradients and activations, and
    /// prepares every op. `x` is the input; `grad_x`, when given, receives the input gradient.
    pub fn new(
        gpu: &Gpu,
        spec: &MlpSpec,
        x: &wgpu::Buffer,
        grad_x: Option<&wgpu::Buffer>,
    ) -> Result<MlpStack> {
        if spec.widths.len() < 2 || spec.widths.contains(&0) {
            return Err(Error::kernel(
                "mlp",
                format!(
                    "widths {:?}: need an input and ≥ 1 layer, all > 0",
                    spec.widths
                ),
            ));
        }
        let (t, cap) = (spec.tables, spec.batch_cap);
        let count = spec.widths.len() - 1;
        let f32s = |n: u64| n * 4;
        let mut layers: Vec<MlpLayer> = Vec::with_capacity(count);
        let mut forward = Vec::with_capacity(count);
        for l in 0..count {
            let (fan_in, out) = (spec.widths[l], spec.widths[l + 1]);
            let params = t as u64 * out as u64 * fan_in as u64;
            let acts = t as u64 * cap as u64 * out as u64;
            let relu = l + 1 < count || spec.relu_last;
            let layer = MlpLayer {
                weight: gpu.buffer("mlp weight", f32s(params), storage_usage()),
                bias: gpu.buffer("mlp bias", f32s(t as u64 * out as u64), storage_usage()),
                grad_weight: gpu.buffer("mlp grad weight", f32s(params), storage_usage()),
                grad_bias: gpu.buffer(
                    "mlp grad bias",
                    f32s(t as u64 * out as u64),
                    storage_usage(),
                ),
                output: gpu.buffer("mlp output", f32s(acts), storage_usage()),
                grad_output: gpu.buffer("mlp grad output", f32s(acts), storage_usage()),
                shape: (fan_in, out),
                relu,
            };
            let input = if l == 0 { x } else { &layers[l - 1].output };
            // Y = act(X · Wᵀ + b): X [cap, in], W stored [out, in].
            let fwd = GemmSpec {
                bias: true,
                epilogue: if relu {
                    Epilogue::Relu
                } else {
                    Epilogue::Identity
                },
                ..GemmSpec::new(t, cap, out, fan_in, false, true)
            };
            let op = Gemm::new(
                gpu,
                &fwd,
                input,
                &layer.weight,
                Some(&layer.bias),
                None,
                &layer.output,
            )?;
            forward.push(op);
            layers.push(layer);
        }
        let mut backward = Vec::with_capacity(count);
        for l in 0..count {
            let layer = &layers[l];
            let (fan_in, out) = layer.shape;
            let input = if l == 0 { x } else { &layers[l - 1].output };
            let gate = layer.relu.then_some(&layer.output);
            let mask = |operand| {
                layer.relu.then_some(Gate {
                    operand,
                    kind: GateKind::ReluMask,
                })
            };
            // dW [out, in] = dZᵀ · X: dY stored [cap, out] = k × m (trans_a), X [cap, in] = k × n.
            let dw = GemmSpec {
                gate: mask(Operand::A),
                ..GemmSpec::new(t, out, fan_in, cap, true, false)
            };
            let grad_weight = Gemm::new(
                gpu,
                &dw,
                &layer.grad_output,
                input,
                None,
                gate,
                &layer.grad_weight,
            )?;
            let grad_bias = ColumnSum::new(
                gpu,
                t,
                cap,
                out,
                out,
                cap as u64 * out as u64,
                false,
                layer.relu.then_some(GateKind::ReluMask),
                &layer.grad_output,
                gate,
                &layer.grad_bias,
            )?;
            // dX [cap, in] = dZ · W: dY [cap, out] = m × k, W [out, in] = k × n.
            let target = if l == 0 {
                grad_x
            } else {
                Some(&layers[l - 1].grad_output)
            };
            let grad_input = match target {
                Some(dx) => {
                    let spec = GemmSpec {
                        gate: mask(Operand::A),
                        ..GemmSpec::new(t, cap, fan_in, out, false, false)
                    };
                    Some(Gemm::new(
                        gpu,
                        &spec,
                        &layer.grad_output,
                        &layer.weight,
                        None,
                        gate,
                        dx,
                    )?)
                }
                None => None,
            };
            backward.push(Backward {
                grad_weight,
                grad_bias,
                grad_input,
            });
        }
        Ok(MlpStack {
            layers,
            forward,
            backward,
            spec: spec.clone(),
        })
    }

    /// The spec it was built with.
    pub fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    /// Sets the batch of the next forward and backward runs (≤ `batch_cap`; 0 allowed).
    pub fn set_rows(&self, gpu: &Gpu, rows: u32) -> Result<()> {
        if rows > self.spec.batch_cap {
            return Err(Error::kernel(
                "mlp",
                format!("{rows} rows exceed the capacity {}", self.spec.batch_cap),
            ));
        }
        for ((op, back), layer) in self.forward.iter().zip(&self.backward).zip(&self.layers) {
            let (fan_in, out) = layer.shape;
            op.set_dims(gpu, rows, out, fan_in)?;
            back.grad_weight.set_dims(gpu, out, fan_in, rows)?;
            back.grad_bias.set_rows(gpu, rows)?;
            if let Some(dx) = &back.grad_input {
                dx.set_dims(gpu, rows, fan_in, out)?;
            }
        }
        Ok(())
    }

    /// Records the forward pass: one dispatch per layer.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for op in &self.forward {
            op.record(gpu, pass);
        }
    }

    /// Records the backward pass from the last layer's `grad_output` (written by the caller).
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for back in self.backward.iter().rev() {
            back.grad_weight.record(gpu, pass);
            back.grad_bias.record(gpu, pass);
            if let Some(dx) = &back.grad_input {
                dx.record(gpu, pass);
            }
        }
    }

    /// Floating-point operations of one forward run at the current batch.
    pub fn forward_flops(&self) -> u64 {
        self.forward.iter().map(Gemm::flops).sum()
    }
}
