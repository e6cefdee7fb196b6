//! TIM (`tim_forward`, `tim_backward`) against the f64 CPU reference (`tim_reference.rs`) and PyTorch
//! autograd; the reference's backward against finite differences; gradients applied through the
//! sparse update plan.

use wgrec::gpu::storage_usage;
use wgrec::kernels::embedding::{
    Bags, EmbeddingStorage, SparseOptimizer, SparseStep, SparseUpdatePlan, TableSpec, TbeUpdate,
};
use wgrec::kernels::run_once;
use wgrec::kernels::tim::{TemporalBuckets, Tim, TimBatch, TimParams, TimSet, TimSpec};
use wgrec::rng::Rng;
use wgrec::shaders;

use crate::common::{check_gradient, download, gpu, poison, random_f32, upload, Tolerance};
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};
use crate::tim_reference::{reference, tim_sample, Case, BACKWARD, BUCKETS, CATS};

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
        temporal: Some(t),
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
    // Just enough samples that the gradient rows (samples × 1001 lookups × 3 tables × 8 floats)
    // exceed the device's binding limit: an error before anything is allocated.
    let big = |max_batch| TimSpec {
        sets: vec![set(0, 1, 2)],
        max_batch,
        max_len: 1000,
    };
    let max = gpu.limits().max_storage_buffer_binding_size;
    let samples = (max / (1001 * 3 * 8 * 4) + 1) as u32;
    let big_u = gpu.buffer("big u", samples as u64 * 8 * 4, storage_usage());
    match Tim::new(gpu, &case.storage, big(samples), &big_u, &big_u) {
        Err(e) => assert!(e.to_string().contains("binding limit"), "{e}"),
        Ok(_) => panic!("gradient rows past the binding limit were accepted"),
    }
    gpu.sync().expect("no GPU error");
}

// ---------------------------------------------------------------- PyTorch fixture

/// PyTorch float64 autograd of the padded, masked module (fx_tim.py): u, and every table's gradient
/// reached through the gradient rows, the plan and an SGD step with lr = 1 (w' = w − grad).
#[test]
fn matches_pytorch_fixture() {
    let gpu = gpu();
    let fx = Fixture::load("tim");
    for (name, sets, d) in [("a", 2usize, 8u32), ("b", 1, 16), ("c", 3, 64)] {
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
                    temporal: Some(3 * m + 2),
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
