//! The inputs the embedding and TIM benches share with the scaling sweeps: tables filled (or left
//! zeroed, where speed does not depend on the values) and Zipf-distributed ids, uploaded.

use crate::error::Result;
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::embedding::{
    Bags, Element, EmbeddingStorage, FeatureSet, Pooling, SparseOptimizer, TableSpec, TbeForward,
};
use crate::kernels::tim::{Tim, TimBatch, TimSet, TimSpec};
use crate::rng::{Rng, Zipf};

/// The TIM benches' setup: item (100,000 rows), category (1,000) and temporal (64) tables of width
/// `d` (`weights` fills them; none: zeroed), one table set, `batch` sequences of `len` Zipf-
/// distributed items with uniform categories and position buckets (most recent 1), uploaded, and a
/// random dL/du.
pub(crate) fn tim_setup(
    gpu: &Gpu,
    batch: u32,
    len: u32,
    d: u32,
    weights: Option<&mut dyn FnMut(u64) -> Vec<f32>>,
) -> Result<(EmbeddingStorage, Tim)> {
    let (items, cats, buckets) = (100_000u32, 1000u32, 64u32);
    let tables: Vec<TableSpec> = [items, cats, buckets]
        .iter()
        .map(|&rows| TableSpec { rows, width: d })
        .collect();
    let storage = EmbeddingStorage::new(
        gpu,
        &tables,
        SparseOptimizer::RowwiseAdagrad { eps: 1e-8 },
        None,
    )?;
    if let Some(fill) = weights {
        for (table, spec) in tables.iter().enumerate() {
            storage.write_weights(gpu, table, &fill(spec.rows as u64 * d as u64))?;
        }
    }
    let spec = TimSpec {
        sets: vec![TimSet {
            semantic: vec![0, 1],
            temporal: Some(2),
        }],
        max_batch: batch,
        max_len: len,
    };
    let mut rng = Rng::new(7);
    let n = batch as u64 * d as u64;
    let u = gpu.buffer("bench tim u", n * 4, storage_usage());
    let du: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let grad_u = gpu.storage_from("bench tim du", &du);
    let mut tim = Tim::new(gpu, &storage, spec, &u, &grad_u)?;
    let zipf = Zipf::new(items as u64, 1.05);
    let mut ids = |count: u32| -> Vec<u32> {
        (0..count)
            .flat_map(|_| {
                [
                    ((zipf.sample(&mut rng) * 2_654_435_761) % items as u64) as u32,
                    rng.below(cats as u64) as u32,
                ]
            })
            .collect()
    };
    let total = batch * len;
    let tim_batch = TimBatch {
        lengths: vec![len; batch as usize],
        target: ids(batch),
        behaviours: ids(total),
        buckets: (0..total)
            .map(|i| (len - i % len).min(buckets - 1))
            .collect(),
    };
    tim.upload(gpu, &storage, &tim_batch)?;
    Ok((storage, tim))
}

/// The embedding benches' setup: `t` tables of `rows × d` stored as `element` (row-wise Adagrad
/// state), one summed
/// feature per table, Zipf(1.05) bags of `bag` ids scattered over the rows, uploaded. `weights`
/// fills the tables (none: zeroed — a gather's speed does not depend on the values).
#[allow(clippy::type_complexity)]
pub(crate) fn gather_setup(
    gpu: &Gpu,
    t: u32,
    rows: u32,
    d: u32,
    batch: u32,
    (bag, element): (u32, Element),
    weights: Option<&mut dyn FnMut(u64) -> Vec<f32>>,
) -> Result<(EmbeddingStorage, FeatureSet, TbeForward, Bags)> {
    let tables = vec![TableSpec { rows, width: d }; t as usize];
    let optimizer = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };
    let storage = EmbeddingStorage::with_element(gpu, &tables, optimizer, element, None)?;
    if let Some(fill) = weights {
        for table in 0..t as usize {
            storage.write_weights(gpu, table, &fill(rows as u64 * d as u64))?;
        }
    }
    let features: Vec<_> = (0..t as usize)
        .map(|table| (table, Pooling::Sum, vec![]))
        .collect();
    let fs = FeatureSet::concatenated(&storage.layout, &features, batch, 1)?;
    let lookups = batch as u64 * t as u64 * bag as u64;
    let mut forward = TbeForward::new(gpu, &storage, fs.clone(), lookups)?;
    let zipf = Zipf::new(rows as u64, 1.05);
    let mut rng = Rng::new(6);
    let bags = Bags {
        batch_size: batch,
        offsets: (0..=batch * t).map(|i| i * bag).collect(),
        indices: (0..lookups)
            .map(|_| ((zipf.sample(&mut rng) * 2_654_435_761) % rows as u64) as u32)
            .collect(),
        weights: None,
    };
    forward.upload(gpu, &storage, &bags)?;
    Ok((storage, fs, forward, bags))
}
