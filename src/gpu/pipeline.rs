//! Compiled compute pipelines, cached by (shader, entry point, override constants), each with the
//! explicit bind-group layout its kernel declares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Gpu;
use crate::error::{Error, Result};
use crate::shaders::Shader;

/// How a kernel uses one binding. Bindings are numbered in declaration order: read-only inputs,
/// then read-write outputs, then the uniform params struct (DESIGN.md §Kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
    /// `var<uniform>`
    Uniform,
}

/// A kernel: one entry point of one shader and the bindings of its group 0.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    /// The shader holding the entry point.
    pub shader: Shader,
    /// WGSL entry point name (also the launcher's name).
    pub entry: &'static str,
    /// Bindings 0.. of group 0.
    pub bindings: &'static [Access],
}

impl Kernel {
    /// The kernel `entry` of `shader` over `bindings`: a `const fn`, so every launcher declares its
    /// kernels as constants.
    pub const fn new(shader: Shader, entry: &'static str, bindings: &'static [Access]) -> Self {
        Kernel {
            shader,
            entry,
            bindings,
        }
    }
}

/// A compiled pipeline and its bind-group layout.
pub struct Pipeline {
    /// The wgpu pipeline.
    pub pipeline: wgpu::ComputePipeline,
    /// Layout of bind group 0.
    pub layout: wgpu::BindGroupLayout,
    /// The kernel it was built from.
    pub kernel: Kernel,
}

impl Pipeline {
    /// A bind group over `buffers`, in binding order; the count must match the kernel's bindings.
    pub fn bind(&self, gpu: &Gpu, buffers: &[&wgpu::Buffer]) -> Result<wgpu::BindGroup> {
        if buffers.len() != self.kernel.bindings.len() {
            return Err(Error::kernel(
                self.kernel.entry,
                format!(
                    "{} buffers given for {} bindings",
                    buffers.len(),
                    self.kernel.bindings.len()
                ),
            ));
        }
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        gpu.scoped(
            &format!("binding buffers for {}", self.kernel.entry),
            || {
                gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(self.kernel.entry),
                    layout: &self.layout,
                    entries: &entries,
                })
            },
        )
    }
}

impl Pipeline {
    /// Records `workgroups` workgroups of this pipeline over `bind_group`, folded into (x, y) past
    /// the per-dimension limit (shaders rebuild the linear index); nothing when there are none.
    pub fn dispatch(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bind_group: &wgpu::BindGroup,
        workgroups: u32,
    ) {
        if workgroups == 0 {
            return;
        }
        let (x, y) = super::grid(
            workgroups,
            gpu.limits().max_compute_workgroups_per_dimension,
        );
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
        gpu.count_dispatch();
    }

    /// Records a 3-D grid of workgroups (for example tiles × tiles × tables). Each dimension must be
    /// within the device's per-dimension limit: launchers check their grids when they are built
    /// ([`Pipeline::check_grid`]); nothing is recorded when any dimension is zero.
    pub fn dispatch_3d(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bind_group: &wgpu::BindGroup,
        grid: [u32; 3],
    ) {
        if grid.contains(&0) {
            return;
        }
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        gpu.count_dispatch();
    }

    /// `Err` naming the kernel when any dimension of `grid` exceeds the per-dimension limit.
    pub fn check_grid(&self, gpu: &Gpu, grid: [u32; 3]) -> Result<()> {
        let max = gpu.limits().max_compute_workgroups_per_dimension;
        if grid.iter().any(|&g| g > max) {
            return Err(Error::kernel(
                self.kernel.entry,
                format!("grid {grid:?} exceeds {max} workgroups per dimension"),
            ));
        }
        Ok(())
    }
}

// Keyed by the compiled source, not the file name: a shader registered twice with different
// preludes (the f16 storage variants) is two modules.
type Key = (&'static str, &'static str, Vec<(String, u64)>);

#[derive(Default)]
pub(super) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<Key, Arc<Pipeline>>>,
}

impl PipelineCache {
    pub(super) fn len(&self) -> usize {
        self.pipelines.lock().map(|p| p.len()).unwrap_or(0)
    }

    pub(super) fn get(
        &self,
        gpu: &Gpu,
        kernel: &Kernel,
        constants: &[(&str, f64)],
    ) -> Result<Arc<Pipeline>> {
        let key: Key = (
            kernel.shader.source,
            kernel.entry,
            constants
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_bits()))
                .collect(),
        );
        if let Some(found) = self
            .pipelines
            .lock()
            .ok()
            .and_then(|p| p.get(&key).cloned())
        {
            return Ok(found);
        }
        let module = self.module(gpu, kernel.shader)?;
        let layout = bind_group_layout(gpu, kernel)?;
        let context = format!("compiling {}::{}", kernel.shader.name, kernel.entry);
        let pipeline = gpu.scoped(&context, || {
            let pipeline_layout =
                gpu.device
                    .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some(kernel.entry),
                        bind_group_layouts: &[Some(&layout)],
                        immediate_size: 0,
                    });
            gpu.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.entry),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(kernel.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
        })?;
        let built = Arc::new(Pipeline {
            pipeline,
            layout,
            kernel: *kernel,
        });
        if let Ok(mut map) = self.pipelines.lock() {
            map.insert(key, Arc::clone(&built));
        }
        Ok(built)
    }

    fn module(&self, gpu: &Gpu, shader: Shader) -> Result<Arc<wgpu::ShaderModule>> {
        if let Some(found) = self
            .modules
            .lock()
            .ok()
            .and_then(|m| m.get(shader.source).cloned())
        {
            return Ok(found);
        }
        let module = gpu.scoped(&format!("compiling shader {}", shader.name), || {
            gpu.device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.name),
                    source: wgpu::ShaderSource::Wgsl(shader.source.into()),
                })
        })?;
        let module = Arc::new(module);
        if let Ok(mut map) = self.modules.lock() {
            map.insert(shader.source, Arc::clone(&module));
        }
        Ok(module)
    }
}

fn bind_group_layout(gpu: &Gpu, kernel: &Kernel) -> Result<wgpu::BindGroupLayout> {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
        .bindings
        .iter()
        .enumerate()
        .map(|(i, access)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match access {
                    Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    Access::Uniform => wgpu::BufferBindingType::Uniform,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let storage = kernel
        .bindings
        .iter()
        .filter(|a| **a != Access::Uniform)
        .count() as u32;
    let max = gpu.limits().max_storage_buffers_per_shader_stage;
    if storage > max {
        return Err(Error::kernel(
            kernel.entry,
            format!("needs {storage} storage buffers per stage; the device allows {max}"),
        ));
    }
    gpu.scoped(&format!("laying out bindings of {}", kernel.entry), || {
        gpu.device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(kernel.entry),
                entries: &entries,
            })
    })
}
