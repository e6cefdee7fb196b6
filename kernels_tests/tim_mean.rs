//! TIM's mean variant (`tim_mean_forward`, `tim_mean_backward`; `pooling = "mean"`, the TIM
//! ablation) against its f64 CPU reference (`tim_mean_reference.rs`) and PyTorch autograd; the
//! reference against finite differences; the gradients applied through the sparse update plan,
//! which never lists a target row.

use wgrec::gpu::storage_usage;
use wgrec::kernels::embedding::{
    EmbeddingStorage, SparseOptimizer, SparseStep, SparseUpdatePlan, TableSpec, TbeUpdate,
};
use wgrec::kernels::run_once;
use wgrec::kernels::tim::{Tim, TimBatch, TimPooling, TimSet, TimSpec};
use wgrec::rng::Rng;

use crate::common::{check_gradient, download, gpu, poison, random_f32, upload, Tolerance};
use crate::fixtures::Fixture;
use crate::tim_mean_reference::{mean_reference, mean_sample, MeanCase};
use crate::tim_reference::{CATS, ITEMS};

const SGD: SparseOptimizer = SparseOptimizer::Sgd;

#[test]
fn mean_reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(61);
    for (d, len) in [(4, 1), (8, 7), (12, 3)] {
        let mut f =
            |n| -> Vec<f64> { random_f32(&mut rng, n).into_iter().map(f64::from).collect() };
        let e: Vec<f64> = f(d * len);
        let g = f(d);
        // The reference's backward: every behaviour row gets g / n.
        let analytic: Vec<f64> = (0..d * len).map(|i| g[i % d] / len as f64).collect();
        check_gradient(&format!("mean D{d} L{len}"), &e, &analytic, |x| {
            let rows: Vec<Vec<f64>> = x.chunks(d).map(|c| c.to_vec()).collect();
            let u = mean_sample(&rows, d).0;
            u.iter().zip(&g).map(|(a, b)| a * b).sum()
        });
    }
}

#[test]
fn mean_spec_has_no_temporal_component_and_no_target_lookup() {
    let case = MeanCase::new(8, 2, (3, 10), 900, false, SGD);
    assert_eq!(case.spec.pooling(), TimPooling::Mean);
    assert_eq!(case.spec.components(), 2);
    assert_eq!(case.spec.target_lookups(), 0);
    let fs = case.tim.features();
    assert_eq!(
        fs.len(),
        4,
        "item and category of two sets, nothing temporal"
    );
    assert_eq!(
        fs.features[0].max_lookups,
        3 * 10,
        "no target slot per sample"
    );
}

/// Every length of the issue (0, 1, 7, 50, 1000) in one batch, widths that leave lanes idle
/// (D = 12, 20: 64 lanes over 3 and 5 vec4 columns), the widest row, and one to three sets.
#[test]
fn mean_forward_and_backward_match_reference_for_awkward_lengths_widths_and_sets() {
    let mut rng = Rng::new(62);
    for (d, sets) in [(4, 1), (12, 3), (20, 2), (64, 1), (256, 2)] {
        let mut case = MeanCase::new(d, sets, (7, 1000), 1000 + d as u64, false, SGD);
        let lengths = [50, 0, 1000, 1, 7, 1 + rng.below(30) as u32];
        let batch = MeanCase::random_batch(&lengths, &mut rng);
        let (bags, g, u, rows) = case.run(&batch, &mut rng);
        case.check(&bags, &g, &u, &rows);
    }
}

#[test]
fn mean_matches_reference_across_chunks_and_interleaved_optimizer_state() {
    let mut rng = Rng::new(63);
    let adam = SparseOptimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let adagrad = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };
    for (d, sets, opt) in [(16, 3, adam), (12, 2, adagrad)] {
        let mut case = MeanCase::new(d, sets, (5, 300), 1100 + d as u64, true, opt);
        let batch = MeanCase::random_batch(&[3, 300, 0, 65, 64], &mut rng);
        let (bags, g, u, rows) = case.run(&batch, &mut rng);
        case.check(&bags, &g, &u, &rows);
    }
}

/// n = 0 everywhere: u = 0 exactly and no gradient row at all (the bags are empty; `check` also
/// asserts that every unwritten float is still the poison).
#[test]
fn mean_of_empty_sequences_is_zero_and_writes_no_gradient_row() {
    let mut rng = Rng::new(64);
    let mut case = MeanCase::new(8, 3, (3, 10), 1200, false, SGD);
    let batch = MeanCase::random_batch(&[0, 0, 0], &mut rng);
    let (bags, g, u, rows) = case.run(&batch, &mut rng);
    assert!(bags.indices.is_empty());
    case.check(&bags, &g, &u, &rows);
    assert!(u[..3 * 3 * 8].iter().all(|&x| x == 0.0), "u = 0 for n = 0");
    assert!(rows.iter().all(|x| x.is_nan()), "no gradient row written");
}

/// One item 300 times (and one category) across two samples: the plan reduces the g/n rows in a
/// fixed order and SGD applies the sum. The targets' rows are never in the plan, so even with
/// weight decay every row no behaviour reads keeps its bits.
#[test]
fn mean_hot_rows_reduce_through_the_plan_and_target_rows_get_no_update() {
    let gpu = gpu();
    let mut rng = Rng::new(65);
    let mut case = MeanCase::new(16, 2, (3, 300), 1300, false, SGD);
    let mut batch = MeanCase::random_batch(&[300, 5, 40], &mut rng);
    for i in 0..345 {
        // Behaviours read items 0..=9 and categories 0..=2 only; the targets (never read) are
        // item 36 and category 10, so the test sees whether anything reaches them.
        batch.behaviours[2 * i] = if (300..305).contains(&i) {
            i as u32 % 9
        } else {
            9
        };
        batch.behaviours[2 * i + 1] = if i < 300 { 2 } else { i as u32 % 2 };
    }
    batch.target = vec![
        ITEMS - 1,
        CATS - 1,
        ITEMS - 1,
        CATS - 1,
        ITEMS - 1,
        CATS - 1,
    ];
    let (bags, g, u, rows) = case.run(&batch, &mut rng);
    case.check(&bags, &g, &u, &rows);
    let fs = case.tim.features();
    let plan = SparseUpdatePlan::build(fs, &bags);
    assert!(
        (plan.rows.iter()).all(|&(t, r)| r < if t % 2 == 0 { 10 } else { 3 }),
        "the plan lists only behaviour rows: {:?}",
        plan.rows
    );
    let mut update = TbeUpdate::new(
        gpu,
        &case.storage,
        case.tim.gather(),
        case.tim.row_grads(),
        case.tim.max_touches(),
    )
    .expect("update");
    let (lr, wd) = (0.1f32, 0.01f32);
    let step = SparseStep {
        lr,
        weight_decay: wd,
        step: 1,
    };
    update
        .upload(gpu, case.tim.gather(), &plan, step)
        .expect("plan");
    run_once(gpu, |pass| update.record(gpu, pass));
    gpu.sync().expect("gpu");
    let want = mean_reference(&case.tables, 16, &case.spec, fs, &bags, &g);
    let b = bags.batch_size as usize;
    for (f, spec) in fs.features.iter().enumerate() {
        let mut grad = vec![0.0f64; case.tables[spec.table].len()];
        let mut mag = grad.clone();
        let first = bags.offsets[f * b] as usize;
        for l in bags.feature_lookups(f) {
            let id = bags.indices[l] as usize;
            for j in 0..16 {
                let (v, m) = want.rows[spec.out_offset as usize + (l - first) * 16 + j].unwrap();
                grad[id * 16 + j] += v;
                mag[id * 16 + j] += m;
            }
        }
        let got = case.storage.read_weights(gpu, spec.table).expect("read");
        let touched = |i: usize| plan.rows.contains(&(spec.table as u32, (i / 16) as u32));
        for i in 0..grad.len() {
            let w = case.tables[spec.table][i] as f64;
            if !touched(i) {
                assert_eq!(
                    got[i].to_bits(),
                    (w as f32).to_bits(),
                    "row {} moved",
                    i / 16
                );
                continue;
            }
            // Up to 300 g/n terms summed in f32 (≈1e-7 each), then the step; the f32 weight
            // itself rounds at ≈6e-8 of |w|.
            let tol = Tolerance {
                relative: 1e-5,
                absolute: 1e-6,
            };
            let want = w - lr as f64 * (grad[i] + wd as f64 * w);
            tol.check(
                "mean SGD step",
                i,
                got[i],
                want,
                w.abs() + lr as f64 * mag[i],
            );
        }
    }
}

#[test]
fn mean_two_runs_give_identical_bits() {
    let mut rng = Rng::new(66);
    let mut case = MeanCase::new(64, 3, (4, 500), 1400, false, SGD);
    let batch = MeanCase::random_batch(&[500, 17, 0, 64], &mut rng);
    let (_, _, u1, rows1) = case.run(&batch, &mut rng);
    let (u2, rows2) = case.forward_backward();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&u1), bits(&u2));
    assert_eq!(bits(&rows1), bits(&rows2));
}

#[test]
fn mean_errors_not_panics_for_bad_ids_lengths_and_mixed_specs() {
    let gpu = gpu();
    let mut rng = Rng::new(67);
    let mut case = MeanCase::new(8, 2, (3, 20), 1500, false, SGD);
    let good = MeanCase::random_batch(&[4, 0, 20], &mut rng);
    let mut bad = good.clone();
    bad.behaviours[3] = CATS;
    assert!(
        case.tim.upload(gpu, &case.storage, &bad).is_err(),
        "id past its table"
    );
    let long = MeanCase::random_batch(&[21], &mut rng);
    assert!(
        case.tim.upload(gpu, &case.storage, &long).is_err(),
        "too long"
    );
    let wide = MeanCase::random_batch(&[1, 1, 1, 1], &mut rng);
    assert!(
        case.tim.upload(gpu, &case.storage, &wide).is_err(),
        "too many samples"
    );
    let mut short = good.clone();
    short.behaviours.pop();
    assert!(
        case.tim.upload(gpu, &case.storage, &short).is_err(),
        "ids for L"
    );
    // Targets and buckets are not read: present or absent, bad or not, they change nothing.
    let mut extra = good.clone();
    extra.target = vec![u32::MAX; 6];
    extra.buckets = vec![0; 24];
    assert!(case.tim.upload(gpu, &case.storage, &extra).is_ok());
    assert!(case.tim.upload(gpu, &case.storage, &good).is_ok());

    let mixed = TimSpec {
        sets: vec![
            TimSet {
                semantic: vec![0, 1],
                temporal: None,
            },
            TimSet {
                semantic: vec![2],
                temporal: Some(3),
            },
        ],
        max_batch: 3,
        max_len: 5,
    };
    let (u, g) = (&case.u, &case.grad_u);
    assert!(
        Tim::new(gpu, &case.storage, mixed, u, g).is_err(),
        "mixed pooling"
    );
    let storage = EmbeddingStorage::new(
        gpu,
        &[
            TableSpec { rows: 4, width: 8 },
            TableSpec { rows: 4, width: 12 },
        ],
        SGD,
        None,
    )
    .expect("storage");
    let widths = TimSpec {
        sets: vec![TimSet {
            semantic: vec![0, 1],
            temporal: None,
        }],
        max_batch: 3,
        max_len: 5,
    };
    assert!(
        Tim::new(gpu, &storage, widths, u, g).is_err(),
        "mixed widths"
    );
    let small = gpu.buffer("small", 16, storage_usage());
    let spec = case.spec.clone();
    assert!(
        Tim::new(gpu, &case.storage, spec, &small, g).is_err(),
        "u too small"
    );
    gpu.sync().expect("no GPU error");
}

/// PyTorch float64 autograd of a padded, masked mean (fx_tim_mean.py): u, and every table's
/// gradient reached through the gradient rows, the plan and an SGD step with lr = 1.
#[test]
fn mean_matches_pytorch_fixture() {
    let gpu = gpu();
    let fx = Fixture::load("tim_mean");
    for (name, sets, d) in [("a", 2usize, 8u32), ("c", 3, 64)] {
        let key = |k: &str| format!("{name}.{k}");
        let lengths = fx.u32(&key("lengths"));
        let b = lengths.len();
        let (mut specs, mut tables) = (vec![], vec![]);
        for m in 0..sets {
            for t in ["item", "cat"] {
                let shape = fx.shape(&key(&format!("{t}{m}")));
                specs.push(TableSpec {
                    rows: shape[0] as u32,
                    width: d,
                });
                tables.push(fx.f32(&key(&format!("{t}{m}"))));
            }
        }
        let storage = EmbeddingStorage::new(gpu, &specs, SGD, None).expect("storage");
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
            max_batch: b as u32,
            max_len: lengths.iter().copied().max().unwrap_or(0),
        };
        let n = (sets * b) as u64 * d as u64;
        let u = gpu.buffer("u", n * 4, storage_usage());
        let grad_u = upload(gpu, "grad_u", &fx.f32(&key("g")));
        let mut tim = Tim::new(gpu, &storage, spec, &u, &grad_u).expect("tim");
        let batch = TimBatch {
            lengths,
            behaviours: fx.u32(&key("behaviours")),
            ..TimBatch::default()
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
        // O(1) inputs, at most 1000 f32 additions per value: f32 rounding stays near 1e-6 of the
        // sum of |terms| ≤ 2 per mean; the fixture's values are f64.
        let tol = Tolerance {
            relative: 1e-5,
            absolute: 1e-5,
        };
        for (i, want) in fx.f64(&key("u")).iter().enumerate() {
            tol.check(&format!("{name} u"), i, got[i], *want, want.abs());
        }
        for m in 0..sets {
            for (k, t) in ["item", "cat"].iter().enumerate() {
                let table = 2 * m + k;
                let after = storage.read_weights(gpu, table).expect("read");
                let grad = fx.f64(&key(&format!("grad_{t}{m}")));
                for (i, want) in grad.iter().enumerate() {
                    let moved = tables[table][i] as f64 - after[i] as f64;
                    tol.check(&format!("{name} grad_{t}{m}"), i, moved as f32, *want, 1.0);
                }
            }
        }
    }
}
