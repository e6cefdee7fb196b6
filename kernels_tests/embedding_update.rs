//! `tbe_update` (fused backward + optimizer) against the CPU reference over several steps, and its
//! determinism.

use wgrec::kernels::embedding::{
    EmbeddingStorage, FeatureSet, MnsBase, Pooling, SparseOptimizer, SparseStep, SparseUpdatePlan,
    TableSpec, TbeForward, TbeUpdate,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;

use crate::common::{gpu, Tolerance};
use crate::embedding_reference::{self as reference, Ids, Problem, RefTable};

/// Ten steps of f32 arithmetic on O(1) weights: each step adds a few ulps (≈1e-7) of rounding to
/// weights and state; 2e-5 leaves room for the division by √acc amplifying small accumulators.
const UPDATE: Tolerance = Tolerance {
    relative: 2e-5,
    absolute: 2e-5,
};

pub const SGD: SparseOptimizer = SparseOptimizer::Sgd;
pub const ADAGRAD: SparseOptimizer = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };
pub const ADAM: SparseOptimizer = SparseOptimizer::Adam {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
};

/// Trains `steps` random batches with random upstream gradients on the GPU and in the reference;
/// compares every weight and every state value; returns the raw GPU tables (weights + state).
pub fn check_update(
    problem: &Problem,
    optimizer: SparseOptimizer,
    steps: u64,
    seed: u64,
    small_chunks: bool,
) -> Vec<Vec<f32>> {
    let gpu = gpu();
    let mut rng = Rng::new(seed);
    let chunk = small_chunks.then(|| problem.small_chunk_bytes(optimizer));
    let storage = EmbeddingStorage::new(gpu, &problem.tables, optimizer, chunk).expect("storage");
    let init = reference::random_tables(&problem.tables, &mut rng);
    let mut want: Vec<RefTable> = init
        .iter()
        .zip(&problem.tables)
        .map(|(w, t)| RefTable::new(w, t.width as usize, optimizer))
        .collect();
    for (t, w) in init.iter().enumerate() {
        storage.write_weights(gpu, t, w).expect("write table");
    }
    let max_lookups = (problem.max_batch * problem.max_bag).max(1);
    let fs = FeatureSet::concatenated(
        &storage.layout,
        &problem.features,
        problem.max_batch,
        max_lookups,
    )
    .expect("features");
    let mut forward =
        TbeForward::new(gpu, &storage, fs.clone(), problem.max_lookups()).expect("forward");
    let grad_buffer = gpu.buffer("grad", fs.out_len * 4, wgrec::gpu::storage_usage());
    let mut update = TbeUpdate::new(gpu, &storage, &forward, &grad_buffer, problem.max_touches())
        .expect("update");
    let (lr, wd) = (0.05f32, 0.01f32);
    for step in 1..=steps {
        let batch = 1 + rng.below(problem.max_batch as u64) as u32;
        let bags = problem.bags(&storage.layout, batch, &mut rng);
        let grad: Vec<f32> = (0..fs.out_len).map(|_| rng.uniform(-1.0, 1.0)).collect();
        gpu.queue
            .write_buffer(&grad_buffer, 0, bytemuck::cast_slice(&grad));
        forward.upload(gpu, &storage, &bags).expect("upload bags");
        let plan = SparseUpdatePlan::build(&fs, &bags);
        let hyper = SparseStep {
            lr,
            weight_decay: wd,
            step,
        };
        update
            .upload(gpu, &forward, &plan, hyper)
            .expect("upload plan");
        run_once(gpu, |pass| update.record(gpu, pass));
        let grads = reference::row_gradients(&fs, &bags, &grad);
        reference::apply_update(
            &mut want,
            &grads,
            optimizer,
            lr as f64,
            wd as f64,
            step as i32,
        );
    }
    gpu.sync().expect("gpu");
    let raw: Vec<Vec<f32>> = (0..problem.tables.len())
        .map(|t| storage.read_raw(gpu, t).expect("read table"))
        .collect();
    for (t, (got, want)) in raw.iter().zip(&want).enumerate() {
        compare_table(t, got, want, &storage.layout.tables[t], optimizer);
    }
    raw
}

fn compare_table(
    t: usize,
    got: &[f32],
    want: &RefTable,
    placed: &wgrec::kernels::embedding::TablePlacement,
    optimizer: SparseOptimizer,
) {
    let (w, s) = (want.width, placed.stride4 as usize * 4);
    for (row, raw) in got.chunks(s).enumerate() {
        for d in 0..w {
            let i = row * w + d;
            UPDATE.check(
                &format!("table {t} weight"),
                i,
                raw[d],
                want.w[i],
                want.w[i].abs(),
            );
        }
        let state: Vec<(f32, f64)> = match optimizer {
            SparseOptimizer::Sgd => vec![],
            SparseOptimizer::RowwiseAdagrad { .. } => vec![(raw[w], want.state[row])],
            SparseOptimizer::Adam { .. } => (0..2 * w)
                .map(|k| (raw[w + k], want.state[row * 2 * w + k]))
                .collect(),
        };
        for (k, (g, r)) in state.into_iter().enumerate() {
            UPDATE.check(&format!("table {t} row {row} state"), k, g, r, r.abs());
        }
    }
}

pub fn update_problem(ids: Ids, weighted: bool) -> Problem {
    Problem {
        tables: vec![
            TableSpec { rows: 41, width: 4 },
            TableSpec {
                rows: 97,
                width: 20,
            },
            TableSpec {
                rows: 13,
                width: 64,
            },
            TableSpec { rows: 40, width: 8 },
        ],
        features: vec![
            (0, Pooling::Sum, vec![]),
            (1, Pooling::Mean, vec![]),
            (2, Pooling::Sum, vec![]),
            (1, Pooling::None, vec![]),
            (
                3,
                Pooling::Mean,
                vec![
                    MnsBase {
                        radix: 2,
                        digits: 8,
                    },
                    MnsBase {
                        radix: 3,
                        digits: 8,
                    },
                ],
            ),
        ],
        max_batch: 37,
        max_bag: 4,
        weighted,
        ids,
    }
}

#[test]
fn sgd_update_matches_reference_over_ten_steps() {
    check_update(&update_problem(Ids::Uniform, true), SGD, 10, 11, true);
}

#[test]
fn rowwise_adagrad_update_matches_reference_over_ten_steps() {
    check_update(&update_problem(Ids::Uniform, true), ADAGRAD, 10, 12, true);
    check_update(
        &update_problem(Ids::Zipf(1.1), false),
        ADAGRAD,
        10,
        13,
        false,
    );
}

#[test]
fn adam_update_matches_reference_over_ten_steps() {
    check_update(&update_problem(Ids::Uniform, false), ADAM, 10, 14, true);
}

#[test]
fn update_with_a_hot_row_taking_half_the_lookups_matches_reference() {
    check_update(&update_problem(Ids::Hot, true), ADAGRAD, 10, 15, true);
    check_update(&update_problem(Ids::Hot, false), ADAM, 3, 16, false);
}

#[test]
fn update_of_wide_rows_uses_a_full_team_and_matches_reference() {
    let problem = Problem {
        tables: vec![
            TableSpec {
                rows: 9,
                width: 1024,
            },
            TableSpec {
                rows: 300,
                width: 4,
            },
        ],
        features: vec![(0, Pooling::Sum, vec![]), (1, Pooling::Mean, vec![])],
        max_batch: 5,
        max_bag: 3,
        weighted: true,
        ids: Ids::Uniform,
    };
    check_update(&problem, ADAGRAD, 4, 17, true);
}

#[test]
fn two_runs_give_bit_identical_tables_and_optimizer_state() {
    for optimizer in [ADAGRAD, ADAM] {
        let problem = update_problem(Ids::Hot, true);
        let first = check_update(&problem, optimizer, 10, 21, true);
        let second = check_update(&problem, optimizer, 10, 21, true);
        for (a, b) in first.iter().zip(&second) {
            let (a, b): (Vec<u32>, Vec<u32>) = (
                a.iter().map(|x| x.to_bits()).collect(),
                b.iter().map(|x| x.to_bits()).collect(),
            );
            assert_eq!(a, b, "{optimizer:?}: runs differ");
        }
    }
}

#[test]
fn plan_lists_each_touched_row_once_with_its_lookups_in_order() {
    let gpu = gpu();
    let problem = update_problem(Ids::Hot, false);
    let storage = EmbeddingStorage::new(gpu, &problem.tables, ADAGRAD, None).expect("storage");
    let fs =
        FeatureSet::concatenated(&storage.layout, &problem.features, 37, 148).expect("features");
    let bags = problem.bags(&storage.layout, 37, &mut Rng::new(5));
    let plan = SparseUpdatePlan::build(&fs, &bags);
    assert!(
        plan.rows.windows(2).all(|w| w[0] < w[1]),
        "rows sorted and unique"
    );
    assert_eq!(plan.entry_offsets.len(), plan.rows.len() + 1);
    for r in 0..plan.rows.len() {
        let entries =
            &plan.entries[plan.entry_offsets[r] as usize..plan.entry_offsets[r + 1] as usize];
        assert!(!entries.is_empty());
        assert!(
            entries.windows(2).all(|w| w[0].0 <= w[1].0),
            "lookup order kept"
        );
    }
    let touches: usize =
        reference::row_gradients(&fs, &bags, &vec![0.0; fs.out_len as usize]).len();
    assert_eq!(plan.rows.len(), touches);
}
