//! Launcher of the gather: buffers and bind group built once; per batch one upload and one
//! dispatch for every feature of the storage.
//!
//! The kernel is the device's [`Family::Gather`] variant for the storage's shape class
//! (`w<row floats bucket>-<element>`, e.g. `w64-f32`): see [`GATHER_VARIANTS`] and the entry points
//! in `shaders/embedding_forward.wgsl`.

use super::bags::Bags;
use super::features::FeatureSet;
use super::storage::EmbeddingStorage;
use crate::error::{Error, Result};
use crate::gpu::Variant;
use crate::gpu::{size_class, storage_usage, Access, Family, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// The gather's variants ([`crate::gpu::variants`]); the first is the default path. All sum a
/// bag's lookups in bag order per output vec4 (the same bits), but "wide-workgroup*", which then
/// adds its lookup slots' partial sums in slot order (same function, other rounding).
/// - `"default"` (`tbe_forward`): an invocation per (sample, vec4 column), `WG` per workgroup:
///   coalesced on GPUs. Issue 20's per-bag kernels measured no faster on lavapipe (BENCHMARKS.md),
///   so it stays the default.
/// - `"per-bag"` (`tbe_forward_bag`): a workgroup per bag, TEAM = the widest row's vec4s rounded
///   up to a power of two (at most 64) lanes, every word but the row's vec4 workgroup-uniform.
/// - `"per-bag-8"`: the same with TEAM ≤ 8 lanes, each accumulating COLS ≤ 8 columns per walk of
///   the bag's ids.
/// - `"wide-workgroup"`, `"wide-workgroup-256"` (`tbe_forward_wide`): a workgroup of `WG` lanes per
///   bag split into `WG / TEAM` lookup slots; only for rows of at least 64 floats whose TEAM fits
///   `WG` (widest width4 in 16..=WG): narrower or wider rows use the default.
pub const GATHER_VARIANTS: &[Variant] = &[
    Variant::DEFAULT,
    Variant {
        name: "per-bag",
        subgroups: false,
        constants: &[("TEAM", 64.0)],
    },
    Variant {
        name: "per-bag-8",
        subgroups: false,
        constants: &[("TEAM", 8.0)],
    },
    Variant {
        name: "wide-workgroup",
        subgroups: false,
        constants: &[("WG", 64.0)],
    },
    Variant {
        name: "wide-workgroup-256",
        subgroups: false,
        constants: &[("WG", 256.0)],
    },
];

/// Vec4 columns a lane of the per-bag gather accumulates per walk of a bag (the WGSL
/// `MAX_COLS`); wider rows walk the bag again.
const MAX_COLS: u32 = 8;

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
    /// Bags: features × batch_size (workgroups of the per-bag entry points).
    pub bags: u32,
    /// Padding to 16 bytes.
    pub _pad: u32,
}

const ACCESSES: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::Uniform,
];

/// The gather kernel's description (the default's entry; errors name it).
pub const TBE_FORWARD: Kernel = Kernel::new(shaders::EMBEDDING_FORWARD, "tbe_forward", ACCESSES);
const TBE_FORWARD_BAG: Kernel =
    Kernel::new(shaders::EMBEDDING_FORWARD, "tbe_forward_bag", ACCESSES);
const TBE_FORWARD_WIDE: Kernel =
    Kernel::new(shaders::EMBEDDING_FORWARD, "tbe_forward_wide", ACCESSES);

/// How a gather's invocations map to the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Geometry {
    /// One invocation per (sample, vec4 column), `FORWARD_WG` per workgroup.
    Flat,
    /// One workgroup per bag.
    PerBag,
}

/// What [`choose`] compiles: the variant's name (after the fallback), entry point, override
/// constants and geometry.
type Choice = (&'static str, Kernel, Vec<(&'static str, f64)>, Geometry);

/// The variant the device picks for `storage`, with the documented fallback to the default.
fn choose(gpu: &Gpu, storage: &EmbeddingStorage) -> Choice {
    let layout = &storage.layout;
    let widest4 = layout.tables.iter().map(|t| t.width4).max().unwrap_or(1);
    let class = format!("w{}-{}", size_class(widest4 * 4), layout.element.name());
    let v = gpu.variant(Family::Gather, &class);
    let team = widest4.next_power_of_two();
    let chunks = if layout.chunks() == 1 { 1.0 } else { 4.0 };
    let mut constants = vec![("CHUNKS", chunks)];
    let constant = |name: &str| v.constants.iter().find(|c| c.0 == name).map(|c| c.1 as u32);
    match (v.name, constant("WG"), constant("TEAM")) {
        (name, Some(wg), _)
            if name.starts_with("wide-workgroup") && widest4 >= 16 && team <= wg =>
        {
            constants.extend([("WG", wg as f64), ("TEAM", team as f64)]);
            (v.name, TBE_FORWARD_WIDE, constants, Geometry::PerBag)
        }
        (name, _, Some(most)) if name.starts_with("per-bag") => {
            let team = team.min(most);
            let cols = widest4.div_ceil(team).min(MAX_COLS);
            constants.extend([("TEAM", team as f64), ("COLS", cols as f64)]);
            (v.name, TBE_FORWARD_BAG, constants, Geometry::PerBag)
        }
        _ => {
            constants.push(("WG", FORWARD_WG as f64));
            ("default", TBE_FORWARD, constants, Geometry::Flat)
        }
    }
}

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
    geometry: Geometry,
    variant: &'static str,
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
        let (variant, kernel, constants, geometry) = choose(gpu, storage);
        let pipeline = gpu.pipeline(&storage.kernel(&kernel), &constants)?;
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
            variant,
            geometry,
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

    /// The gather variant this launcher compiled (`"default"` where the device's choice does not
    /// suit the storage's rows, see [`GATHER_VARIANTS`]).
    pub fn variant(&self) -> &'static str {
        self.variant
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
        self.state.bags = bags.batch_size * self.features.len() as u32;
        self.params.write(gpu, &self.state);
        let workgroups = match self.geometry {
            Geometry::Flat => {
                let threads = self.state.batch_size as u64 * self.state.cols4 as u64;
                threads.div_ceil(FORWARD_WG as u64) as u32
            }
            Geometry::PerBag => self.state.bags,
        };
        self.launch.set_grid(Grid::Folded(workgroups));
        Ok(())
    }

    /// Records the gather of the last uploaded batch.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}
