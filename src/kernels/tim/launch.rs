//! Launchers of `tim_forward` and `tim_backward` (or, for a mean-pooled spec, `tim_mean_forward`
//! and `tim_mean_backward`): buffers and bind groups built once; per batch one upload, then one
//! dispatch each for all M sets.
//!
//! Variants ([`Family::Tim`], shape class `d{D}l{max_len}` in power-of-two buckets): `default`, the
//! workgroup reductions as trees in workgroup memory (`prelude/tim_reduce.wgsl`); `subgroup`, the
//! same shader with `prelude/tim_reduce_subgroup.wgsl` (subgroup butterflies, two barriers per
//! reduction instead of eight). The subgroup variant is used for attention pooling (mean pooling
//! has no reduction) where `TIM_WG` is a multiple of the adapter's largest subgroup size (its
//! butterfly needs full subgroups); otherwise the launcher takes the default.

use super::batch::{TimBatch, TimPooling, TimSpec, KERNEL, MAX_FEATURES};
use crate::error::{Error, Result};
use std::sync::Arc;

use crate::gpu::{
    size_class, storage_usage, Access, Family, Gpu, Grid, Kernel, Launch, Pipeline, Uniform,
    Variant,
};
use crate::kernels::dense::check_len;
use crate::kernels::embedding::{Bags, EmbeddingStorage, FeatureSet, TbeForward};
use crate::shaders;

/// The TIM kernels's variants ([`crate::gpu::variants`]); the first is the default path.
pub const VARIANTS: &[Variant] = &[
    Variant::DEFAULT,
    Variant {
        name: "subgroup",
        subgroups: true,
        constants: &[],
    },
];

/// Invocations per workgroup (the WGSL `WG` override): a power of two ≥ 64 vec4 columns (D = 256).
pub const TIM_WG: u32 = 64;

/// Mirrors `TimParams` in `tim.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TimParams {
    /// Samples in the batch.
    pub batch_size: u32,
    /// M, table sets.
    pub sets: u32,
    /// K, tables per set (semantic + temporal).
    pub components: u32,
    /// D / 4.
    pub width4: u32,
    /// Bags section starts in the batch buffer (words).
    pub offsets_at: u32,
    /// Indices start.
    pub indices_at: u32,
    /// log2 vec4s per chunk.
    pub chunk_shift: u32,
    /// vec4s per chunk − 1.
    pub chunk_mask: u32,
    /// Rows reserved per set in u, dL/du and the saved statistics.
    pub rows_cap: u32,
    /// 1 / √D.
    pub scale: f32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 2],
    /// Per feature m·K + k: table base4, stride4, gradient offset4 and stride4.
    pub features: [[u32; 4]; MAX_FEATURES],
}

const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::Uniform,
];

/// The forward kernel's description.
pub const TIM_FORWARD: Kernel = Kernel::new(shaders::TIM, "tim_forward", BINDINGS);

/// The backward kernel's description (same bindings; `out` is the per-lookup gradient rows).
pub const TIM_BACKWARD: Kernel = Kernel::new(shaders::TIM, "tim_backward", BINDINGS);

/// Mean pooling's forward (same bindings; reads neither `grad_u` nor `stats`).
pub const TIM_MEAN_FORWARD: Kernel = Kernel::new(shaders::TIM, "tim_mean_forward", BINDINGS);

/// Mean pooling's backward (same bindings; reads no table row and no `stats`).
pub const TIM_MEAN_BACKWARD: Kernel = Kernel::new(shaders::TIM, "tim_mean_backward", BINDINGS);

/// The (forward, backward) kernels of a pooling.
fn kernels(pooling: TimPooling) -> (&'static Kernel, &'static Kernel) {
    match pooling {
        TimPooling::Attention => (&TIM_FORWARD, &TIM_BACKWARD),
        TimPooling::Mean => (&TIM_MEAN_FORWARD, &TIM_MEAN_BACKWARD),
    }
}

/// The variant's name and its (forward, backward) pipelines for `storage`'s element type.
fn pipelines(
    gpu: &Gpu,
    storage: &EmbeddingStorage,
    spec: &TimSpec,
    dim: u32,
    constants: &[(&str, f64)],
) -> Result<(&'static str, Arc<Pipeline>, Arc<Pipeline>)> {
    let class = format!("d{}l{}", size_class(dim), size_class(spec.max_len));
    let variant = gpu.variant(Family::Tim, &class);
    let suits = variant.subgroups
        && spec.pooling() == TimPooling::Attention
        && TIM_WG.is_multiple_of(gpu.info().subgroup_max_size.max(1));
    let (forward, backward) = kernels(spec.pooling());
    let (name, shader) = match suits {
        true => (variant.name, shaders::TIM_SUBGROUP),
        false => ("default", forward.shader),
    };
    let compile = |k: &Kernel| gpu.pipeline(&storage.kernel(&Kernel { shader, ..*k }), constants);
    Ok((name, compile(forward)?, compile(backward)?))
}

/// A prepared TIM over one embedding storage: forward into the caller's `u` (`[M, max_batch, D]`),
/// backward from the caller's dL/du (same layout) into per-lookup gradient rows that a
/// [`TbeUpdate`](crate::kernels::embedding::TbeUpdate) built on [`Tim::gather`] and
/// [`Tim::row_grads`] applies.
pub struct Tim {
    /// The validated spec.
    pub spec: TimSpec,
    /// D, the width of every table of the spec.
    pub dim: u32,
    gather: TbeForward,
    variant: &'static str,
    forward: Launch,
    backward: Launch,
    params: Uniform<TimParams>,
    state: TimParams,
}

impl Tim {
    /// Validates `spec` against `storage`, checks `u` and `grad_u` hold `[M, max_batch, D]`, and
    /// builds the pipelines, the saved-statistics buffer and the gradient rows.
    pub fn new(
        gpu: &Gpu,
        storage: &EmbeddingStorage,
        spec: TimSpec,
        u: &wgpu::Buffer,
        grad_u: &wgpu::Buffer,
    ) -> Result<Self> {
        let layout = &storage.layout;
        let dim = spec.validate(layout)?;
        let features = spec.features(layout)?;
        let slab = spec.sets.len() as u64 * spec.max_batch as u64;
        check_len(KERNEL, "u", u, slab * dim as u64)?;
        check_len(KERNEL, "grad_u", grad_u, slab * dim as u64)?;
        let max_binding = gpu.limits().max_storage_buffer_binding_size;
        if features.out_len * 4 > max_binding {
            return Err(Error::kernel(
                KERNEL,
                format!(
                    "gradient rows of {} bytes ({} tables × {} lookups × {dim} floats) exceed the \
                     {max_binding}-byte binding limit; lower max_batch or max_len",
                    features.out_len * 4,
                    features.len(),
                    features.features[0].max_lookups
                ),
            ));
        }
        let lookups = features.len() as u64 * features.features[0].max_lookups as u64;
        let mut state: TimParams = bytemuck::Zeroable::zeroed();
        for (f, spec_f) in features.features.iter().enumerate() {
            let t = layout.tables[spec_f.table];
            state.features[f] = [
                t.base4 as u32,
                t.stride4,
                spec_f.out_offset / 4,
                spec_f.out_stride / 4,
            ];
        }
        let gather = TbeForward::new(gpu, storage, features, lookups)?;
        // One chunk (the usual case) compiles without the per-load chunk switch.
        let chunks = if layout.chunks() == 1 { 1.0 } else { 4.0 };
        let constants = [("WG", TIM_WG as f64), ("CHUNKS", chunks)];
        let (variant, forward, backward) = pipelines(gpu, storage, &spec, dim, &constants)?;
        let stats = gpu.buffer("tim stats", slab * 8, storage_usage());
        let params = Uniform::new(gpu, "tim params", &state);
        let c = &storage.chunks;
        let rows = gather.output();
        let batch = &gather.batch;
        let p = params.buffer();
        // No batch yet: nothing to run until the first upload.
        let forward = Launch::new(
            gpu,
            &forward,
            &[batch, &c[0], &c[1], &c[2], &c[3], grad_u, &stats, u, p],
            Grid::Folded(0),
        )?;
        let backward = Launch::new(
            gpu,
            &backward,
            &[batch, &c[0], &c[1], &c[2], &c[3], grad_u, &stats, rows, p],
            Grid::Folded(0),
        )?;
        state.sets = spec.sets.len() as u32;
        state.components = spec.components() as u32;
        state.width4 = dim / 4;
        state.rows_cap = spec.max_batch;
        state.scale = (1.0 / (dim as f64).sqrt()) as f32;
        state.chunk_shift = layout.chunk_shift;
        state.chunk_mask = (layout.chunk4() - 1) as u32;
        Ok(Tim {
            variant,
            spec,
            dim,
            gather,
            forward,
            backward,
            params,
            state,
        })
    }

    /// The variant it compiled: `"default"`, or `"subgroup"` where chosen and suited.
    pub fn variant(&self) -> &'static str {
        self.variant
    }

    /// The pooling-none feature set of the lookups (build the update plan with it).
    pub fn features(&self) -> &FeatureSet {
        &self.gather.features
    }

    /// The gather whose metadata and batch buffers TIM shares; never recorded by TIM (that would
    /// materialise the rows). Hand it to `TbeUpdate::new` with [`Tim::row_grads`].
    pub fn gather(&self) -> &TbeForward {
        &self.gather
    }

    /// The per-lookup gradient rows the backward writes: the gather's pooling-none output layout.
    pub fn row_grads(&self) -> &wgpu::Buffer {
        self.gather.output()
    }

    /// Lookups (= touched rows) a batch can make at most: the `max_touches` of its `TbeUpdate`.
    pub fn max_touches(&self) -> u64 {
        let f = self.features();
        f.len() as u64 * f.features.first().map_or(0, |s| s.max_lookups as u64)
    }

    /// The params of the last uploaded batch.
    pub fn params(&self) -> &TimParams {
        &self.state
    }

    /// Builds the bags of `batch`, uploads them (ids are checked against their tables) and returns
    /// them, for `SparseUpdatePlan::build(tim.features(), &bags)`.
    pub fn upload(
        &mut self,
        gpu: &Gpu,
        storage: &EmbeddingStorage,
        batch: &TimBatch,
    ) -> Result<Bags> {
        let bags = batch.bags(&self.spec)?;
        self.upload_bags(gpu, storage, &bags)?;
        Ok(bags)
    }

    /// Uploads bags already in TIM's layout (see the module docs); checks the layout too.
    pub fn upload_bags(
        &mut self,
        gpu: &Gpu,
        storage: &EmbeddingStorage,
        bags: &Bags,
    ) -> Result<()> {
        // Everything is checked before the gather's upload writes the shared batch buffer, so a
        // rejected batch leaves the last good one intact.
        bags.validate(self.features(), &storage.layout)?;
        self.check_sequences(bags)?;
        self.gather.upload(gpu, storage, bags)?;
        let p = self.gather.params();
        self.state.batch_size = p.batch_size;
        self.state.offsets_at = p.offsets_at;
        self.state.indices_at = p.indices_at;
        self.params.write(gpu, &self.state);
        // One workgroup per (set, sample).
        let grid = Grid::Folded(self.state.batch_size * self.state.sets);
        self.forward.set_grid(grid);
        self.backward.set_grid(grid);
        Ok(())
    }

    /// Every bag holds the target (attention only) then at most max_len behaviours, with equal
    /// lengths across the tables of a sample, and the temporal target id is 0.
    fn check_sequences(&self, bags: &Bags) -> Result<()> {
        let (b, k) = (bags.batch_size as usize, self.spec.components());
        let target = self.spec.target_lookups();
        let attention = self.spec.pooling() == TimPooling::Attention;
        let len = |f: usize, s: usize| bags.offsets[f * b + s + 1] - bags.offsets[f * b + s];
        for f in 0..self.features().len() {
            for s in 0..b {
                let (n, n0) = (len(f, s), len(0, s));
                if n < target || n != n0 || n - target > self.spec.max_len {
                    let what = if attention { "the target plus " } else { "" };
                    return Err(Error::kernel(
                        KERNEL,
                        format!(
                            "table {f}, sample {s}: {n} lookups (sample's first table {n0}); need \
                             {what}the same 0..={} behaviours in every table",
                            self.spec.max_len
                        ),
                    ));
                }
                let first = bags.offsets[f * b + s] as usize;
                if attention && f % k == k - 1 && bags.indices[first] != 0 {
                    return Err(Error::kernel(
                        KERNEL,
                        format!("sample {s}: the target's temporal id must be 0"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Records the forward of the last uploaded batch: u and the saved softmax statistics.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.forward.record(gpu, pass);
    }

    /// Records the backward: reads dL/du, writes every lookup's gradient row (behaviours and
    /// target, every table of every set). Needs the forward of the same batch recorded before.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.backward.record(gpu, pass);
    }
}
