//! Launcher of `fma_ceiling`, the arithmetic ceiling every GEMM bench is measured against.

use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup of the FMA kernel.
pub const FMA_WG: u32 = 64;
/// Scalar FMA chains per invocation (the shader's four vec4 chains).
pub const FMA_CHAINS: u64 = 16;

/// Mirrors `FmaParams` in `fma.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FmaParams {
    /// Invocations that run (one output each).
    pub invocations: u32,
    /// Rounds of the chains per invocation.
    pub iters: u32,
    /// Multiplier of every chain step.
    pub mul: f32,
    /// Addend of every chain step.
    pub add: f32,
}

/// The FMA kernel's description.
pub const FMA_CEILING: Kernel = Kernel::new(
    shaders::FMA,
    "fma_ceiling",
    &[Access::ReadWrite, Access::Uniform],
);

/// A prepared FMA-throughput run of `invocations` × `iters` rounds of 16 scalar FMA chains.
pub struct FmaCeiling {
    launch: Launch,
    /// One f32 per invocation (the chains' sum; read back to prove the work happened).
    pub out: wgpu::Buffer,
    params: FmaParams,
}

impl FmaCeiling {
    /// Allocates the output and builds the pipeline; `invocations` ≥ 1, `iters` ≥ 1.
    pub fn new(gpu: &Gpu, invocations: u32, iters: u32) -> Result<Self> {
        if invocations == 0 || iters == 0 {
            return Err(Error::kernel(
                FMA_CEILING.entry,
                format!("{invocations} invocations × {iters} iterations: both must be ≥ 1"),
            ));
        }
        let pipeline = gpu.pipeline(&FMA_CEILING, &[("WG", FMA_WG as f64)])?;
        let out = gpu.buffer("fma out", invocations as u64 * 4, storage_usage());
        let params = FmaParams {
            invocations,
            iters,
            mul: 0.999_9,
            add: 1e-4,
        };
        let uniform = Uniform::new(gpu, "fma params", &params);
        let grid = Grid::Folded(invocations.div_ceil(FMA_WG));
        let launch = Launch::new(gpu, &pipeline, &[&out, uniform.buffer()], grid)?;
        Ok(FmaCeiling {
            launch,
            out,
            params,
        })
    }

    /// Floating-point operations of one run (an FMA counts as two).
    pub fn flops(&self) -> u64 {
        2 * FMA_CHAINS * self.params.invocations as u64 * self.params.iters as u64
    }

    /// Records one run.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}
