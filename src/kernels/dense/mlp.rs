//! `MlpStack`: [`Linear`] layers (ReLU after each, optionally not after the last) batched over
//! tables, each owning its tensors: forward keeps every layer's output, backward writes the
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

use super::linear::{At, Linear, LinearBuffers, LinearSpec};
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

/// A prepared MLP stack over the caller's input buffer (see the module docs).
pub struct MlpStack {
    /// The layers, input side first.
    pub layers: Vec<MlpLayer>,
    ops: Vec<Linear>,
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
        let count = spec.widths.len() - 1;
        let layers: Vec<MlpLayer> = (0..count).map(|l| Self::layer(gpu, spec, l)).collect();
        let mut ops = Vec::with_capacity(count);
        for (l, layer) in layers.iter().enumerate() {
            let (fan_in, out) = layer.shape;
            let linear = LinearSpec {
                tables: spec.tables,
                batch_cap: spec.batch_cap,
                fan_in,
                out,
                relu: layer.relu,
            };
            let buffers = LinearBuffers {
                x: if l == 0 { x } else { &layers[l - 1].output },
                x_eval: None,
                dx: if l == 0 {
                    grad_x
                } else {
                    Some(&layers[l - 1].grad_output)
                },
                y: At::start(&layer.output),
                dy: &layer.grad_output,
                weight: (At::start(&layer.weight), At::start(&layer.grad_weight)),
                bias: Some((At::start(&layer.bias), At::start(&layer.grad_bias))),
            };
            ops.push(Linear::new(gpu, linear, &buffers)?);
        }
        Ok(MlpStack {
            layers,
            ops,
            spec: spec.clone(),
        })
    }

    /// Layer `l`'s zeroed tensors.
    fn layer(gpu: &Gpu, spec: &MlpSpec, l: usize) -> MlpLayer {
        let (t, cap) = (spec.tables as u64, spec.batch_cap as u64);
        let (fan_in, out) = (spec.widths[l], spec.widths[l + 1]);
        let params = t * out as u64 * fan_in as u64;
        let acts = t * cap * out as u64;
        let f32s = |label: &str, n: u64| gpu.buffer(label, n * 4, storage_usage());
        MlpLayer {
            weight: f32s("mlp weight", params),
            bias: f32s("mlp bias", t * out as u64),
            grad_weight: f32s("mlp grad weight", params),
            grad_bias: f32s("mlp grad bias", t * out as u64),
            output: f32s("mlp output", acts),
            grad_output: f32s("mlp grad output", acts),
            shape: (fan_in, out),
            relu: l + 2 < spec.widths.len() || spec.relu_last,
        }
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
        for op in &self.ops {
            op.set_rows(gpu, rows)?;
        }
        Ok(())
    }

    /// Records the forward pass: one dispatch per layer.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for op in &self.ops {
            op.record(gpu, pass);
        }
    }

    /// Records the backward pass from the last layer's `grad_output` (written by the caller).
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for op in self.ops.iter().rev() {
            op.record_backward(gpu, pass);
        }
    }

    /// Floating-point operations of one forward run at the current batch.
    pub fn forward_flops(&self) -> u64 {
        self.ops.iter().map(Linear::forward_flops).sum()
    }
}
