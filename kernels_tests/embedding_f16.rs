//! f16 embedding storage (issue 19): the gather, the fused update (SGD, row-wise Adagrad, Adam) and
//! TIM over f16 rows against the f64 references, and seeded stochastic rounding.
//!
//! The bounds. Reads: f16 → f32 is exact, so the gather of f16 rows is the f32 gather of the same
//! values — bit-identical to an f32 storage holding them, and within the f32 gather's tolerance of
//! the f64 reference. Updates: the kernel computes the new row in f32 from the stored f16 weights
//! and f32 state, then rounds to f16. Each step is checked against the f64 reference started from
//! the GPU's own stored values before that step, so the bound is per step: |stored − reference| ≤
//! ½ ulp_f16(reference) (round to nearest; WGSL lets `pack2x16float` pick either neighbour of an
//! inexact value, lavapipe rounds to nearest even) + the f32 arithmetic term of the f32 update
//! tests (2e-5 relative). The f32 state is checked with the f32 tolerance alone.

use half::f16;
use wgrec::gpu::storage_usage;
use wgrec::kernels::embedding::{
    Bags, DecayMode, Element, EmbeddingStorage, FeatureSet, MnsBase, Pooling, SparseOptimizer,
    SparseStep, SparseUpdatePlan, StorageLayout, TableSpec, TbeForward, TbeUpdate,
};
use wgrec::kernels::run_once;
use wgrec::kernels::tim::{Tim, TimBatch, TimSet, TimSpec};
use wgrec::rng::Rng;

use crate::common::{gpu, poison, Tolerance};
use crate::embedding_reference::{self as reference, Ids, Problem, RefTable};
use crate::embedding_update::{update_problem, ADAGRAD, ADAM, SGD};

/// As the f32 gather test: f32 sums of a few hundred terms.
const GATHER: Tolerance = Tolerance {
    relative: 2e-5,
    absolute: 1e-6,
};
/// One step of f32 arithmetic (the f32 update tests allow 2e-5 over ten steps).
const STEP: Tolerance = Tolerance {
    relative: 2e-5,
    absolute: 2e-6,
};

/// The spacing of f16 values around `x` (subnormal spacing 2^-24 below 2^-14).
fn ulp16(x: f64) -> f64 {
    let a = x.abs();
    if a < 2f64.powi(-14) {
        2f64.powi(-24)
    } else {
        2f64.powi(a.log2().floor() as i32 - 10)
    }
}

/// A chunk size that cuts the f16 storage of `tables` into 3–4 chunks.
fn small_chunk_bytes(tables: &[TableSpec], optimizer: SparseOptimizer) -> u64 {
    let layout =
        StorageLayout::with_element(tables, optimizer, Element::F16, 1 << 30).expect("layout");
    layout.total4.div_ceil(4).next_power_of_two() * layout.unit_bytes()
}

fn storage(
    problem: &Problem,
    opt: SparseOptimizer,
    element: Element,
    small: bool,
) -> EmbeddingStorage {
    let chunk = small.then(|| small_chunk_bytes(&problem.tables, opt));
    let s = EmbeddingStorage::with_element(gpu(), &problem.tables, opt, element, chunk)
        .expect("storage");
    if small {
        assert!(
            s.layout.chunks() >= 3,
            "must straddle chunks: {}",
            s.layout.chunks()
        );
    }
    s
}

fn features(problem: &Problem, storage: &EmbeddingStorage) -> FeatureSet {
    let lookups = (problem.max_batch * problem.max_bag).max(1);
    FeatureSet::concatenated(
        &storage.layout,
        &problem.features,
        problem.max_batch,
        lookups,
    )
    .expect("features")
}

/// Gathers `bags` (output poisoned first) and returns the output.
fn gather(storage: &EmbeddingStorage, fs: &FeatureSet, problem: &Problem, bags: &Bags) -> Vec<f32> {
    let gpu = gpu();
    let mut forward =
        TbeForward::new(gpu, storage, fs.clone(), problem.max_lookups()).expect("forward");
    forward.upload(gpu, storage, bags).expect("upload");
    poison(gpu, forward.output());
    run_once(gpu, |pass| forward.record(gpu, pass));
    gpu.sync().expect("gpu");
    gpu.read_all(forward.output()).expect("read")
}

fn check_gather(problem: &Problem, batch: u32, seed: u64, small: bool) {
    let gpu = gpu();
    let mut rng = Rng::new(seed);
    let half = storage(problem, ADAGRAD, Element::F16, small);
    let full = storage(problem, ADAGRAD, Element::F32, false);
    for (t, w) in reference::random_tables(&problem.tables, &mut rng)
        .iter()
        .enumerate()
    {
        half.write_weights(gpu, t, w).expect("write");
        // The weights as stored: every value an f16, the host's rounding to nearest even.
        let stored = half.read_weights(gpu, t).expect("read");
        for (i, (&s, &x)) in stored.iter().zip(w).enumerate() {
            assert_eq!(
                s.to_bits(),
                f16::from_f32(x).to_f32().to_bits(),
                "table {t} [{i}]"
            );
        }
        full.write_weights(gpu, t, &stored).expect("write f32");
    }
    let fs = features(problem, &half);
    let bags = problem.bags(&half.layout, batch, &mut rng);
    let got = gather(&half, &fs, problem, &bags);
    let tables: Vec<Vec<f32>> = (0..problem.tables.len())
        .map(|t| half.read_weights(gpu, t).expect("read"))
        .collect();
    for (&i, &(value, magnitude)) in &reference::forward(&fs, &tables, &bags) {
        GATHER.check("f16 tbe_forward out", i, got[i], value, magnitude);
    }
    let same = gather(&full, &features(problem, &full), problem, &bags);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&got),
        bits(&same),
        "f16 rows gather as the f32 rows of the same values"
    );
}

fn mixed_problem(ids: Ids, weighted: bool) -> Problem {
    let mut problem = update_problem(ids, weighted);
    problem.features.push((
        3,
        Pooling::Sum,
        vec![MnsBase {
            radix: 5,
            digits: 6,
        }],
    ));
    problem
}

#[test]
fn f16_gather_matches_reference_with_mns_weights_and_straddling_rows() {
    check_gather(&mixed_problem(Ids::Uniform, true), 31, 1, true);
    check_gather(&mixed_problem(Ids::Hot, false), 29, 2, false);
}

#[test]
fn f16_gather_writes_zeros_for_empty_bags_and_takes_an_empty_batch() {
    let mut problem = mixed_problem(Ids::Uniform, false);
    problem.max_bag = 1;
    check_gather(&problem, 17, 3, true);
    check_gather(&problem, 0, 4, false);
}

/// `steps` random batches on an f16 storage; every step is compared with the f64 reference run
/// from the GPU's stored values before it (module docs: the bound).
fn check_update(problem: &Problem, opt: SparseOptimizer, steps: u64, seed: u64, small: bool) {
    let gpu = gpu();
    let mut rng = Rng::new(seed);
    let storage = storage(problem, opt, Element::F16, small);
    for (t, w) in reference::random_tables(&problem.tables, &mut rng)
        .iter()
        .enumerate()
    {
        storage.write_weights(gpu, t, w).expect("write");
    }
    let fs = features(problem, &storage);
    let mut forward =
        TbeForward::new(gpu, &storage, fs.clone(), problem.max_lookups()).expect("forward");
    let grad_buffer = gpu.buffer("grad", fs.out_len * 4, storage_usage());
    let mut update = TbeUpdate::new(gpu, &storage, &forward, &grad_buffer, problem.max_touches())
        .expect("update");
    let per_table = vec![None; problem.tables.len()];
    update
        .set_table_decay(&per_table, DecayMode::Row)
        .expect("decay");
    let (lr, wd) = (0.05f32, 0.01f32);
    for step in 1..=steps {
        let before: Vec<Vec<f32>> = (0..problem.tables.len())
            .map(|t| storage.read_raw(gpu, t).expect("read"))
            .collect();
        let mut want: Vec<RefTable> = before
            .iter()
            .enumerate()
            .map(|(t, raw)| ref_table(raw, &storage.layout, t))
            .collect();
        let batch = 1 + rng.below(problem.max_batch as u64) as u32;
        let bags = problem.bags(&storage.layout, batch, &mut rng);
        let grad: Vec<f32> = (0..fs.out_len).map(|_| rng.uniform(-1.0, 1.0)).collect();
        gpu.queue
            .write_buffer(&grad_buffer, 0, bytemuck::cast_slice(&grad));
        forward.upload(gpu, &storage, &bags).expect("bags");
        let plan = SparseUpdatePlan::build(&fs, &bags);
        let hyper = SparseStep {
            lr,
            weight_decay: wd,
            step,
        };
        update.upload(gpu, &forward, &plan, hyper).expect("plan");
        run_once(gpu, |pass| update.record(gpu, pass));
        let grads = reference::row_gradients(&fs, &bags, &grad);
        let decay = reference::row_decay(&fs, &bags, &vec![wd as f64; problem.tables.len()], false);
        reference::apply_update(&mut want, &grads, opt, lr as f64, &decay, step as i32);
        for (t, want) in want.iter().enumerate() {
            let got = storage.read_raw(gpu, t).expect("read");
            compare(
                &format!("{opt:?} step {step} table {t}"),
                &got,
                want,
                &storage.layout,
                t,
            );
        }
    }
}

/// The f64 reference table of a raw f32 view (weights, then state).
fn ref_table(raw: &[f32], layout: &StorageLayout, t: usize) -> RefTable {
    let (w, s) = (layout.tables[t].width4 as usize * 4, layout.raw_stride(t));
    let weights: Vec<f32> = raw.chunks(s).flat_map(|r| r[..w].to_vec()).collect();
    let mut table = RefTable::new(&weights, w, layout.optimizer);
    table.state = match layout.optimizer {
        SparseOptimizer::Sgd => vec![],
        SparseOptimizer::RowwiseAdagrad { .. } => raw.chunks(s).map(|r| r[w] as f64).collect(),
        SparseOptimizer::Adam { .. } => raw
            .chunks(s)
            .flat_map(|r| {
                r[w..w + 2 * w]
                    .iter()
                    .map(|&x| x as f64)
                    .collect::<Vec<_>>()
            })
            .collect(),
    };
    table
}

fn compare(what: &str, got: &[f32], want: &RefTable, layout: &StorageLayout, t: usize) {
    let (w, s) = (want.width, layout.raw_stride(t));
    let state = ref_table(got, layout, t).state;
    for (row, raw) in got.chunks(s).enumerate() {
        for d in 0..w {
            let (g, r) = (raw[d] as f64, want.w[row * w + d]);
            let bound = 0.5 * ulp16(r) + STEP.absolute + STEP.relative * r.abs();
            assert!(
                (g - r).abs() <= bound,
                "{what} row {row} col {d}: stored {g} vs reference {r} (bound {bound:e})"
            );
            assert_eq!(raw[d], f16::from_f32(raw[d]).to_f32(), "{what}: not an f16");
        }
    }
    for (k, (&g, &r)) in state.iter().zip(&want.state).enumerate() {
        STEP.check(&format!("{what} state"), k, g as f32, r, r.abs());
    }
}

#[test]
fn f16_update_matches_reference_for_sgd_adagrad_and_adam() {
    let problem = update_problem(Ids::Uniform, true);
    check_update(&problem, SGD, 3, 10, false);
    check_update(&problem, ADAGRAD, 3, 11, true);
    check_update(&problem, ADAM, 3, 12, true);
}

#[test]
fn f16_update_matches_reference_on_a_hot_row_and_zipf_ids() {
    check_update(&update_problem(Ids::Hot, false), ADAGRAD, 3, 13, false);
    check_update(&update_problem(Ids::Zipf(1.2), true), ADAM, 2, 14, true);
}

/// One SGD step on `rows` rows of width 4, each row touched once: rows start at ±1 and get a
/// gradient that lands them at ±(1 + frac·2^-10), strictly between two f16 neighbours. Returns
/// the stored weights.
fn stochastic_step(rows: u32, frac: f64, seed: Option<u64>, step: u64) -> Vec<f32> {
    let gpu = gpu();
    let tables = [TableSpec::whole(rows, 4)];
    let storage =
        EmbeddingStorage::with_element(gpu, &tables, SGD, Element::F16, None).expect("storage");
    let signs: Vec<f32> = (0..rows)
        .map(|r| if r % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let init: Vec<f32> = signs.iter().flat_map(|&s| [s; 4]).collect();
    storage.write_weights(gpu, 0, &init).expect("write");
    let fs = FeatureSet::concatenated(&storage.layout, &[(0, Pooling::Sum, vec![])], rows, rows)
        .expect("features");
    let mut forward = TbeForward::new(gpu, &storage, fs.clone(), rows as u64).expect("forward");
    let grad_buffer = gpu.buffer("grad", fs.out_len * 4, storage_usage());
    let mut update =
        TbeUpdate::new(gpu, &storage, &forward, &grad_buffer, rows as u64).expect("update");
    update.set_stochastic_rounding(seed);
    let bags = Bags {
        batch_size: rows,
        offsets: (0..=rows).collect(),
        indices: (0..rows).collect(),
        weights: None,
    };
    // lr = 1: w − g = s·(1 + frac·2^-10) for g = −s·frac·2^-10.
    let delta = (frac * 2f64.powi(-10)) as f32;
    let grad: Vec<f32> = signs.iter().flat_map(|&s| [-s * delta; 4]).collect();
    gpu.queue
        .write_buffer(&grad_buffer, 0, bytemuck::cast_slice(&grad));
    forward.upload(gpu, &storage, &bags).expect("bags");
    let plan = SparseUpdatePlan::build(&fs, &bags);
    let hyper = SparseStep {
        lr: 1.0,
        weight_decay: 0.0,
        step,
    };
    update.upload(gpu, &forward, &plan, hyper).expect("plan");
    run_once(gpu, |pass| update.record(gpu, pass));
    gpu.sync().expect("gpu");
    storage.read_weights(gpu, 0).expect("read")
}

#[test]
fn stochastic_rounding_is_unbiased_and_deterministic_for_a_seed() {
    let (rows, frac) = (4096u32, 0.3);
    let got = stochastic_step(rows, frac, Some(7), 1);
    let ulp = 2f64.powi(-10);
    // Each stored value is one of the two neighbours: (|w| − 1)/ulp is 0 or 1, 1 with probability
    // p = the f32 value's dropped fraction (0.3 up to f32 rounding of the update).
    let mut ups = 0usize;
    for (i, &w) in got.iter().enumerate() {
        let k = (w.abs() as f64 - 1.0) / ulp;
        assert!(
            k == 0.0 || k == 1.0,
            "[{i}]: {w} is not a neighbour of 1 + {frac} ulp"
        );
        assert_eq!(
            w.signum(),
            if (i / 4) % 2 == 0 { 1.0 } else { -1.0 },
            "[{i}] sign"
        );
        ups += k as usize;
    }
    // n = 16384 Bernoulli(0.3) draws: σ of the mean = √(0.21 / n) ≈ 0.0036; 5σ = 0.018 fails a
    // fair generator with probability < 1e-6 (and round-to-nearest, mean 0, always).
    let n = got.len() as f64;
    let mean = ups as f64 / n;
    let five_sigma = 5.0 * (frac * (1.0 - frac) / n).sqrt();
    assert!(
        (mean - frac).abs() < five_sigma,
        "mean {mean} vs {frac} ± {five_sigma}"
    );
    // The mean stored value converges to the f32 value (both signs: unbiased in magnitude).
    assert_eq!(
        got,
        stochastic_step(rows, frac, Some(7), 1),
        "same seed, same bits"
    );
    assert_ne!(
        got,
        stochastic_step(rows, frac, Some(8), 1),
        "another seed, other bits"
    );
    assert_ne!(
        got,
        stochastic_step(rows, frac, Some(7), 2),
        "another step, other bits"
    );
    let nearest = stochastic_step(rows, frac, None, 1);
    assert!(
        nearest.iter().all(|w| w.abs() == 1.0),
        "0.3 ulp rounds to nearest: 1"
    );
}

/// TIM over f16 tables reads the same f32 values as over f32 tables holding them: u and the
/// gradient rows are bit-identical (the f32 TIM is checked against its f64 reference in tim.rs).
#[test]
fn tim_over_f16_tables_is_tim_over_their_values() {
    let gpu = gpu();
    let (d, sets, max_batch, max_len) = (12u32, 2usize, 5u32, 40u32);
    let rows = [37u32, 11, 16];
    let specs: Vec<TableSpec> = (0..sets)
        .flat_map(|_| rows.map(|r| TableSpec::whole(r, d)))
        .collect();
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
    let mut rng = Rng::new(21);
    let lengths = [3u32, 40, 0, 17, 1];
    let total: u32 = lengths.iter().sum();
    let ids = |n: u32, rng: &mut Rng| -> Vec<u32> {
        (0..2 * n)
            .map(|i| rng.below(rows[(i % 2) as usize] as u64) as u32)
            .collect()
    };
    let batch = TimBatch {
        lengths: lengths.to_vec(),
        target: ids(lengths.len() as u32, &mut rng),
        behaviours: ids(total, &mut rng),
        buckets: (0..total).map(|_| 1 + rng.below(15) as u32).collect(),
    };
    let tables = reference::random_tables(&specs, &mut rng);
    let n = sets as u64 * max_batch as u64 * d as u64 * 4;
    let g: Vec<f32> = (0..n / 4).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let mut outputs = Vec::new();
    for (element, chunk) in [(Element::F16, Some(2048)), (Element::F32, None)] {
        let storage =
            EmbeddingStorage::with_element(gpu, &specs, ADAGRAD, element, chunk).expect("storage");
        for (t, w) in tables.iter().enumerate() {
            let as_f16: Vec<f32> = w.iter().map(|&x| f16::from_f32(x).to_f32()).collect();
            storage.write_weights(gpu, t, &as_f16).expect("write");
        }
        let u = gpu.buffer("u", n, storage_usage());
        let grad_u = gpu.buffer("grad_u", n, storage_usage());
        gpu.queue.write_buffer(&grad_u, 0, bytemuck::cast_slice(&g));
        let mut tim = Tim::new(gpu, &storage, spec.clone(), &u, &grad_u).expect("tim");
        tim.upload(gpu, &storage, &batch).expect("upload");
        poison(gpu, &u);
        poison(gpu, tim.row_grads());
        run_once(gpu, |pass| {
            tim.record_forward(gpu, pass);
            tim.record_backward(gpu, pass);
        });
        gpu.sync().expect("gpu");
        let u: Vec<u32> = gpu.read_all(&u).expect("u");
        let r: Vec<u32> = gpu.read_all(tim.row_grads()).expect("rows");
        assert!(
            u.iter().all(|&x| f32::from_bits(x).is_finite()),
            "{element:?}: u written"
        );
        outputs.push((u, r, storage.layout.chunks()));
    }
    assert!(outputs[0].2 > 1, "the f16 case must span chunks");
    assert_eq!(outputs[0].0, outputs[1].0, "u");
    assert_eq!(outputs[0].1, outputs[1].1, "gradient rows");
}
