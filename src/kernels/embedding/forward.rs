//! Launcher of `tbe_forward`: buffers and bind group built once; per batch one upload and one
//! dispatch for every feature of the storage.

use super::bags::Bags;
use super::features::FeatureSet;
use super::storage::EmbeddingStorage;
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// The gather's variants ([`crate::gpu::variants`]); the first is the default path.
pub const GATHER_VARIANTS: &[crate::gpu::Variant] = &[crate::gpu::Variant::DEFAULT];

/// Invocations per workgroup of the gather (the WGSL `WG` override).
pub const FORWARD_WG: u32 = 64;

/// Mirrors `ForwardParams` in `embedding_forward.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ForwardParams {
    /// Samples.
    pub batch_size: u32,
    /// Invocations per sample (Σ width4).
    pub cols4: u32,
    /// Meta section starts (words).
    pub features_at: u32,
    /// Column → feature map start.
    pub colmap_at: u32,
    /// MNS base triples start.
    pub mns_at: u32,
    /// Batch section starts (words).
    pub offsets_at: u32,
    /// Indices start.
    pub indices_at: u32,
    /// Weights start, or `u32::MAX`.
    pub weights_at: u32,
    /// log2 vec4s per chunk.
    pub chunk_shift: u32,
    /// vec4s per chunk − 1.
    pub chunk_mask: u32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 2],
}

/// The gather kernel's description.
pub const TBE_FORWARD: Kernel = Kernel::new(
    shaders::EMBEDDING_FORWARD,
    "tbe_forward",
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::Uniform,
    ],
);

/// A prepared table-batched gather for one feature set over one embedding storage.
pub struct TbeForward {
    /// The validated features.
    pub features: FeatureSet,
    launch: Launch,
    pub(crate) meta: wgpu::Buffer,
    pub(crate) batch: wgpu::Buffer,
    out: wgpu::Buffer,
    params: Uniform<ForwardParams>,
    batch_capacity: u64,
    state: ForwardParams,
}

impl TbeForward {
    /// Builds buffers for batches of at most `features.max_batch` samples and `max_lookups` lookups.
    pub fn new(
        gpu: &Gpu,
        storage: &EmbeddingStorage,
        features: FeatureSet,
        max_lookups: u64,
    ) -> Result<Self> {
        let out = gpu.buffer("tbe out", features.out_len * 4, storage_usage());
        Self::with_output(gpu, storage, features, max_lookups, out)
    }

    /// [`new`](Self::new) writing into `out` (at least `features.out_len` floats): the gathers of
    /// one output over several storages (a table split over storage groups) share it.
    pub fn with_output(
        gpu: &Gpu,
        storage: &EmbeddingStorage,
        features: FeatureSet,
        max_lookups: u64,
        out: wgpu::Buffer,
    ) -> Result<Self> {
        if out.size() < features.out_len * 4 {
            return Err(Error::kernel(
                TBE_FORWARD.entry,
                format!(
                    "output buffer of {} bytes; the features need {}",
                    out.size(),
                    features.out_len * 4
                ),
            ));
        }
        if features.max_batch as u64 * features.cols4 as u64 > u32::MAX as u64 {
            return Err(Error::kernel(
                TBE_FORWARD.entry,
                format!(
                    "{} samples × {} vec4 columns exceed 2^32 invocations",
                    features.max_batch, features.cols4
                ),
            ));
        }
        // One chunk (the usual case) compiles without the per-load chunk switch.
        let chunks = if storage.layout.chunks() == 1 {
            1.0
        } else {
            4.0
        };
        let pipeline = gpu.pipeline(
            &storage.kernel(&TBE_FORWARD),
            &[("WG", FORWARD_WG as f64), ("CHUNKS", chunks)],
        )?;
        let meta = gpu.storage_from("tbe meta", &features.meta);
        let batch_capacity = Bags::capacity_words(features.len(), features.max_batch, max_lookups);
        let batch = gpu.buffer("tbe batch", batch_capacity * 4, storage_usage());
        let params = Uniform::new(gpu, "tbe_forward params", &ForwardParams::default());
        let c = &storage.chunks;
        let buffers = [
            &meta,
            &batch,
            &c[0],
            &c[1],
            &c[2],
            &c[3],
            &out,
            params.buffer(),
        ];
        // No batch yet: nothing to gather until the first upload.
        let launch = Launch::new(gpu, &pipeline, &buffers, Grid::Folded(0))?;
        let layout = &storage.layout;
        let state = ForwardParams {
            cols4: features.cols4,
            features_at: features.features_at,
            colmap_at: features.colmap_at,
            mns_at: features.mns_at,
            chunk_shift: layout.chunk_shift,
            chunk_mask: (layout.chunk4() - 1) as u32,
            ..Default::default()
        };
        Ok(TbeForward {
            features,
            launch,
            meta,
            batch,
            out,
            params,
            batch_capacity,
            state,
        })
    }

    /// The params of the last uploaded batch.
    pub fn params(&self) -> &ForwardParams {
        &self.state
    }

    /// The output buffer (`features.out_len` floats).
    pub fn output(&self) -> &wgpu::Buffer {
        &self.out
    }

    /// Validates `bags` against `storage` and writes them (and the params) to the GPU.
    pub fn upload(&mut self, gpu: &Gpu, storage: &EmbeddingStorage, bags: &Bags) -> Result<()> {
        bags.validate(&self.features, &storage.layout)?;
        let (words, [offsets_at, indices_at, weights_at]) = bags.words();
        if words.len() as u64 > self.batch_capacity {
            return Err(Error::kernel(
                TBE_FORWARD.entry,
                format!(
                    "batch needs {} words; buffers were built for {}",
                    words.len(),
                    self.batch_capacity
                ),
            ));
        }
        gpu.queue
            .write_buffer(&self.batch, 0, bytemuck::cast_slice(&words));
        self.state.batch_size = bags.batch_size;
        self.state.offsets_at = offsets_at;
        self.state.indices_at = indices_at;
        self.state.weights_at = weights_at;
        self.params.write(gpu, &self.state);
        let threads = self.state.batch_size as u64 * self.state.cols4 as u64;
        let workgroups = threads.div_ceil(FORWARD_WG as u64) as u32;
        self.launch.set_grid(Grid::Folded(workgroups));
        Ok(())
    }

    /// Records the gather of the last uploaded batch.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}
