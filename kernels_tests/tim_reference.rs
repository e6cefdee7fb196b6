//! The f64 CPU reference of TIM (METHODS.md §1.1) and the GPU harness the TIM tests share: random
//! table sets in an embedding storage, a prepared `Tim`, poisoned runs, and the element-wise
//! comparison.

use wgrec::gpu::{storage_usage, Gpu};
use wgrec::kernels::embedding::{Bags, EmbeddingStorage, FeatureSet, SparseOptimizer, TableSpec};
use wgrec::kernels::run_once;
use wgrec::kernels::tim::{Tim, TimBatch, TimSet, TimSpec};
use wgrec::rng::Rng;

use crate::common::{gpu, poison, random_f32, Tolerance};

/// f32 dot products of up to 3·256 terms, an exp, and softmax-weighted sums of up to 1000 rows:
/// each term carries a few ulps (≈1e-7 relative), the sums add up to ~1e-5 of the magnitude (the
/// f64 sum of |terms|); 1e-4 leaves an order of margin. The absolute part covers outputs whose
/// terms cancel to ~0.
pub const FORWARD: Tolerance = Tolerance {
    relative: 1e-4,
    absolute: 1e-6,
};
/// The backward adds one cancellation (c_i − Σ α_j c_j), whose magnitude is part of the bound.
pub const BACKWARD: Tolerance = Tolerance {
    relative: 2e-4,
    absolute: 1e-6,
};

// ---------------------------------------------------------------- reference (f64)

/// One sample's TIM in f64, with |term| sums for tolerances.
pub struct Sample {
    pub u: Vec<f64>,
    pub u_mag: Vec<f64>,
    pub dv: Vec<f64>,
    pub dv_mag: Vec<f64>,
    pub de: Vec<Vec<f64>>,
    pub de_mag: Vec<Vec<f64>>,
    pub delta: Vec<f64>,
}

/// METHODS.md §1.1 for target v, behaviours e (already summed with their temporal rows) and g.
pub fn tim_sample(v: &[f64], e: &[Vec<f64>], g: &[f64]) -> Sample {
    let d = v.len();
    let scale = 1.0 / (d as f64).sqrt();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let s: Vec<f64> = e.iter().map(|ei| dot(ei, v) * scale).collect();
    let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let ex: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = ex.iter().sum();
    let alpha: Vec<f64> = ex.iter().map(|x| x / sum).collect();
    let w: Vec<f64> = g.iter().zip(v).map(|(a, b)| a * b).collect();
    let c: Vec<f64> = e.iter().map(|ei| dot(ei, &w)).collect();
    let c_mag: Vec<f64> = e
        .iter()
        .map(|ei| ei.iter().zip(&w).map(|(x, y)| (x * y).abs()).sum())
        .collect();
    let mean_c: f64 = alpha.iter().zip(&c).map(|(a, c)| a * c).sum();
    let mean_mag: f64 = alpha.iter().zip(&c_mag).map(|(a, c)| a * c).sum();
    let delta: Vec<f64> = (0..e.len()).map(|i| alpha[i] * (c[i] - mean_c)).collect();
    let delta_mag: Vec<f64> = (0..e.len())
        .map(|i| alpha[i] * (c_mag[i] + mean_mag))
        .collect();
    let mut out = Sample {
        u: vec![0.0; d],
        u_mag: vec![0.0; d],
        dv: vec![0.0; d],
        dv_mag: vec![0.0; d],
        de: vec![vec![0.0; d]; e.len()],
        de_mag: vec![vec![0.0; d]; e.len()],
        delta,
    };
    for j in 0..d {
        let mut a = 0.0;
        let mut a_mag = 0.0;
        let mut q = 0.0;
        let mut q_mag = 0.0;
        for i in 0..e.len() {
            a += alpha[i] * e[i][j];
            a_mag += alpha[i] * e[i][j].abs();
            q += out.delta[i] * e[i][j];
            q_mag += delta_mag[i] * e[i][j].abs();
            out.de[i][j] = alpha[i] * w[j] + out.delta[i] * scale * v[j];
            out.de_mag[i][j] = alpha[i] * w[j].abs() + delta_mag[i] * scale * v[j].abs();
        }
        out.u[j] = a * v[j];
        out.u_mag[j] = a_mag * v[j].abs();
        out.dv[j] = g[j] * a + scale * q;
        out.dv_mag[j] = (g[j] * a_mag).abs() + scale * q_mag;
    }
    out
}

/// A reference value and its magnitude at every written float of u and of the gradient rows.
pub struct Expected {
    pub u: Vec<Option<(f64, f64)>>,
    pub rows: Vec<Option<(f64, f64)>>,
    pub samples: Vec<Sample>, // (m, b) order
}

/// The whole batch: every set and sample, in the GPU's layouts.
pub fn reference(
    tables: &[Vec<f32>],
    d: usize,
    spec: &TimSpec,
    fs: &FeatureSet,
    bags: &Bags,
    g: &[f32],
) -> Expected {
    let (b, k) = (bags.batch_size as usize, spec.components());
    let rows_cap = spec.max_batch as usize;
    let mut want = Expected {
        u: vec![None; spec.sets.len() * rows_cap * d],
        rows: vec![None; fs.out_len as usize],
        samples: vec![],
    };
    for (m, set) in spec.sets.iter().enumerate() {
        let tabs: Vec<usize> = set.tables().collect();
        for s in 0..b {
            let bag = |kk: usize| {
                let f = m * k + kk;
                (
                    bags.offsets[f * b + s] as usize,
                    bags.offsets[f * b] as usize,
                )
            };
            let len = bags.offsets[m * k * b + s + 1] - bags.offsets[m * k * b + s] - 1;
            let row = |p: usize| -> Vec<f64> {
                let mut e = vec![0.0; d];
                for (kk, &t) in tabs.iter().enumerate() {
                    let id = bags.indices[bag(kk).0 + p] as usize;
                    for j in 0..d {
                        e[j] += tables[t][id * d + j] as f64;
                    }
                }
                e
            };
            let v = row(0);
            let e: Vec<Vec<f64>> = (1..=len as usize).map(row).collect();
            let at = (m * rows_cap + s) * d;
            let gs: Vec<f64> = g[at..at + d].iter().map(|&x| x as f64).collect();
            let out = tim_sample(&v, &e, &gs);
            for j in 0..d {
                want.u[at + j] = Some((out.u[j], out.u_mag[j]));
            }
            for kk in 0..k {
                let f = m * k + kk;
                let (start, first) = bag(kk);
                let base = fs.features[f].out_offset as usize;
                for p in 0..=len as usize {
                    let slot = base + (start - first + p) * d;
                    for j in 0..d {
                        want.rows[slot + j] = Some(if p == 0 {
                            (out.dv[j], out.dv_mag[j])
                        } else {
                            (out.de[p - 1][j], out.de_mag[p - 1][j])
                        });
                    }
                }
            }
            want.samples.push(out);
        }
    }
    want
}

// ---------------------------------------------------------------- GPU harness

/// Tables of one problem: per set item (37 rows), category (11), temporal (N_T = 16); width d.
pub struct Case {
    pub gpu: &'static Gpu,
    pub d: u32,
    pub sets: usize,
    pub spec: TimSpec,
    pub storage: EmbeddingStorage,
    pub tables: Vec<Vec<f32>>,
    pub tim: Tim,
    pub u: wgpu::Buffer,
    pub grad_u: wgpu::Buffer,
}

pub const ITEMS: u32 = 37;
pub const CATS: u32 = 11;
pub const BUCKETS: u32 = 16;

impl Case {
    pub fn new(d: u32, sets: usize, max_batch: u32, max_len: u32, seed: u64, small: bool) -> Case {
        Case::with(
            d,
            sets,
            (max_batch, max_len),
            seed,
            small,
            SparseOptimizer::Sgd,
        )
    }

    /// As [`Case::new`] with optimizer state interleaved (rows then strided past their width).
    pub fn with(
        d: u32,
        sets: usize,
        shape: (u32, u32),
        seed: u64,
        small: bool,
        optimizer: SparseOptimizer,
    ) -> Case {
        Case::on(gpu(), d, sets, shape, seed, small, optimizer)
    }

    /// As [`Case::with`] on a device of the caller's (one with a forced variant).
    pub fn on(
        gpu: &'static Gpu,
        d: u32,
        sets: usize,
        (max_batch, max_len): (u32, u32),
        seed: u64,
        small: bool,
        optimizer: SparseOptimizer,
    ) -> Case {
        let mut rng = Rng::new(seed);
        let specs: Vec<TableSpec> = (0..sets)
            .flat_map(|_| [ITEMS, CATS, BUCKETS])
            .map(|rows| TableSpec { rows, width: d })
            .collect();
        // Small chunks: about a third of the group each, so rows and tables straddle chunk boundaries.
        let stride = 16 * (d / 4 + optimizer.state4(d / 4)) as u64;
        let total: u64 = specs.iter().map(|t| t.rows as u64 * stride).sum();
        let chunk = small.then(|| (total / 3).next_power_of_two().max(16));
        let storage = EmbeddingStorage::new(gpu, &specs, optimizer, chunk).expect("storage");
        if small {
            assert!(storage.layout.chunks() > 1, "the case must span chunks");
        }
        let tables: Vec<Vec<f32>> = specs
            .iter()
            .map(|t| random_f32(&mut rng, (t.rows * t.width) as usize))
            .collect();
        for (t, w) in tables.iter().enumerate() {
            storage.write_weights(gpu, t, w).expect("write");
        }
        let spec = TimSpec {
            sets: (0..sets)
                .map(|m| TimSet {
                    semantic: vec![3 * m, 3 * m + 1],
                    temporal: Some(3 * m + 2),
                })
                .collect(),
            max_batch,
            max_len,
        };
        let n = sets as u64 * max_batch as u64 * d as u64 * 4;
        let u = gpu.buffer("u", n, storage_usage());
        let grad_u = gpu.buffer("grad_u", n, storage_usage());
        let tim = Tim::new(gpu, &storage, spec.clone(), &u, &grad_u).expect("tim");
        Case {
            gpu,
            d,
            sets,
            spec,
            storage,
            tables,
            tim,
            u,
            grad_u,
        }
    }

    pub fn random_batch(&self, lengths: &[u32], rng: &mut Rng) -> TimBatch {
        let total: u32 = lengths.iter().sum();
        let ids = |n: u32, rng: &mut Rng| -> Vec<u32> {
            (0..n)
                .flat_map(|_| {
                    [
                        rng.below(ITEMS as u64) as u32,
                        rng.below(CATS as u64) as u32,
                    ]
                })
                .collect()
        };
        TimBatch {
            lengths: lengths.to_vec(),
            target: ids(lengths.len() as u32, rng),
            behaviours: ids(total, rng),
            buckets: (0..total)
                .map(|_| 1 + rng.below(BUCKETS as u64 - 1) as u32)
                .collect(),
        }
    }

    /// Uploads `batch` and a random dL/du, poisons the outputs, runs forward + backward; returns
    /// (bags, g, u, gradient rows).
    pub fn run(&mut self, batch: &TimBatch, rng: &mut Rng) -> (Bags, Vec<f32>, Vec<f32>, Vec<f32>) {
        let gpu = self.gpu;
        let g = random_f32(rng, (self.grad_u.size() / 4) as usize);
        gpu.queue
            .write_buffer(&self.grad_u, 0, bytemuck::cast_slice(&g));
        let bags = self.tim.upload(gpu, &self.storage, batch).expect("upload");
        let (u, rows) = self.forward_backward();
        (bags, g, u, rows)
    }

    pub fn forward_backward(&self) -> (Vec<f32>, Vec<f32>) {
        let gpu = self.gpu;
        poison(gpu, &self.u);
        poison(gpu, self.tim.row_grads());
        run_once(gpu, |pass| {
            self.tim.record_forward(gpu, pass);
            self.tim.record_backward(gpu, pass);
        });
        gpu.sync().expect("gpu");
        let u = gpu.read_all::<f32>(&self.u).expect("read u");
        let rows = gpu
            .read_all::<f32>(self.tim.row_grads())
            .expect("read rows");
        (u, rows)
    }

    pub fn check(&self, bags: &Bags, g: &[f32], u: &[f32], rows: &[f32]) -> Expected {
        let want = reference(
            &self.tables,
            self.d as usize,
            &self.spec,
            self.tim.features(),
            bags,
            g,
        );
        let what = format!("D{} M{} lengths", self.d, self.sets);
        for (i, w) in want.u.iter().enumerate() {
            if let Some((v, mag)) = w {
                FORWARD.check(&format!("{what} u"), i, u[i], *v, *mag);
            }
        }
        for (i, w) in want.rows.iter().enumerate() {
            if let Some((v, mag)) = w {
                BACKWARD.check(&format!("{what} row gradient"), i, rows[i], *v, *mag);
            }
        }
        want
    }
}
