//! TIM (`tim_forward`, `tim_backward`) against an f64 CPU reference and PyTorch autograd; the
//! reference's backward against finite differences; gradients applied through the sparse update plan.

use wgrec::gpu::storage_usage;
use wgrec::kernels::embedding::{
    Bags, EmbeddingStorage, FeatureSet, SparseOptimizer, SparseStep, SparseUpdatePlan, TableSpec,
    TbeUpdate,
};
use wgrec::kernels::run_once;
use wgrec::kernels::tim::{TemporalBuckets, Tim, TimBatch, TimParams, TimSet, TimSpec};
use wgrec::rng::Rng;
use wgrec::shaders;

use crate::common::{check_gradient, download, gpu, poison, random_f32, upload, Tolerance};
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};

/// f32 dot products of up to 3·256 terms, an exp, and softmax-weighted sums of up to 1000 rows:
/// each term carries a few ulps (≈1e-7 relative), the sums add up to ~1e-5 of the magnitude (the
/// f64 sum of |terms|); 1e-4 leaves an order of margin. The absolute part covers outputs whose
/// terms cancel to ~0.
const FORWARD: Tolerance = Tolerance {
    relative: 1e-4,
    absolute: 1e-6,
};
/// The backward adds one cancellation (c_i − Σ α_j c_j), whose magnitude is part of the bound.
const BACKWARD: Tolerance = Tolerance {
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
        let tabs: Vec<usize> = set
            .semantic
            .iter()
            .chain([&set.temporal])
            .copied()
            .collect();
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
        (max_batch, max_len): (u32, u32),
        seed: u64,
        small: bool,
        optimizer: SparseOptimizer,
    ) -> Case {
        let gpu = gpu();
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
                    temporal: 3 * m + 2,
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

// ---------------------------------------------------------------- temporal buckets

#[test]
fn position_buckets_count_back_from_the_most_recent_behaviour() {
    let p = TemporalBuckets::Position { buckets: 431 };
    assert_eq!(p.assign(0, &[5, 6, 7]).unwrap(), vec![3, 2, 1]);
    assert_eq!(p.assign(0, &[]).unwrap(), Vec::<u32>::new());
    let clamped = TemporalBuckets::Position { buckets: 3 };
    assert_eq!(clamped.assign(0, &[0; 4]).unwrap(), vec![2, 2, 2, 1]);
}

#[test]
fn log_time_buckets_follow_data_md() {
    let t = TemporalBuckets::LogTime {
        buckets: 64,
        unit: 3600.0,
    };
    // Δt = 0 → 1 + ⌊log2 1⌋ = 1; Δt = 1 h → 1 + ⌊log2 2⌋ = 2; 3 h − 1 s → 1 + ⌊log2 (4 − ε)⌋ = 2;
    // 3 h → 3; 7 h → 4; 1 day → 1 + ⌊log2 25⌋ = 5; 2^64 h → 1 + 52 = 53; with a 1 s unit 2^64 s
    // would be 65 and clamps to 63.
    let now = 1_000_000_000i64;
    let times = [
        now,
        now - 3600,
        now - 3 * 3600 + 1,
        now - 3 * 3600,
        now - 7 * 3600,
    ];
    assert_eq!(t.assign(now, &times).unwrap(), vec![1, 2, 2, 3, 4]);
    assert_eq!(t.assign(now, &[now - 86_400]).unwrap(), vec![5]);
    assert_eq!(t.assign(i64::MAX, &[i64::MIN]).unwrap(), vec![53]);
    let seconds = TemporalBuckets::LogTime {
        buckets: 64,
        unit: 1.0,
    };
    assert_eq!(seconds.assign(i64::MAX, &[i64::MIN]).unwrap(), vec![63]);
    for t in [
        TemporalBuckets::LogTime {
            buckets: 8,
            unit: 1.0,
        },
        TemporalBuckets::Position { buckets: 8 },
    ] {
        let ids = t.assign(100, &[0, 50, 99, 100]).unwrap();
        assert!(ids.iter().all(|&f| (1..8).contains(&f)), "{ids:?}");
    }
}

#[test]
fn bucket_errors_for_future_behaviours_and_bad_settings() {
    let t = TemporalBuckets::LogTime {
        buckets: 64,
        unit: 3600.0,
    };
    assert!(t.assign(10, &[5, 11]).is_err());
    let zero_unit = TemporalBuckets::LogTime {
        buckets: 64,
        unit: 0.0,
    };
    assert!(zero_unit.assign(10, &[5]).is_err());
    assert!(TemporalBuckets::Position { buckets: 1 }
        .assign(0, &[0])
        .is_err());
}

// ---------------------------------------------------------------- reference checks

fn random_sample(rng: &mut Rng, d: usize, len: usize) -> (Vec<f64>, Vec<Vec<f64>>, Vec<f64>) {
    let mut f = |n| -> Vec<f64> { random_f32(rng, n).into_iter().map(f64::from).collect() };
    let v = f(d);
    let e = (0..len).map(|_| f(d)).collect();
    let g = f(d);
    (v, e, g)
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(41);
    for (d, len) in [(4, 1), (8, 7), (12, 3)] {
        let (v, e, g) = random_sample(&mut rng, d, len);
        let out = tim_sample(&v, &e, &g);
        let mut x = v.clone();
        e.iter().for_each(|ei| x.extend(ei));
        let mut analytic = out.dv.clone();
        out.de.iter().for_each(|di| analytic.extend(di));
        check_gradient(&format!("tim D{d} L{len}"), &x, &analytic, |x| {
            let e: Vec<Vec<f64>> = x[d..].chunks(d).map(|c| c.to_vec()).collect();
            let u = tim_sample(&x[..d], &e, &g).u;
            u.iter().zip(&g).map(|(a, b)| a * b).sum()
        });
    }
}

#[test]
fn reference_deltas_sum_to_zero() {
    let mut rng = Rng::new(42);
    for len in [1, 2, 50, 1000] {
        let (v, e, g) = random_sample(&mut rng, 16, len);
        let out = tim_sample(&v, &e, &g);
        let sum: f64 = out.delta.iter().sum();
        let mag: f64 = out.delta.iter().map(|x| x.abs()).sum();
        assert!(sum.abs() <= 1e-12 * (1.0 + mag), "L{len}: Σδ = {sum}");
    }
}

// ---------------------------------------------------------------- GPU against the reference

#[test]
fn params_struct_matches_its_wgsl_layout() {
    assert_layout(
        &shaders::TIM,
        "TimParams",
        std::mem::size_of::<TimParams>(),
        offsets!(TimParams: batch_size, sets, components, width4, offsets_at, indices_at,
                 chunk_shift, chunk_mask, rows_cap, scale, features),
    );
}

/// Every length of the issue (0, 1, 7, 50, 1000) in one batch, beside a few random ones.
#[test]
fn forward_and_backward_match_reference_for_every_length_width_and_set_count() {
    let mut rng = Rng::new(43);
    for d in [8, 16, 64] {
        for sets in [1, 3] {
            let mut case = Case::new(d, sets, 7, 1000, 100 + d as u64, false);
            let lengths = [50, 0, 1000, 1, 7, 1 + rng.below(30) as u32];
            let batch = case.random_batch(&lengths, &mut rng);
            let (bags, g, u, rows) = case.run(&batch, &mut rng);
            case.check(&bags, &g, &u, &rows);
        }
    }
}

#[test]
fn forward_and_backward_match_reference_across_chunks_wide_rows_and_optimizer_state() {
    let mut rng = Rng::new(44);
    let adam = SparseOptimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let adagrad = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };
    for (d, sets, small, opt) in [
        (16, 3, true, adam),
        (256, 1, false, adagrad),
        (20, 2, false, SparseOptimizer::Sgd),
        (12, 2, true, adagrad),
    ] {
        let mut case = Case::with(d, sets, (5, 300), 200 + d as u64, small, opt);
        let batch = case.random_batch(&[3, 300, 0, 65, 64], &mut rng);
        let (bags, g, u, rows) = case.run(&batch, &mut rng);
        case.check(&bags, &g, &u, &rows);
    }
}

/// Σ_i dL/de~_i = g ⊙ v~ Σ α_i + (Σ_i δ_i / √D) v~ = g ⊙ v~ exactly when Σ δ = 0.
#[test]
fn gpu_behaviour_gradients_sum_to_g_times_target_so_deltas_sum_to_zero() {
    let mut rng = Rng::new(45);
    let mut case = Case::new(16, 2, 4, 200, 300, false);
    let batch = case.random_batch(&[200, 13, 1, 2], &mut rng);
    let (bags, g, u, rows) = case.run(&batch, &mut rng);
    let want = case.check(&bags, &g, &u, &rows);
    let (d, fs, b) = (16usize, case.tim.features(), 4usize);
    for m in 0..2 {
        for s in 0..b {
            let f = m * 3; // item table of set m
            let start = (bags.offsets[f * b + s] - bags.offsets[f * b]) as usize;
            let len = batch.lengths[s] as usize;
            let at = fs.features[f].out_offset as usize;
            let v_tilde = &want.samples[m * b + s];
            for j in 0..d {
                let sum: f64 = (1..=len)
                    .map(|p| rows[at + (start + p) * d + j] as f64)
                    .sum();
                // g ⊙ v~ from the reference's own dv/de: Σ de = g v~ when Σδ = 0.
                let gv: f64 = v_tilde.de.iter().map(|r| r[j]).sum();
                let mag: f64 = v_tilde.de_mag.iter().map(|r| r[j]).sum();
                BACKWARD.check("Σ de", j, sum as f32, gv, mag);
                let gvt = g[(m * 4 + s) * d + j] as f64 * target_col(&case, &bags, m, s, j);
                assert!(
                    (gv - gvt).abs() <= 1e-9 * (1.0 + mag),
                    "Σδ ≠ 0: {gv} vs {gvt}"
                );
            }
        }
    }
}

fn target_col(case: &Case, bags: &Bags, m: usize, s: usize, j: usize) -> f64 {
    let b = bags.batch_size as usize;
    (0..3)
        .map(|k| {
            let f = m * 3 + k;
            let id = bags.indices[bags.offsets[f * b + s] as usize] as usize;
            case.tables[f][id * case.d as usize + j] as f64
        })
        .sum()
}

#[test]
fn empty_batch_uploads_and_records_nothing() {
    let gpu = gpu();
    let mut case = Case::new(8, 2, 3, 10, 450, false);
    let empty = TimBatch::default();
    case.tim
        .upload(gpu, &case.storage, &empty)
        .expect("empty batch");
    // (gpu.dispatches() is shared with the tests running beside this one, so the outputs tell.)
    let (u, rows) = case.forward_backward();
    assert!(u.iter().all(|x| x.is_nan()), "u untouched");
    assert!(rows.iter().all(|x| x.is_nan()), "gradient rows untouched");
}

#[test]
fn fully_masked_sequences_give_zero_output_and_zero_gradients() {
    let mut rng = Rng::new(46);
    let mut case = Case::new(8, 3, 3, 10, 400, false);
    let batch = case.random_batch(&[0, 0, 0], &mut rng);
    let (bags, g, u, rows) = case.run(&batch, &mut rng);
    case.check(&bags, &g, &u, &rows);
    assert!(u[..3 * 3 * 8].iter().all(|&x| x == 0.0), "u = 0 for L = 0");
    let fs = case.tim.features();
    for f in 0..9 {
        let at = fs.features[f].out_offset as usize;
        assert!(
            rows[at..at + 3 * 8].iter().all(|&x| x == 0.0),
            "target rows"
        );
    }
}

/// L = 1: α = 1, δ = 0, so u = e~ ⊙ v~, dL/de~ = g ⊙ v~, dL/dv~ = g ⊙ e~.
#[test]
fn one_element_sequences_reduce_to_a_product() {
    let mut rng = Rng::new(47);
    let mut case = Case::new(16, 1, 2, 1, 500, false);
    let batch = case.random_batch(&[1, 1], &mut rng);
    let (bags, g, u, rows) = case.run(&batch, &mut rng);
    let want = case.check(&bags, &g, &u, &rows);
    for (s, sample) in want.samples.iter().enumerate() {
        for j in 0..16 {
            let v = target_col(&case, &bags, 0, s, j);
            let e = sample.u[j] / v;
            let gj = g[s * 16 + j] as f64;
            assert!((sample.de[0][j] - gj * v).abs() < 1e-12);
            assert!((sample.dv[j] - gj * e).abs() < 1e-9 * (1.0 + (gj * e).abs()));
            assert!(sample.delta[0].abs() < 1e-15);
        }
    }
}

/// One item 300 times (and one category) in a sequence, and again in a second sample: the plan
/// reduces the per-lookup rows in a fixed order and SGD applies the sum, as the reference does.
#[test]
fn repeated_behaviour_gradients_are_reduced_through_the_plan_and_applied() {
    let gpu = gpu();
    let mut rng = Rng::new(48);
    let mut case = Case::new(16, 2, 3, 300, 600, false);
    let mut batch = case.random_batch(&[300, 5, 40], &mut rng);
    for i in 0..345 {
        if !(300..305).contains(&i) {
            batch.behaviours[2 * i] = 9;
        }
        if i < 300 {
            batch.behaviours[2 * i + 1] = 2;
        }
    }
    let (bags, g, u, rows) = case.run(&batch, &mut rng);
    case.check(&bags, &g, &u, &rows);
    let fs = case.tim.features();
    let plan = SparseUpdatePlan::build(fs, &bags);
    let mut update = TbeUpdate::new(
        gpu,
        &case.storage,
        case.tim.gather(),
        case.tim.row_grads(),
        case.tim.max_touches(),
    )
    .expect("update");
    let lr = 0.1f32;
    let step = SparseStep {
        lr,
        weight_decay: 0.0,
        step: 1,
    };
    update
        .upload(gpu, case.tim.gather(), &plan, step)
        .expect("plan");
    run_once(gpu, |pass| update.record(gpu, pass));
    gpu.sync().expect("gpu");
    // Reference: every lookup's f64 gradient scattered into its table row.
    let want = reference(&case.tables, 16, &case.spec, fs, &bags, &g);
    let b = bags.batch_size as usize;
    for (f, spec) in fs.features.iter().enumerate() {
        let mut grad = vec![0.0f64; case.tables[spec.table].len()];
        let mut mag = grad.clone();
        let lookups = bags.feature_lookups(f);
        let first = bags.offsets[f * b] as usize;
        for l in lookups {
            let id = bags.indices[l] as usize;
            for j in 0..16 {
                let (v, m) = want.rows[spec.out_offset as usize + (l - first) * 16 + j].unwrap();
                grad[id * 16 + j] += v;
                mag[id * 16 + j] += m;
            }
        }
        let got = case.storage.read_weights(gpu, spec.table).expect("read");
        for i in 0..grad.len() {
            let w = case.tables[spec.table][i] as f64;
            let tol = Tolerance {
                relative: BACKWARD.relative * lr as f64,
                absolute: 1e-6, // the f32 weight itself rounds at ≈6e-8
            };
            tol.check(
                &format!("table {} after SGD", spec.table),
                i,
                got[i],
                w - lr as f64 * grad[i],
                w.abs() + lr as f64 * mag[i],
            );
        }
    }
}

#[test]
fn two_runs_give_identical_bits() {
    let mut rng = Rng::new(49);
    let mut case = Case::new(64, 3, 4, 500, 700, false);
    let batch = case.random_batch(&[500, 17, 0, 64], &mut rng);
    let (_, _, u1, rows1) = case.run(&batch, &mut rng);
    let (u2, rows2) = case.forward_backward();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&u1), bits(&u2));
    assert_eq!(bits(&rows1), bits(&rows2));
}

#[test]
fn errors_not_panics_for_bad_ids_lengths_and_specs() {
    let gpu = gpu();
    let mut rng = Rng::new(50);
    let mut case = Case::new(8, 2, 3, 20, 800, false);
    let good = case.random_batch(&[4, 0, 20], &mut rng);
    let mut bad = good.clone();
    bad.behaviours[3] = CATS; // a category id past its table
    assert!(case.tim.upload(gpu, &case.storage, &bad).is_err());
    let mut bad = good.clone();
    bad.buckets[0] = BUCKETS;
    assert!(case.tim.upload(gpu, &case.storage, &bad).is_err());
    let mut bad = good.clone();
    bad.buckets[1] = 0;
    assert!(case.tim.upload(gpu, &case.storage, &bad).is_err());
    let long = case.random_batch(&[21], &mut rng);
    assert!(case.tim.upload(gpu, &case.storage, &long).is_err());
    let wide = case.random_batch(&[1, 1, 1, 1], &mut rng);
    assert!(case.tim.upload(gpu, &case.storage, &wide).is_err());
    let mut short = good.clone();
    short.target.pop();
    assert!(case.tim.upload(gpu, &case.storage, &short).is_err());
    assert!(case.tim.upload(gpu, &case.storage, &good).is_ok());

    let spec = |sets: Vec<TimSet>, max_len| TimSpec {
        sets,
        max_batch: 3,
        max_len,
    };
    let set = |a, b, t| TimSet {
        semantic: vec![a, b],
        temporal: t,
    };
    let (u, g) = (&case.u, &case.grad_u);
    let tim = |s| Tim::new(gpu, &case.storage, s, u, g);
    assert!(tim(spec(vec![set(0, 1, 2)], 1025)).is_err(), "max_len");
    assert!(tim(spec(vec![set(0, 1, 9)], 5)).is_err(), "missing table");
    assert!(tim(spec(vec![set(0, 1, 2); 11], 5)).is_err(), "33 features");
    assert!(tim(spec(vec![], 5)).is_err(), "no sets");
    let small = gpu.buffer("small", 16, storage_usage());
    let s = spec(vec![set(0, 1, 2)], 5);
    assert!(
        Tim::new(gpu, &case.storage, s, &small, g).is_err(),
        "u too small"
    );
    let storage = EmbeddingStorage::new(
        gpu,
        &[
            TableSpec { rows: 4, width: 8 },
            TableSpec { rows: 4, width: 12 },
            TableSpec { rows: 4, width: 8 },
        ],
        SparseOptimizer::Sgd,
        None,
    )
    .expect("storage");
    let s = spec(vec![set(0, 1, 2)], 5);
    assert!(Tim::new(gpu, &storage, s, u, g).is_err(), "mixed widths");
    gpu.sync().expect("no GPU error");
}

// ---------------------------------------------------------------- PyTorch fixture

/// PyTorch float64 autograd of the padded, masked module (fx_tim.py): u, and every table's gradient
/// reached through the gradient rows, the plan and an SGD step with lr = 1 (w' = w − grad).
#[test]
fn matches_pytorch_fixture() {
    let gpu = gpu();
    let fx = Fixture::load("tim");
    for (name, sets, d) in [("a", 2usize, 8u32), ("b", 1, 16)] {
        let key = |k: &str| format!("{name}.{k}");
        let lengths = fx.u32(&key("lengths"));
        let b = lengths.len();
        let mut specs = vec![];
        let mut tables = vec![];
        for m in 0..sets {
            for t in ["item", "cat", "time"] {
                let shape = fx.shape(&key(&format!("{t}{m}")));
                specs.push(TableSpec {
                    rows: shape[0] as u32,
                    width: d,
                });
                tables.push(fx.f32(&key(&format!("{t}{m}"))));
            }
        }
        let storage =
            EmbeddingStorage::new(gpu, &specs, SparseOptimizer::Sgd, None).expect("storage");
        for (t, w) in tables.iter().enumerate() {
            storage.write_weights(gpu, t, w).expect("write");
        }
        let spec = TimSpec {
            sets: (0..sets)
                .map(|m| TimSet {
                    semantic: vec![3 * m, 3 * m + 1],
                    temporal: 3 * m + 2,
                })
                .collect(),
            max_batch: b as u32,
            max_len: *lengths.iter().max().unwrap(),
        };
        let n = (sets * b) as u64 * d as u64;
        let u = gpu.buffer("u", n * 4, storage_usage());
        let g = fx.f32(&key("g"));
        let grad_u = upload(gpu, "grad_u", &g);
        let mut tim = Tim::new(gpu, &storage, spec, &u, &grad_u).expect("tim");
        let batch = TimBatch {
            lengths,
            target: fx.u32(&key("target")),
            behaviours: fx.u32(&key("behaviours")),
            buckets: fx.u32(&key("buckets")),
        };
        let bags = tim.upload(gpu, &storage, &batch).expect("upload");
        let mut update = TbeUpdate::new(
            gpu,
            &storage,
            tim.gather(),
            tim.row_grads(),
            tim.max_touches(),
        )
        .expect("update");
        let plan = SparseUpdatePlan::build(tim.features(), &bags);
        let step = SparseStep {
            lr: 1.0,
            weight_decay: 0.0,
            step: 1,
        };
        update.upload(gpu, tim.gather(), &plan, step).expect("plan");
        poison(gpu, &u);
        poison(gpu, tim.row_grads());
        run_once(gpu, |pass| {
            tim.record_forward(gpu, pass);
            tim.record_backward(gpu, pass);
            update.record(gpu, pass);
        });
        gpu.sync().expect("gpu");
        let got = download(gpu, &u, n as usize);
        // The fixture's own values have O(1) magnitude; these inputs are short sequences of
        // O(1) rows, so f32 rounding stays near 1e-6.
        let tol = Tolerance {
            relative: 1e-5,
            absolute: 1e-5,
        };
        for (i, want) in fx.f64(&key("u")).iter().enumerate() {
            tol.check(&format!("{name} u"), i, got[i], *want, want.abs());
        }
        for m in 0..sets {
            for (k, t) in ["item", "cat", "time"].iter().enumerate() {
                let table = 3 * m + k;
                let after = storage.read_weights(gpu, table).expect("read");
                let grad = fx.f64(&key(&format!("grad_{t}{m}")));
                for i in 0..grad.len() {
                    let moved = tables[table][i] as f64 - after[i] as f64;
                    tol.check(
                        &format!("{name} grad_{t}{m}"),
                        i,
                        moved as f32,
                        grad[i],
                        1.0,
                    );
                }
            }
        }
    }
}
