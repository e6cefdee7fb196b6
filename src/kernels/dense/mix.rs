//! TEMPORARY STUB (not committed): the mix kernel's API while the real one is written.
#![allow(missing_docs, dead_code, unused_variables)]
use crate::error::Result;
use crate::gpu::Gpu;
pub struct MixSpec<'a> {
    pub units: u32,
    pub experts: u32,
    pub rows_cap: u32,
    pub cols: u32,
    pub uniform: bool,
    pub gate_input_grad: bool,
    pub route: &'a [u32],
}
pub struct MixBuffers<'a> {
    pub h: &'a wgpu::Buffer,
    pub logits: Option<&'a wgpu::Buffer>,
    pub gate: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    pub grad_out: &'a wgpu::Buffer,
    pub grad_h: &'a wgpu::Buffer,
    pub grad_logits: Option<&'a wgpu::Buffer>,
    pub grad_x: Option<&'a wgpu::Buffer>,
}
pub struct MixDispatches {
    pub forward: u64,
    pub backward_logits: u64,
    pub backward_h: u64,
}
pub struct Mix;
impl Mix {
    pub fn new(gpu: &Gpu, spec: &MixSpec<'_>, b: &MixBuffers<'_>) -> Result<Self> {
        unimplemented!()
    }
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        unimplemented!()
    }
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {}
    pub fn record_backward_logits(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {}
    pub fn record_backward_h(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {}
    pub fn dispatches(&self) -> MixDispatches {
        unimplemented!()
    }
}
pub struct Transpose;
impl Transpose {
    pub fn new(
        gpu: &Gpu,
        units: u32,
        rows_cap: u32,
        b: (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
    ) -> Result<Self> {
        unimplemented!()
    }
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        unimplemented!()
    }
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {}
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {}
}
