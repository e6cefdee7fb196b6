//! The f64 CPU reference of TIM's mean variant (`pooling = "mean"`, the TIM ablation; docs/tim.md)
//! and its GPU harness: per set an item (37 rows) and a category (11 rows) table, no temporal
//! table, and a `Tim` over them.

use wgrec::gpu::storage_usage;
use wgrec::kernels::embedding::{Bags, EmbeddingStorage, FeatureSet, SparseOptimizer, TableSpec};
use wgrec::kernels::run_once;
use wgrec::kernels::tim::{Tim, TimBatch, TimSet, TimSpec};
use wgrec::rng::Rng;

use crate::common::{gpu, poison, random_f32, Tolerance};
use crate::tim_reference::{CATS, ITEMS};

/// u sums up to 1000 rows of up to two f32 terms in f32, in a different order than the f64
/// reference: each addition rounds at ≈6e-8 of the running |sum|, so ~1000 of them stay under
/// 1e-4 of the f64 sum of |terms| with an order to spare. The absolute part covers sums that
/// cancel to ~0. The division by n is one more rounding.
pub const MEAN_FORWARD: Tolerance = Tolerance {
    relative: 1e-4,
    absolute: 1e-6,
};
/// g / n is one f32 division of an exact input: correctly rounded, so 1 ulp (≈1.2e-7) relative;
/// 1e-6 leaves a margin and still catches a wrong n (off by one behaviour is ≥ 1e-3 relative).
pub const MEAN_BACKWARD: Tolerance = Tolerance {
    relative: 1e-6,
    absolute: 0.0,
};

/// One sample's mean pooling in f64: u = (1/n) Σ_i e_i and |·| of its terms; n = 0 gives 0.
pub fn mean_sample(e: &[Vec<f64>], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut u = vec![0.0; d];
    let mut mag = vec![0.0; d];
    let n = e.len() as f64;
    for ei in e {
        for j in 0..d {
            u[j] += ei[j] / n;
            mag[j] += ei[j].abs() / n;
        }
    }
    (u, mag)
}

/// A reference value and its magnitude at every float the kernels must write: u `[M, rows_cap,
/// D]` and the gradient rows (one per behaviour lookup, g / n); `None` where nothing is written.
pub struct MeanExpected {
    pub u: Vec<Option<(f64, f64)>>,
    pub rows: Vec<Option<(f64, f64)>>,
}

/// The whole batch in the GPU's layouts. Bags are `[behaviour ids…]`, no target.
pub fn mean_reference(
    tables: &[Vec<f32>],
    d: usize,
    spec: &TimSpec,
    fs: &FeatureSet,
    bags: &Bags,
    g: &[f32],
) -> MeanExpected {
    let (b, k) = (bags.batch_size as usize, spec.components());
    let rows_cap = spec.max_batch as usize;
    let mut want = MeanExpected {
        u: vec![None; spec.sets.len() * rows_cap * d],
        rows: vec![None; fs.out_len as usize],
    };
    for (m, set) in spec.sets.iter().enumerate() {
        let tabs: Vec<usize> = set.tables().collect();
        for s in 0..b {
            let start = |kk: usize| bags.offsets[(m * k + kk) * b + s] as usize;
            let len = bags.offsets[m * k * b + s + 1] as usize - start(0);
            let e: Vec<Vec<f64>> = (0..len)
                .map(|p| {
                    let mut e = vec![0.0; d];
                    for (kk, &t) in tabs.iter().enumerate() {
                        let id = bags.indices[start(kk) + p] as usize;
                        for j in 0..d {
                            e[j] += tables[t][id * d + j] as f64;
                        }
                    }
                    e
                })
                .collect();
            let (u, mag) = mean_sample(&e, d);
            let at = (m * rows_cap + s) * d;
            for j in 0..d {
                want.u[at + j] = Some((u[j], mag[j]));
            }
            for kk in 0..k {
                let f = m * k + kk;
                let first = bags.offsets[f * b] as usize;
                let base = fs.features[f].out_offset as usize;
                for p in 0..len {
                    let slot = base + (start(kk) - first + p) * d;
                    for j in 0..d {
                        let v = g[at + j] as f64 / len as f64;
                        want.rows[slot + j] = Some((v, v.abs()));
                    }
                }
            }
        }
    }
    want
}

/// A mean-pooled problem on the GPU.
pub struct MeanCase {
    pub d: u32,
    pub spec: TimSpec,
    pub storage: EmbeddingStorage,
    pub tables: Vec<Vec<f32>>,
    pub tim: Tim,
    pub u: wgpu::Buffer,
    pub grad_u: wgpu::Buffer,
}

impl MeanCase {
    /// `sets` × (item, category) tables of width `d`, split over several chunks when `small`.
    pub fn new(
        d: u32,
        sets: usize,
        (max_batch, max_len): (u32, u32),
        seed: u64,
        small: bool,
        optimizer: SparseOptimizer,
    ) -> MeanCase {
        let gpu = gpu();
        let mut rng = Rng::new(seed);
        let specs: Vec<TableSpec> = (0..sets)
            .flat_map(|_| [ITEMS, CATS])
            .map(|rows| TableSpec { rows, width: d })
            .collect();
        let stride = 16 * (d / 4 + optimizer.state4(d / 4)) as u64;
        let total: u64 = specs.iter().map(|t| t.rows as u64 * stride).sum();
        let chunk = small.then(|| (total / 3).next_power_of_two().max(16));
        let storage = EmbeddingStorage::new(gpu, &specs, optimizer, chunk).expect("storage");
        assert!(
            !small || storage.layout.chunks() > 1,
            "the case must span chunks"
        );
        let tables: Vec<Vec<f32>> = (specs.iter())
            .map(|t| random_f32(&mut rng, (t.rows * t.width) as usize))
            .collect();
        for (t, w) in tables.iter().enumerate() {
            storage.write_weights(gpu, t, w).expect("write");
        }
        let spec = TimSpec {
            sets: (0..sets)
                .map(|m| TimSet {
                    semantic: vec![2 * m, 2 * m + 1],
                    temporal: None,
                })
                .collect(),
            max_batch,
            max_len,
        };
        let n = sets as u64 * max_batch as u64 * d as u64 * 4;
        let u = gpu.buffer("u", n, storage_usage());
        let grad_u = gpu.buffer("grad_u", n, storage_usage());
        let tim = Tim::new(gpu, &storage, spec.clone(), &u, &grad_u).expect("mean tim");
        MeanCase {
            d,
            spec,
            storage,
            tables,
            tim,
            u,
            grad_u,
        }
    }

    /// Random item and category ids; no targets and no buckets (mean pooling reads neither).
    pub fn random_batch(lengths: &[u32], rng: &mut Rng) -> TimBatch {
        let total: u32 = lengths.iter().sum();
        TimBatch {
            lengths: lengths.to_vec(),
            behaviours: (0..total)
                .flat_map(|_| {
                    [
                        rng.below(ITEMS as u64) as u32,
                        rng.below(CATS as u64) as u32,
                    ]
                })
                .collect(),
            ..TimBatch::default()
        }
    }

    /// Uploads `batch` and a random dL/du, poisons the outputs, runs forward + backward; returns
    /// (bags, g, u, gradient rows).
    pub fn run(&mut self, batch: &TimBatch, rng: &mut Rng) -> (Bags, Vec<f32>, Vec<f32>, Vec<f32>) {
        let gpu = gpu();
        let g = random_f32(rng, (self.grad_u.size() / 4) as usize);
        gpu.queue
            .write_buffer(&self.grad_u, 0, bytemuck::cast_slice(&g));
        let bags = self.tim.upload(gpu, &self.storage, batch).expect("upload");
        let (u, rows) = self.forward_backward();
        (bags, g, u, rows)
    }

    pub fn forward_backward(&self) -> (Vec<f32>, Vec<f32>) {
        let gpu = gpu();
        poison(gpu, &self.u);
        poison(gpu, self.tim.row_grads());
        run_once(gpu, |pass| {
            self.tim.record_forward(gpu, pass);
            self.tim.record_backward(gpu, pass);
        });
        gpu.sync().expect("gpu");
        let u = gpu.read_all::<f32>(&self.u).expect("read u");
        let rows = (gpu.read_all::<f32>(self.tim.row_grads())).expect("read rows");
        (u, rows)
    }

    /// Every written float against the reference; every other float of the outputs still NaN.
    pub fn check(&self, bags: &Bags, g: &[f32], u: &[f32], rows: &[f32]) {
        let fs = self.tim.features();
        let want = mean_reference(&self.tables, self.d as usize, &self.spec, fs, bags, g);
        let what = format!("mean D{} M{}", self.d, self.spec.sets.len());
        for (got, want, tol, name) in [
            (u, &want.u, MEAN_FORWARD, "u"),
            (rows, &want.rows, MEAN_BACKWARD, "row gradient"),
        ] {
            for (i, w) in want.iter().enumerate() {
                match w {
                    Some((v, mag)) => tol.check(&format!("{what} {name}"), i, got[i], *v, *mag),
                    None => assert!(got[i].is_nan(), "{what} {name} [{i}] written: {}", got[i]),
                }
            }
        }
    }
}
