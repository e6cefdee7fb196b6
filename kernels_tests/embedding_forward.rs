//! `tbe_forward` against the CPU reference.

use wgrec::kernels::embedding::{
    EmbeddingStorage, FeatureSet, MnsBase, Pooling, SparseOptimizer, TableSpec, TbeForward,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::{gpu, poison, Tolerance};
use crate::embedding_reference::{self as reference, Ids, Problem};

/// f32 sums of at most a few hundred terms: error ≤ n·ε·Σ|x| with ε = 6e-8; 2e-5 covers n ≤ 300.
const GATHER: Tolerance = Tolerance {
    relative: 2e-5,
    absolute: 1e-6,
};

const ADAGRAD: SparseOptimizer = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };

/// Builds the problem on the GPU, runs one batch of `batch` samples and compares every output the
/// reference writes. Returns the number of chunks the storage used.
pub fn check_forward(problem: &Problem, batch: u32, seed: u64, small_chunks: bool) -> usize {
    check_forward_on(gpu(), problem, batch, seed, small_chunks).0
}

/// [`check_forward`] on `gpu` (a device with a forced variant); returns the chunks used and the
/// whole output buffer.
pub fn check_forward_on(
    gpu: &Gpu,
    problem: &Problem,
    batch: u32,
    seed: u64,
    small_chunks: bool,
) -> (usize, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let optimizer = ADAGRAD;
    let chunk = small_chunks.then(|| problem.small_chunk_bytes(optimizer));
    let storage = EmbeddingStorage::new(gpu, &problem.tables, optimizer, chunk).expect("storage");
    let tables = reference::random_tables(&problem.tables, &mut rng);
    for (t, w) in tables.iter().enumerate() {
        storage.write_weights(gpu, t, w).expect("write table");
    }
    let fs = FeatureSet::concatenated(
        &storage.layout,
        &problem.features,
        problem.max_batch,
        (problem.max_batch * problem.max_bag).max(1),
    )
    .expect("features");
    let mut forward =
        TbeForward::new(gpu, &storage, fs.clone(), problem.max_lookups()).expect("forward");
    let bags = problem.bags(&storage.layout, batch, &mut rng);
    forward.upload(gpu, &storage, &bags).expect("upload");
    poison(gpu, forward.output());
    run_once(gpu, |pass| forward.record(gpu, pass));
    gpu.sync().expect("gpu");
    let got: Vec<f32> = gpu.read_all(forward.output()).expect("read");
    let want = reference::forward(&fs, &tables, &bags);
    for (&i, &(value, magnitude)) in &want {
        GATHER.check("tbe_forward out", i, got[i], value, magnitude);
    }
    (storage.layout.chunks(), got)
}

pub fn mixed_problem(ids: Ids, weighted: bool) -> Problem {
    Problem {
        tables: vec![
            TableSpec { rows: 37, width: 4 },
            TableSpec {
                rows: 101,
                width: 12,
            },
            TableSpec { rows: 5, width: 64 },
            TableSpec { rows: 79, width: 8 },
        ],
        features: vec![
            (0, Pooling::Sum, vec![]),
            (1, Pooling::Mean, vec![]),
            (2, Pooling::Sum, vec![]),
            (1, Pooling::None, vec![]),
            (
                3,
                Pooling::Sum,
                vec![
                    MnsBase {
                        radix: 2,
                        digits: 20,
                    },
                    MnsBase {
                        radix: 3,
                        digits: 13,
                    },
                ],
            ),
        ],
        max_batch: 67,
        max_bag: 5,
        weighted,
        ids,
    }
}

#[test]
fn forward_matches_reference_with_mixed_pooling_widths_and_mns() {
    check_forward(&mixed_problem(Ids::Uniform, false), 67, 1, false);
}

#[test]
fn forward_matches_reference_with_per_lookup_weights() {
    check_forward(&mixed_problem(Ids::Uniform, true), 53, 2, false);
}

#[test]
fn forward_matches_reference_across_chunk_boundaries() {
    let chunks = check_forward(&mixed_problem(Ids::Uniform, true), 67, 3, true);
    assert!(
        chunks >= 3,
        "the test must cross chunk boundaries, used {chunks} chunks"
    );
}

#[test]
fn forward_matches_reference_with_a_hot_row_and_zipf_ids() {
    check_forward(&mixed_problem(Ids::Hot, true), 61, 4, true);
    check_forward(&mixed_problem(Ids::Zipf(1.2), false), 61, 5, false);
}

#[test]
fn forward_writes_zeros_for_empty_bags_and_accepts_an_empty_batch() {
    let mut problem = mixed_problem(Ids::Uniform, false);
    problem.max_bag = 1; // about half the bags are empty
    check_forward(&problem, 67, 6, false);
    check_forward(&problem, 0, 7, false);
}

#[test]
fn forward_handles_long_bags() {
    let problem = Problem {
        tables: vec![TableSpec {
            rows: 3000,
            width: 16,
        }],
        features: vec![(0, Pooling::Mean, vec![]), (0, Pooling::Sum, vec![])],
        max_batch: 3,
        max_bag: 300,
        weighted: true,
        ids: Ids::Zipf(0.8),
    };
    check_forward(&problem, 3, 8, true);
}

#[test]
fn forward_rejects_ids_outside_their_table() {
    let gpu = gpu();
    let problem = mixed_problem(Ids::Uniform, false);
    let storage = EmbeddingStorage::new(gpu, &problem.tables, ADAGRAD, None).expect("storage");
    let fs = FeatureSet::concatenated(&storage.layout, &problem.features, 4, 8).expect("features");
    let mut forward = TbeForward::new(gpu, &storage, fs, 64).expect("forward");
    let mut bags = problem.bags(&storage.layout, 2, &mut Rng::new(9));
    bags.offsets = vec![0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    bags.indices = vec![37];
    let err = forward
        .upload(gpu, &storage, &bags)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("feature 0, lookup 0: row id 37 is out of range (limit 37)"),
        "{err}"
    );
    bags.indices = vec![36];
    bags.offsets.pop();
    let err = forward
        .upload(gpu, &storage, &bags)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("10 offsets for 5 features × 2 samples (need 11)"),
        "{err}"
    );
}

#[test]
fn mns_digit_rows_follow_the_methods_layout() {
    let bases = [
        MnsBase {
            radix: 2,
            digits: 20,
        },
        MnsBase {
            radix: 3,
            digits: 13,
        },
    ];
    assert_eq!(MnsBase::rows(&bases), 79);
    assert_eq!(MnsBase::limit(&bases), 1 << 20);
    // 5 = 101b, and 12 in base 3.
    let rows: Vec<u32> = MnsBase::digit_rows(&bases, 5).collect();
    assert_eq!(&rows[..4], &[1, 2, 5, 6]); // digits 1, 0, 1, 0 at rows 2k + digit
    assert_eq!(&rows[20..23], &[40 + 2, 40 + 3 + 1, 40 + 6]); // digits 2, 1, 0 at rows 40 + 3k + digit
    assert_eq!(rows.len(), 33);
}

#[test]
fn forward_folds_grids_past_65535_workgroups() {
    // 2^22 + 3 samples × one vec4 column = 65,537 workgroups of 64: the grid folds into (x, y).
    let gpu = gpu();
    let batch = (1u32 << 22) + 3;
    let tables = [TableSpec {
        rows: 1000,
        width: 4,
    }];
    let storage = EmbeddingStorage::new(gpu, &tables, ADAGRAD, None).expect("storage");
    let mut rng = Rng::new(31);
    let weights = reference::random_tables(&tables, &mut rng).remove(0);
    storage.write_weights(gpu, 0, &weights).expect("write");
    let fs = FeatureSet::concatenated(&storage.layout, &[(0, Pooling::Sum, vec![])], batch, 1)
        .expect("features");
    let mut forward = TbeForward::new(gpu, &storage, fs, batch as u64).expect("forward");
    let bags = wgrec::kernels::embedding::Bags {
        batch_size: batch,
        offsets: (0..=batch).collect(),
        indices: (0..batch).map(|_| rng.below(1000) as u32).collect(),
        weights: None,
    };
    forward.upload(gpu, &storage, &bags).expect("upload");
    poison(gpu, forward.output());
    run_once(gpu, |pass| forward.record(gpu, pass));
    let got: Vec<f32> = gpu.read_all(forward.output()).expect("read");
    // One term per output: the gather must reproduce the row bit for bit.
    for (b, &id) in bags.indices.iter().enumerate() {
        let want = &weights[id as usize * 4..id as usize * 4 + 4];
        assert_eq!(&got[b * 4..b * 4 + 4], want, "sample {b}");
    }
}
