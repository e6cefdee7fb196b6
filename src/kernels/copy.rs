//! Launcher of `copy_vec4`, the bandwidth ceiling every memory-bound bench is measured against.

use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup of the copy.
pub const COPY_WG: u32 = 256;

/// Mirrors `CopyParams` in `copy.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CopyParams {
    /// vec4s to copy.
    pub n4: u32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 3],
}

/// The copy kernel's description.
pub const COPY_VEC4: Kernel = Kernel::new(
    shaders::COPY,
    "copy_vec4",
    &[Access::Read, Access::ReadWrite, Access::Uniform],
);

/// A prepared copy between two buffers of `n4` vec4s.
pub struct CopyVec4 {
    launch: Launch,
    /// Source buffer.
    pub src: wgpu::Buffer,
    /// Destination buffer.
    pub dst: wgpu::Buffer,
    n4: u32,
}

impl CopyVec4 {
    /// Allocates source and destination of `bytes` (a multiple of 16) each.
    pub fn new(gpu: &Gpu, bytes: u64) -> Result<Self> {
        let max = gpu.limits().max_storage_buffer_binding_size;
        if !bytes.is_multiple_of(16) || bytes > max || bytes / 16 > u32::MAX as u64 {
            return Err(Error::kernel(
                COPY_VEC4.entry,
                format!("{bytes} bytes: need a multiple of 16 up to the binding limit {max}"),
            ));
        }
        let pipeline = gpu.pipeline(&COPY_VEC4, &[("WG", COPY_WG as f64)])?;
        let src = gpu.buffer("copy src", bytes, storage_usage());
        let dst = gpu.buffer("copy dst", bytes, storage_usage());
        let n4 = (bytes / 16) as u32;
        let params = Uniform::new(
            gpu,
            "copy params",
            &CopyParams {
                n4,
                ..Default::default()
            },
        );
        let grid = Grid::Folded(n4.div_ceil(COPY_WG));
        let launch = Launch::new(gpu, &pipeline, &[&src, &dst, params.buffer()], grid)?;
        Ok(CopyVec4 {
            launch,
            src,
            dst,
            n4,
        })
    }

    /// Bytes moved per run (read + write).
    pub fn traffic_bytes(&self) -> u64 {
        self.n4 as u64 * 32
    }

    /// Records one copy.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}
