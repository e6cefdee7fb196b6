//! Kernel launchers: one module per shader family, each with `#[repr(C)]` params structs mirroring
//! the WGSL ones, and prepared ops that build their buffers and bind groups once.
//!
//! Every launcher is built from the scaffolding in [`crate::gpu`]: its kernels are
//! [`Kernel::new`](crate::gpu::Kernel::new) constants (shader, entry point, bindings), its
//! params a typed [`Uniform`](crate::gpu::Uniform), each dispatch a
//! [`Launch`](crate::gpu::Launch) (pipeline, bind group, grid) recorded by `record(gpu, pass)`.
//! What a launcher adds is what differs from kernel to kernel: validating shapes and buffers, the
//! override constants, the grid, and how its params change per step (`set_rows`, through
//! [`Uniform::set_rows`](crate::gpu::Uniform::set_rows)).

pub mod content;
pub mod copy;
pub mod dense;
pub mod embedding;
pub mod loss;
pub mod tim;

/// Runs `record` in one compute pass of a fresh encoder and submits it: the one-off path used by
/// tests and benches (a training step records many kernels into one pass instead).
pub fn run_once(gpu: &crate::gpu::Gpu, record: impl FnOnce(&mut wgpu::ComputePass<'_>)) {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        record(&mut pass);
    }
    gpu.queue.submit([encoder.finish()]);
}
