//! The scaling bench's rows sweep: one table of R × 64 (row-wise Adagrad state beside each row)
//! stored as f32 or f16, grown past the device's storage-binding limit (chunks bound side by side)
//! and past one storage group ([`MAX_CHUNKS`] chunks: 512 MiB on lavapipe's 128 MiB bindings).
//!
//! A table larger than one group is split by rows over as many storages as it needs, each holding
//! as many whole rows as one group holds ([`storage_capacity4`] / [`row_stride4`], as the model's
//! packer splits a matrix), the last the rest. Every storage gets its own gather into one shared
//! output (the first writes, the later ones accumulate: [`FeatureSet::accumulate`]) and its own
//! fused update with its own plan (only its rows, as local rows: [`SparseUpdatePlan::build`]).
//! A timed point records all of a row count's dispatches in one pass: the time of the whole split
//! gather or update. A table that fits one group is one storage built exactly as before groups.
//!
//! On lavapipe (128 MiB bindings; 272-byte f32 rows, 136-byte f16 rows with the Adagrad unit) the
//! f32 points 10,000 … 1,500,000 and the f16 points 20,000 … 3,000,000 use one group, 3,000,000 f32
//! / 6,000,000 f16 rows two, 5,000,000 f32 / 10,000,000 f16 rows (1.36 GB) three; each point
//! records its `groups`.

use std::ops::Range;

use super::scaling::{ScalingPoint, MAX_TABLE_BYTES};
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::embedding::{
    row_stride4, Bags, Element, EmbeddingStorage, FeatureSet, Pooling, SparseOptimizer, SparseStep,
    SparseUpdatePlan, TableSpec, TbeForward, TbeUpdate,
};
use crate::model::{pack, Owner, Packing, TablePlan};
use crate::rng::{Rng, Zipf};

/// Storage groups the rows sweep spreads one table over at most.
pub const MAX_GROUPS: u32 = 3;

/// The optimizer of the rows sweep (its state sits beside each row).
const ADAGRAD: SparseOptimizer = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };

/// The shape of one rows-sweep point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsShape {
    /// Rows of the table.
    pub rows: u32,
    /// Floats per row.
    pub width: u32,
    /// Samples per batch.
    pub batch: u32,
    /// Lookups per bag (one bag per sample).
    pub bag: u32,
    /// How the rows are stored.
    pub element: Element,
}

/// Bytes of one row of `d` weights stored as `element` with its row-wise Adagrad state (one unit:
/// a vec4 in f32, 8 bytes in f16).
pub(crate) fn row_bytes(d: u32, element: Element) -> u64 {
    row_stride4(d, ADAGRAD, element) as u64 * element.unit_bytes()
}

/// The row ranges of a table of `rows` × `d` stored as `element`, one per storage group of
/// chunks of `chunk_bytes`, as the model's packer ([`crate::model::pack`]) splits a table that
/// is alone in its model: whole groups of rows in order, the last the rest (one range when the
/// table fits one group); an error when one row is larger than a group.
pub fn row_parts(rows: u32, d: u32, element: Element, chunk_bytes: u64) -> Result<Vec<Range<u32>>> {
    let table = TablePlan {
        name: format!("a {rows} × {d} {} table", element.name()),
        rows,
        width: d,
        element,
        owner: Owner::Shared,
        table: 0,
        feature: 0,
        l2: None,
    };
    let packing = Packing {
        optimizer: ADAGRAD,
        chunk_bytes,
    };
    let slabs = pack(std::slice::from_ref(&table), &[], packing)?;
    Ok(slabs
        .into_iter()
        .flat_map(|s| s.parts.into_iter().map(|p| p.rows))
        .collect())
}

/// Table sizes of the rows sweep with chunks of `chunk_bytes`: a fixed list (doubled for f16),
/// cut where the storage (rows of `d` weights and their state) would pass [`MAX_TABLE_BYTES`] or
/// [`MAX_GROUPS`] storage groups.
pub fn rows_sweep(chunk_bytes: u64, d: u32, element: Element, quick: bool) -> Vec<u32> {
    let candidates: &[u32] = if quick {
        &[10_000, 100_000, 600_000]
    } else {
        &[
            10_000, 30_000, 100_000, 300_000, 1_000_000, 1_500_000, 3_000_000, 5_000_000,
        ]
    };
    // f16 rows are half the bytes: twice the rows gives the f32 sweep's table sizes, so both
    // curves cross the binding limit and the group boundaries at the same points.
    let scale = 4 / element.bytes() as u32;
    let groups =
        |r: u32| row_parts(r, d, element, chunk_bytes).map_or(u32::MAX, |p| p.len() as u32);
    candidates
        .iter()
        .map(|&r| r * scale)
        .filter(|&r| r as u64 * row_bytes(d, element) <= MAX_TABLE_BYTES)
        .filter(|&r| groups(r) <= MAX_GROUPS)
        .collect()
}

/// One storage's share of a split table and its two kernels.
struct Share {
    storage: EmbeddingStorage,
    forward: TbeForward,
    update: TbeUpdate,
}

/// One table split by rows over storage groups, gathered into one output and updated per part
/// (module docs).
pub struct SplitTable {
    shares: Vec<Share>,
    out: wgpu::Buffer,
}

impl SplitTable {
    /// Builds the storages (chunks of `chunk_bytes`, or the device's largest binding), the Zipf
    /// bags (the same ids however the table is split), the gradient and every part's plan, all
    /// uploaded. `weights` (rows × width) fills the table; none leaves it zeroed.
    pub fn new(
        gpu: &Gpu,
        shape: RowsShape,
        chunk_bytes: Option<u64>,
        weights: Option<&[f32]>,
    ) -> Result<Self> {
        if shape.rows == 0 || shape.batch == 0 || shape.bag == 0 {
            return Err(Error::Layout(format!(
                "a rows-sweep point needs rows, a batch and bags: {} rows, batch {}, bags of {}",
                shape.rows, shape.batch, shape.bag
            )));
        }
        let device =
            (gpu.limits().max_storage_buffer_binding_size).min(gpu.limits().max_buffer_size);
        let chunk = chunk_bytes.unwrap_or(device).min(device);
        let parts = row_parts(shape.rows, shape.width, shape.element, chunk)?;
        let out_len = shape.batch as u64 * shape.width as u64;
        let out = gpu.buffer("scaling out", out_len * 4, storage_usage());
        let bags = zipf_bags(shape);
        let mut rng = Rng::new(6);
        let grad: Vec<f32> = (0..out_len).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let grad = gpu.storage_from("scaling grad", &grad);
        let mut shares = Vec::with_capacity(parts.len());
        for (k, rows) in parts.iter().enumerate() {
            let part = Part {
                rows: rows.clone(),
                accumulate: k > 0,
                chunk,
            };
            shares.push(share(gpu, shape, part, (&out, &grad, &bags), weights)?);
        }
        Ok(SplitTable { shares, out })
    }

    /// Storage groups the table spans.
    pub fn groups(&self) -> u32 {
        self.shares.len() as u32
    }

    /// The shared output (batch × width floats).
    pub fn output(&self) -> &wgpu::Buffer {
        &self.out
    }

    /// Records every part's gather.
    pub fn record_gather(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.shares.iter().for_each(|s| s.forward.record(gpu, pass));
    }

    /// Records every part's fused update.
    pub fn record_update(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.shares.iter().for_each(|s| s.update.record(gpu, pass));
    }

    /// The whole table's weights (rows × width), part after part.
    pub fn read_weights(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let mut all = Vec::new();
        for s in &self.shares {
            all.extend(s.storage.read_weights(gpu, 0)?);
        }
        Ok(all)
    }
}

/// Rows `rows` of the whole table, in chunks of `chunk` bytes; `accumulate` for every part after
/// the first.
struct Part {
    rows: Range<u32>,
    accumulate: bool,
    chunk: u64,
}

/// Builds one part's storage, gather into `out` and update (gradient `grad`), uploads `bags`.
fn share(
    gpu: &Gpu,
    shape: RowsShape,
    part: Part,
    (out, grad, bags): (&wgpu::Buffer, &wgpu::Buffer, &Bags),
    weights: Option<&[f32]>,
) -> Result<Share> {
    let n = part.rows.len() as u32;
    let spec = [TableSpec::whole(n, shape.width)];
    let mut storage =
        EmbeddingStorage::with_element(gpu, &spec, ADAGRAD, shape.element, Some(part.chunk))?;
    storage.layout.set_part(0, part.rows.start, shape.rows)?;
    if let Some(w) = weights {
        let d = shape.width as usize;
        let slice = w
            .get(part.rows.start as usize * d..part.rows.end as usize * d)
            .ok_or_else(|| Error::Layout(format!("weights hold {} floats", w.len())))?;
        storage.write_weights(gpu, 0, slice)?;
    }
    let fs = FeatureSet::concatenated(
        &storage.layout,
        &[(0, Pooling::Sum, vec![])],
        shape.batch,
        1,
    )?;
    let fs = if part.accumulate {
        fs.accumulate(&[0])?
    } else {
        fs
    };
    let lookups = shape.batch as u64 * shape.bag as u64;
    let mut forward = TbeForward::with_output(gpu, &storage, fs, lookups, out.clone())?;
    forward.upload(gpu, &storage, bags)?;
    let mut update = TbeUpdate::new(gpu, &storage, &forward, grad, lookups)?;
    let plan = SparseUpdatePlan::build(&forward.features, bags);
    let step = SparseStep {
        lr: 0.01,
        weight_decay: 0.0,
        step: 1,
    };
    update.upload(gpu, &forward, &plan, step)?;
    Ok(Share {
        storage,
        forward,
        update,
    })
}

/// One summed bag of `bag` Zipf(1.05) ids per sample, scattered over the rows: the ids
/// [`gather_setup`](super::gather_setup) draws for one table.
fn zipf_bags(shape: RowsShape) -> Bags {
    let lookups = shape.batch as u64 * shape.bag as u64;
    let zipf = Zipf::new(shape.rows as u64, 1.05);
    let mut rng = Rng::new(6);
    Bags {
        batch_size: shape.batch,
        offsets: (0..=shape.batch).map(|i| i * shape.bag).collect(),
        indices: (0..lookups)
            .map(|_| ((zipf.sample(&mut rng) * 2_654_435_761) % shape.rows as u64) as u32)
            .collect(),
        weights: None,
    }
}

/// Times the split gather and update of `shape` at x = rows: (gather point, update point), FBGEMM's
/// effective bytes (rows as stored, outputs and gradients in f32) over the whole split dispatch.
pub(super) fn rows_point(
    runner: &super::Runner,
    shape: RowsShape,
    copy_gbs: f64,
) -> Result<(ScalingPoint, ScalingPoint)> {
    let gpu = runner.gpu;
    let before = gpu.allocated_bytes();
    // Zeroed weights: a gather's speed does not depend on the values.
    let table = SplitTable::new(gpu, shape, None, None)?;
    let allocated = gpu.allocated_bytes() - before;
    let point = |seconds: f64, bytes: u64| {
        let gbs = bytes as f64 / seconds / 1e9;
        ScalingPoint {
            x: shape.rows as f64,
            median_ms: seconds * 1e3,
            gb_per_s: Some(gbs),
            of_copy: Some(gbs / copy_gbs),
            allocated_bytes: allocated,
            groups: table.groups(),
        }
    };
    let (b, bag) = (shape.batch as u64, shape.bag as u64);
    let row = shape.width as u64 * shape.element.bytes();
    let out = shape.width as u64 * 4;
    let s = runner.time(&|p| table.record_gather(gpu, p))?;
    let g = point(s, b * bag * row + b * out);
    let s = runner.time(&|p| table.record_update(gpu, p))?;
    let u = point(s, b * out + 2 * b * bag * row);
    Ok((g, u))
}

#[cfg(test)]
mod tests;
