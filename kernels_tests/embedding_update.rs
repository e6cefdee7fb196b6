//! `tbe_update` (fused backward + optimizer) against the CPU reference over several steps, and its
//! determinism.

use wgrec::kernels::embedding::{
    DecayMode, EmbeddingStorage, FeatureSet, MnsBase, Pooling, SparseOptimizer, SparseStep,
    SparseUpdatePlan, TableSpec, TbeForward, TbeUpdate,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::Gpu;

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

/// The weight decay of a run: the step's λ, each table's own (`None`: the step's), and the mode.
#[derive(Debug, Clone)]
pub struct Decay {
    pub step: f32,
    pub per_table: Vec<Option<f32>>,
    pub mode: DecayMode,
}

impl Decay {
    /// λ = 0.01 on every table, once per touched row.
    pub fn uniform(tables: usize) -> Self {
        Decay {
            step: 0.01,
            per_table: vec![None; tables],
            mode: DecayMode::Row,
        }
    }

    fn of_tables(&self) -> Vec<f64> {
        let own = self.per_table.iter();
        own.map(|d| d.unwrap_or(self.step) as f64).collect()
    }
}

/// [`check_update_with`] at λ = 0.01 on every table.
pub fn check_update(
    problem: &Problem,
    optimizer: SparseOptimizer,
    steps: u64,
    seed: u64,
    small_chunks: bool,
) -> Vec<Vec<f32>> {
    let decay = Decay::uniform(problem.tables.len());
    check_update_with(problem, optimizer, &decay, steps, seed, small_chunks)
}

/// Trains `steps` random batches with random upstream gradients on the GPU and in the reference;
/// compares every weight and every state value; returns the raw GPU tables (weights + state).
pub fn check_update_with(
    problem: &Problem,
    optimizer: SparseOptimizer,
    decay: &Decay,
    steps: u64,
    seed: u64,
    small_chunks: bool,
) -> Vec<Vec<f32>> {
    check_update_on(gpu(), problem, optimizer, decay, steps, seed, small_chunks)
}

/// [`check_update_with`] on `gpu` (a device with a forced variant).
pub fn check_update_on(
    gpu: &Gpu,
    problem: &Problem,
    optimizer: SparseOptimizer,
    decay: &Decay,
    steps: u64,
    seed: u64,
    small_chunks: bool,
) -> Vec<Vec<f32>> {
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
    update
        .set_table_decay(&decay.per_table, decay.mode)
        .expect("table decay");
    let lr = 0.05f32;
    let frequency = decay.mode == DecayMode::Frequency;
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
            weight_decay: decay.step,
            step,
        };
        update
            .upload(gpu, &forward, &plan, hyper)
            .expect("upload plan");
        run_once(gpu, |pass| update.record(gpu, pass));
        let grads = reference::row_gradients(&fs, &bags, &grad);
        let wd = reference::row_decay(&fs, &bags, &decay.of_tables(), frequency);
        reference::apply_update(&mut want, &grads, optimizer, lr as f64, &wd, step as i32);
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

pub fn wide_problem() -> Problem {
    Problem {
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
    }
}

#[test]
fn update_of_wide_rows_uses_a_full_team_and_matches_reference() {
    check_update(&wide_problem(), ADAGRAD, 4, 17, true);
}

/// Four tables, four decays: none, the step's, a strong one, a mild one.
fn per_table_decay(mode: DecayMode) -> Decay {
    Decay {
        step: 0.01,
        per_table: vec![Some(0.0), None, Some(0.2), Some(0.05)],
        mode,
    }
}

#[test]
fn per_table_weight_decay_matches_reference_for_every_optimizer() {
    let decay = per_table_decay(DecayMode::Row);
    for (optimizer, seed) in [(SGD, 31), (ADAGRAD, 32), (ADAM, 33)] {
        let problem = update_problem(Ids::Uniform, true);
        check_update_with(&problem, optimizer, &decay, 10, seed, true);
    }
}

#[test]
fn frequency_decay_divides_by_the_row_lookups_and_matches_reference_with_a_hot_row() {
    // Row 0 takes half the lookups: λ and λ / n differ by far more than the tolerance there.
    let decay = per_table_decay(DecayMode::Frequency);
    for (optimizer, seed) in [(SGD, 34), (ADAGRAD, 35), (ADAM, 36)] {
        let problem = update_problem(Ids::Hot, seed % 2 == 0);
        check_update_with(&problem, optimizer, &decay, 10, seed, seed % 2 == 1);
    }
}

#[test]
fn frequency_decay_on_rows_of_1024_and_4_floats_matches_reference() {
    let decay = Decay {
        step: 0.3,
        per_table: vec![None, Some(0.1)],
        mode: DecayMode::Frequency,
    };
    check_update_with(&wide_problem(), ADAGRAD, &decay, 4, 37, true);
    check_update_with(&wide_problem(), ADAM, &decay, 3, 38, false);
}

#[test]
fn an_update_touching_no_row_leaves_tables_and_state_bit_identical_under_decay() {
    let gpu = gpu();
    let problem = update_problem(Ids::Uniform, false);
    let storage = EmbeddingStorage::new(gpu, &problem.tables, ADAM, None).expect("storage");
    let mut rng = Rng::new(39);
    for (t, w) in reference::random_tables(&problem.tables, &mut rng)
        .iter()
        .enumerate()
    {
        storage.write_weights(gpu, t, w).expect("write table");
    }
    let fs = FeatureSet::concatenated(&storage.layout, &problem.features, 37, 148).expect("fs");
    let mut forward = TbeForward::new(gpu, &storage, fs.clone(), 148).expect("forward");
    let grad = gpu.buffer("grad", fs.out_len * 4, wgrec::gpu::storage_usage());
    crate::common::poison(gpu, &grad);
    let mut update = TbeUpdate::new(gpu, &storage, &forward, &grad, 200).expect("update");
    let decay = per_table_decay(DecayMode::Frequency);
    update
        .set_table_decay(&decay.per_table, decay.mode)
        .expect("decay");
    let empty = wgrec::kernels::embedding::Bags {
        batch_size: 37,
        offsets: vec![0; problem.features.len() * 37 + 1],
        ..Default::default()
    };
    forward.upload(gpu, &storage, &empty).expect("upload bags");
    let plan = SparseUpdatePlan::build(&fs, &empty);
    assert!(plan.rows.is_empty(), "no lookup, no row");
    let step = SparseStep {
        lr: 0.5,
        weight_decay: 0.9,
        step: 1,
    };
    let before: Vec<Vec<f32>> = (0..4)
        .map(|t| storage.read_raw(gpu, t).expect("read"))
        .collect();
    update
        .upload(gpu, &forward, &plan, step)
        .expect("upload plan");
    run_once(gpu, |pass| update.record(gpu, pass));
    for (t, was) in before.iter().enumerate() {
        let now = storage.read_raw(gpu, t).expect("read");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&now), bits(was), "table {t} moved without a lookup");
    }
}

#[test]
fn table_decay_for_the_wrong_number_of_tables_is_an_error_naming_both() {
    let gpu = gpu();
    let problem = update_problem(Ids::Uniform, false);
    let storage = EmbeddingStorage::new(gpu, &problem.tables, SGD, None).expect("storage");
    let fs = FeatureSet::concatenated(&storage.layout, &problem.features, 37, 148).expect("fs");
    let forward = TbeForward::new(gpu, &storage, fs.clone(), 148).expect("forward");
    let grad = gpu.buffer("grad", fs.out_len * 4, wgrec::gpu::storage_usage());
    let mut update = TbeUpdate::new(gpu, &storage, &forward, &grad, 200).expect("update");
    let e = update
        .set_table_decay(&[None, Some(0.1)], DecayMode::Row)
        .expect_err("two decays for four tables")
        .to_string();
    assert!(
        e.contains("tbe_update") && e.contains("2 weight decays for 4 tables"),
        "{e}"
    );
}

#[test]
fn two_runs_give_bit_identical_tables_and_optimizer_state() {
    let decays = [Decay::uniform(4), per_table_decay(DecayMode::Frequency)];
    for (optimizer, decay) in [ADAGRAD, ADAM]
        .into_iter()
        .flat_map(|o| decays.iter().map(move |d| (o, d)))
    {
        let problem = update_problem(Ids::Hot, true);
        let first = check_update_with(&problem, optimizer, decay, 10, 21, true);
        let second = check_update_with(&problem, optimizer, decay, 10, 21, true);
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
