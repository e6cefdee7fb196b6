//! Tests of the TIM correlation section: the statistics on hand-checked examples, the MI map of a
//! hand-built batch, the host attention against the GPU's TIM, the columns, errors, and the report.

use std::path::PathBuf;

use super::attention::{Table, TimRows};
use super::cells::{relation, Column, Tally};
use super::stats::{average_ranks, spearman, Counts};
use super::{add_batch, correlate, Sequence, TimCorrelation};
use crate::data::encode::{FeatureInput, ModelBatch};
use crate::kernels::tim::TimBatch;
use crate::rng::Rng;

mod gpu;
mod report;

/// `n` floats uniform in [−1, 1) (never all zero).
pub(super) fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// Item (10 rows), genre (4 rows) and temporal (N_T = 5) tables of width `d`.
pub(super) struct Tables {
    pub item: Vec<f32>,
    pub genre: Vec<f32>,
    pub time: Vec<f32>,
    pub d: usize,
}

impl Tables {
    pub fn random(seed: u64, d: usize) -> Self {
        let mut rng = Rng::new(seed);
        Tables {
            item: random(&mut rng, 10 * d),
            genre: random(&mut rng, 4 * d),
            time: random(&mut rng, 5 * d),
            d,
        }
    }

    pub fn rows(&self) -> TimRows<'_> {
        let d = self.d;
        fn t<'a>(name: &str, data: &'a [f32], d: usize) -> Table<'a> {
            Table {
                name: name.into(),
                data,
                rows: data.len() / d,
            }
        }
        let semantic = vec![
            t("emb.0.item", &self.item, d),
            t("emb.0.genre", &self.genre, d),
        ];
        let temporal = t("emb.0.history.time", &self.time, d);
        TimRows::new(
            PathBuf::from("test.safetensors"),
            semantic,
            temporal,
            self.d,
        )
        .expect("rows")
    }
}

fn sequence() -> Sequence {
    Sequence {
        index: 0,
        name: "history".into(),
        semantic: vec!["item".into(), "genre".into()],
        buckets: 5,
        bucketing: "position".into(),
    }
}

/// One sample: label, target (item, genre), behaviours (item, genre, bucket).
type Sample = (f32, [u32; 2], Vec<(u32, u32, u32)>);

/// A batch of `samples`, each repeated `times` times, one task.
fn batch(samples: &[Sample], times: usize) -> ModelBatch {
    let mut tb = TimBatch::default();
    let mut labels = Vec::new();
    for (y, target, seq) in samples.iter().flat_map(|s| std::iter::repeat_n(s, times)) {
        labels.push(*y);
        tb.lengths.push(seq.len() as u32);
        tb.target.extend_from_slice(target);
        for &(item, genre, bucket) in seq {
            tb.behaviours.extend([item, genre]);
            tb.buckets.push(bucket);
        }
    }
    ModelBatch {
        rows: labels.len(),
        lines: (2..2 + labels.len() as u64).collect(),
        features: vec![FeatureInput::Sequence(tb)],
        labels,
        weights: None,
        groups: None,
    }
}

/// The hand example: relations 0 same item, 1 same genre, 2 unrelated; buckets 1 and 2.
///   A y=1 target (5,2): (5,2)@1 same item, (7,2)@2 same genre      cells {01, 12}
///   B y=1 target (6,3): (8,3)@1 same genre, (9,1)@1 unrelated      cells {11, 21}
///   C y=0 target (5,2): (7,1)@2 unrelated                          cells {22}
///   D y=0 target (6,3): (6,3)@2, (9,3)@2, (4,1)@2 one of each      cells {02, 12, 22}
///   E y=0 target (5,2): no behaviour
///   F label missing (−1): skipped, although it has a same-item behaviour at bucket 1
fn hand_samples() -> Vec<Sample> {
    vec![
        (1.0, [5, 2], vec![(5, 2, 1), (7, 2, 2)]),
        (1.0, [6, 3], vec![(8, 3, 1), (9, 1, 1)]),
        (0.0, [5, 2], vec![(7, 1, 2)]),
        (0.0, [6, 3], vec![(6, 3, 2), (9, 3, 2), (4, 1, 2)]),
        (0.0, [5, 2], vec![]),
        (-1.0, [5, 2], vec![(5, 2, 1), (5, 2, 1)]),
    ]
}

fn hand_result(tables: &Tables, times: usize) -> TimCorrelation {
    let rows = [tables.rows()];
    let mut tally = Tally::new(3, 5, 1);
    add_batch(
        &mut tally,
        &batch(&hand_samples(), times),
        &sequence(),
        &rows,
        "t.tsv",
    )
    .expect("tally");
    correlate(&sequence(), "click".into(), &tally)
}

#[test]
fn mutual_information_matches_a_two_by_two_by_hand() {
    // n11 = 3, n10 = 1, n01 = 1, n00 = 3 of N = 8: p(x) = p(y) = 1/2, so
    // MI = 2·(3/8)·ln((3/8)/(1/4)) + 2·(1/8)·ln((1/8)/(1/4)) = 0.75 ln 1.5 + 0.25 ln 0.5.
    let c = Counts {
        with: 4,
        with_positive: 3,
        samples: 8,
        positives: 4,
    };
    let want = 0.75 * 1.5f64.ln() + 0.25 * 0.5f64.ln();
    let got = c.mutual_information(1).expect("defined");
    assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    assert!((want - 0.130_812).abs() < 1e-6, "the arithmetic: {want}");
    // Independent X and Y: 0 (clamped, never a rounding negative).
    let indep = Counts {
        with: 6,
        with_positive: 2,
        samples: 12,
        positives: 4,
    };
    assert_eq!(indep.mutual_information(1), Some(0.0));
    // Too few samples with X = 1, or with X = 0, or inconsistent counts: undefined.
    assert_eq!(c.mutual_information(5), None);
    let all = Counts { with: 8, ..c };
    assert_eq!(all.mutual_information(1), None);
    let broken = Counts {
        with_positive: 5,
        ..c
    };
    assert_eq!(broken.mutual_information(1), None);
}

#[test]
fn the_mi_map_of_a_hand_built_batch_matches_the_hand_arithmetic() {
    // Each of A..E 100 times (so every cell has ≥ 50 samples on both sides); MI depends on the
    // proportions only, so the 2×2 tables of the five base samples give the answer.
    let r = hand_result(&Tables::random(7, 8), 100);
    assert_eq!(r.relations, ["same item", "same genre", "unrelated"]);
    assert_eq!(r.buckets, ["1", "2"]);
    assert_eq!((r.samples, r.positives), (500, 200));
    // X = 1 on: 01 {A}, 02 {D}, 11 {B}, 12 {A, D}, 21 {B}, 22 {C, D}.
    assert_eq!(r.support, [[100, 100], [100, 200], [100, 200]]);
    assert_eq!(r.behaviours, [[100, 100], [100, 200], [100, 200]]);
    let ln = f64::ln;
    // Cell (same genre, 2): n11 = 1 (A), n10 = 1 (D), n01 = 1 (B), n00 = 2 (C, E); p(x=1) = p(y=1)
    // = 2/5: (1/5)ln((1/5)/(4/25)) + 2·(1/5)ln((1/5)/(6/25)) + (2/5)ln((2/5)/(9/25)).
    let genre_2 = 0.2 * ln(5.0 / 4.0) + 0.4 * ln(5.0 / 6.0) + 0.4 * ln(10.0 / 9.0);
    // Cell (unrelated, 2): n11 = 0, n10 = 2 (C, D), n01 = 2 (A, B), n00 = 1 (E):
    // 2·(2/5)ln((2/5)/(6/25)) + (1/5)ln((1/5)/(9/25)).
    let unrelated_2 = 0.8 * ln(5.0 / 3.0) + 0.2 * ln(5.0 / 9.0);
    // Cell (same item, 1): n11 = 1 (A), n10 = 0, n01 = 1 (B), n00 = 3; p(x=1) = 1/5:
    // (1/5)ln((1/5)/(2/25)) + (1/5)ln((1/5)/(8/25)) + (3/5)ln((3/5)/(12/25)).
    let item_1 = 0.2 * ln(5.0 / 2.0) + 0.2 * ln(5.0 / 8.0) + 0.6 * ln(5.0 / 4.0);
    for (got, want) in [
        (r.mi[1][1], genre_2),
        (r.mi[2][1], unrelated_2),
        (r.mi[0][0], item_1),
    ] {
        let got = got.expect("defined");
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    assert!((genre_2 - 0.013_845).abs() < 1e-6 && (unrelated_2 - 0.291_103).abs() < 1e-6);
    // Cells (same item, 1) and (same genre, 1) hold the same 2×2 table (A's and B's twins).
    assert_eq!(r.mi[0][0], r.mi[1][0]);
}

#[test]
fn uniform_attention_averages_to_one_in_every_cell() {
    // Every row of every table the same vector: all scores equal, α_i = 1/n, α_i·n = 1.
    let mut t = Tables::random(3, 8);
    let row: Vec<f32> = t.item[..8].to_vec();
    for table in [&mut t.item, &mut t.genre, &mut t.time] {
        for chunk in table.chunks_exact_mut(8) {
            chunk.copy_from_slice(&row);
        }
    }
    let r = hand_result(&t, 60);
    for row in &r.attention.tables[0] {
        for v in row {
            assert!((v.expect("defined") - 1.0).abs() < 1e-12, "{v:?}");
        }
    }
    assert_eq!(r.attention.mean, r.attention.tables[0]);
}

#[test]
fn the_attention_map_is_the_mean_of_alpha_times_length_per_cell() {
    // Sample D alone, 60 times: one behaviour in each of (same item, 2), (same genre, 2),
    // (unrelated, 2); each cell's mean α·n is 3·α_i of that behaviour.
    let t = Tables::random(11, 12);
    let rows = t.rows();
    let d = hand_samples().swap_remove(3);
    let mut tally = Tally::new(3, 5, 1);
    add_batch(&mut tally, &batch(&[d], 60), &sequence(), &[rows], "t.tsv").expect("tally");
    let r = correlate(&sequence(), "click".into(), &tally);
    let rows = t.rows();
    let v = rows.embed(&[6, 3], 0).expect("target");
    let mut alpha = Vec::new();
    rows.attention(&v, &[6, 3, 9, 3, 4, 1], &[2, 2, 2], &mut alpha)
        .expect("alpha");
    assert_eq!(r.buckets, ["2"]);
    for (cell, a) in alpha.iter().enumerate() {
        let got = r.attention.tables[0][cell][0].expect("defined");
        assert!((got - 3.0 * a).abs() < 1e-12, "{got} vs {}", 3.0 * a);
    }
    // MI is undefined: every sample has every cell (X = 0 never happens).
    assert!(r.mi.iter().flatten().all(Option::is_none));
    assert_eq!((r.cells, r.spearman), (0, None));
}

#[test]
fn host_attention_matches_a_plain_softmax_of_summed_rows() {
    let t = Tables::random(5, 20);
    let rows = t.rows();
    let sum = |ids: [usize; 2], b: usize| -> Vec<f64> {
        (0..20)
            .map(|j| {
                t.item[ids[0] * 20 + j] as f64
                    + t.genre[ids[1] * 20 + j] as f64
                    + t.time[b * 20 + j] as f64
            })
            .collect()
    };
    let v = sum([4, 1], 0);
    let seq = [([9, 0], 1), ([4, 3], 4), ([2, 1], 2), ([9, 0], 1)];
    let s: Vec<f64> = (seq.iter())
        .map(|&(ids, b)| sum(ids, b).iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() / 20f64.sqrt())
        .collect();
    let z: f64 = s.iter().map(|x| x.exp()).sum();
    let ids: Vec<u32> = seq
        .iter()
        .flat_map(|(ids, _)| ids.map(|i| i as u32))
        .collect();
    let buckets: Vec<u32> = seq.iter().map(|&(_, b)| b as u32).collect();
    let mut alpha = vec![f64::NAN; 9];
    rows.attention(
        &rows.embed(&[4, 1], 0).expect("v"),
        &ids,
        &buckets,
        &mut alpha,
    )
    .expect("alpha");
    assert_eq!(alpha.len(), 4);
    for (a, s) in alpha.iter().zip(&s) {
        assert!((a - s.exp() / z).abs() < 1e-12, "{a} vs {}", s.exp() / z);
    }
    rows.attention(&v, &[], &[], &mut alpha).expect("empty");
    assert!(alpha.is_empty());
}

#[test]
fn relations_come_from_the_ids_and_unknown_ids_are_never_equal() {
    assert_eq!(relation(&[5, 2], &[5, 9]), 0);
    assert_eq!(relation(&[5, 2], &[6, 2]), 1);
    assert_eq!(relation(&[5, 2], &[6, 3]), 2);
    assert_eq!(
        relation(&[0, 2], &[0, 3]),
        2,
        "OOV item rows are not the same item"
    );
    assert_eq!(
        relation(&[5, 0], &[6, 0]),
        2,
        "OOV side rows are not the same side"
    );
    // Without a side feature: same item 0, unrelated 1.
    assert_eq!(relation(&[5], &[5]), 0);
    assert_eq!(relation(&[5], &[6]), 1);
}

#[test]
fn thin_buckets_and_everything_after_them_form_one_tail_column() {
    // 100 samples in bucket 1, 100 in 2, 10 in 3 (thin: < 50), 80 in 4: columns 1, 2, 3-4.
    let t = Tables::random(9, 4);
    let rows = [t.rows()];
    let mut tally = Tally::new(3, 5, 1);
    let samples: Vec<Sample> = [(1, 100), (2, 100), (3, 10), (4, 80)]
        .iter()
        .flat_map(|&(b, n)| std::iter::repeat_n((1.0, [5, 2], vec![(7, 1, b)]), n))
        .collect();
    add_batch(&mut tally, &batch(&samples, 1), &sequence(), &rows, "t.tsv").expect("tally");
    let (columns, of) = tally.columns();
    let col = |first, last| Column { first, last };
    assert_eq!(columns, [col(1, 1), col(2, 2), col(3, 4)]);
    assert_eq!(of, [None, Some(0), Some(1), Some(2), Some(2)]);
    let r = correlate(&sequence(), "click".into(), &tally);
    assert_eq!(r.buckets, ["1", "2", "3-4"]);
    assert_eq!(
        r.relations,
        ["unrelated"],
        "rows no behaviour has are dropped"
    );
    assert_eq!(r.support, [[100, 100, 90]]);
}

#[test]
fn spearman_uses_average_ranks_for_ties() {
    assert_eq!(
        average_ranks(&[3.0, 1.0, 3.0, 3.0, 2.0]),
        [4.0, 1.0, 4.0, 4.0, 2.0]
    );
    // Ranks x: 1, 2.5, 2.5, 4; y: 1, 2, 3.5, 3.5; centred on 2.5: (−1.5, 0, 0, 1.5) and
    // (−1.5, −0.5, 1, 1): Σxy = 2.25 + 1.5 = 3.75, Σx² = 4.5, Σy² = 2.25 + 0.25 + 1 + 1 = 4.5,
    // ρ = 3.75 / 4.5 = 5/6.
    let rho = spearman(&[1.0, 2.0, 2.0, 3.0], &[10.0, 20.0, 30.0, 30.0]).expect("defined");
    assert!((rho - 5.0 / 6.0).abs() < 1e-15, "{rho}");
    let rho = spearman(&[1.0, 5.0, 2.0], &[0.3, 0.1, 0.2]).expect("defined");
    assert!((rho + 1.0).abs() < 1e-15, "monotone decreasing: {rho}");
    assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None, "two points");
    assert_eq!(
        spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]),
        None,
        "constant"
    );
}

#[test]
fn the_section_is_deterministic() {
    // One pass in file order, fixed-order f64 sums: two runs serialise identically.
    let t = Tables::random(29, 12);
    let json = || serde_json::to_string(&hand_result(&t, 70)).expect("json");
    assert_eq!(json(), json());
}
