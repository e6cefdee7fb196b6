//! The section's host arithmetic on hand-built inputs: gate tallies, ratio bins, comparable-sample
//! splits and the report text. The gate read-back itself is tested on the GPU in
//! `kernels_tests/graph_gates.rs`.

use super::*;

/// Exact pairwise AUC (ties half), the definition, for cross-checking `crate::metrics::auc`.
fn brute_auc(scores: &[f32], labels: &[f32]) -> Option<f64> {
    let (mut pairs, mut wins) = (0.0, 0.0);
    for (i, &yi) in labels.iter().enumerate() {
        for (j, &yj) in labels.iter().enumerate() {
            if yi == 1.0 && yj == 0.0 {
                pairs += 1.0;
                wins += match scores[i].partial_cmp(&scores[j]) {
                    Some(std::cmp::Ordering::Greater) => 1.0,
                    Some(std::cmp::Ordering::Equal) => 0.5,
                    _ => 0.0,
                };
            }
        }
    }
    (pairs > 0.0).then(|| wins / pairs)
}

#[test]
fn gate_tally_means_match_a_host_computation_over_two_batches() {
    let third = 1.0 / 3.0;
    // [towers 2, rows 2, experts 3], then [2, 1, 3].
    let first: Vec<f32> = vec![
        0.5, 0.25, 0.25, 0.0, 1.0, 0.0, // tower 0
        0.2, 0.2, 0.6, third, third, third, // tower 1 (a three-way tie: a third each)
    ];
    let second: Vec<f32> = vec![0.1, 0.1, 0.8, 0.7, 0.3, 0.0];
    let mut tally = GateTally::new(2, 3);
    assert_eq!(tally.means(), None, "no sample yet");
    tally.push(&first, 2).unwrap();
    tally.push(&second, 1).unwrap();
    let m = tally.means().unwrap();
    assert_eq!(m.rows, 3);
    // Host reference: per tower, the three samples' rows, f64.
    let rows = |u: usize| -> Vec<&[f32]> {
        vec![
            &first[(u * 2) * 3..][..3],
            &first[(u * 2 + 1) * 3..][..3],
            &second[u * 3..][..3],
        ]
    };
    for u in 0..2 {
        let samples = rows(u);
        for e in 0..3 {
            let want = samples.iter().map(|r| f64::from(r[e])).sum::<f64>() / 3.0;
            // Three f64 additions of f32 values: within a few ulps of the reference sum.
            assert!((m.mean[u][e] - want).abs() < 1e-15, "mean[{u}][{e}]");
        }
        let h: f64 = (samples.iter())
            .map(|r| {
                -r.iter()
                    .map(|&g| f64::from(g))
                    .filter(|&g| g > 0.0)
                    .map(|g| g * g.ln())
                    .sum::<f64>()
            })
            .sum::<f64>()
            / 3.0;
        assert!((m.entropy[u] - h).abs() < 1e-15, "entropy[{u}]");
        let total: f64 = m.mean[u].iter().sum();
        assert!(
            (total - 1.0).abs() < 1e-7,
            "tower {u} sums to {total} (f32 weights)"
        );
    }
    assert_eq!(
        m.top_share[0],
        [1.0 / 3.0; 3],
        "each sample's largest weight elsewhere"
    );
    let tied = 1.0 / 3.0 / 3.0;
    let want = [1.0 / 3.0 + tied, tied, 1.0 / 3.0 + tied];
    for (e, w) in want.iter().enumerate() {
        assert!((m.top_share[1][e] - w).abs() < 1e-15, "top_share[1][{e}]");
    }
}

#[test]
fn gate_tally_refuses_a_wrong_length_and_a_weight_outside_the_unit_interval() {
    let mut tally = GateTally::new(2, 3);
    let err = tally.push(&[0.5; 5], 1).unwrap_err().to_string();
    assert!(err.contains("towers 2 × rows 1 × experts 3"), "{err}");
    let mut bad = vec![0.25f32; 6];
    bad[4] = f32::NAN;
    let err = tally.push(&bad, 1).unwrap_err().to_string();
    assert!(err.contains("tower 1, batch row 0, expert 1"), "{err}");
    bad[4] = 1.5;
    assert!(tally.push(&bad, 1).is_err());
    assert_eq!(tally.means(), None, "a refused batch counts no rows");
}

#[test]
fn ratio_bins_cut_quantiles_and_keep_ties_together() {
    let distinct: Vec<Option<f64>> = (0..10).map(|i| Some(f64::from(9 - i) / 10.0)).collect();
    let bins = assign_bins(&distinct, 5);
    let want: Vec<Option<usize>> = (0..10).map(|i| Some((9 - i) / 2)).collect();
    assert_eq!(bins, want);
    // Six samples at 0.5, four at 1.0, one without: ties cannot be cut.
    let mut tied = vec![Some(1.0); 4];
    tied.extend([Some(0.5); 6]);
    tied.push(None);
    let bins = assign_bins(&tied, 5);
    assert_eq!(&bins[..4], &[Some(3); 4]);
    assert_eq!(&bins[4..10], &[Some(0); 6]);
    assert_eq!(bins[10], None);
    assert_eq!(assign_bins(&[None, None], 5), [None, None]);
    assert!(assign_bins(&[], 5).is_empty());
}

/// Users 1–5 with distinct ratios, 6 with labels but no positives, 7 absent from training.
fn training_counts() -> PositiveCounts {
    // (user, click, love) rows; −1 is a missing label and counts nowhere.
    let rows: [(u64, f32, f32); 14] = [
        (1, 1.0, 0.0),
        (1, 0.0, 1.0), // ρ 0.5
        (2, 1.0, 1.0),
        (2, 1.0, 0.0),
        (2, 1.0, -1.0), // ρ 0.75
        (3, 1.0, 0.0),
        (3, 1.0, 0.0), // ρ 1
        (4, 1.0, 1.0),
        (4, 0.0, 1.0),
        (4, -1.0, 1.0), // ρ 0.25
        (5, 0.0, 1.0),  // ρ 0
        (6, 0.0, 0.0),
        (6, -1.0, 0.0),
        (6, 0.0, -1.0), // no positives
    ];
    let mut counts = PositiveCounts::new(2);
    let users: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let labels: Vec<f32> = rows.iter().flat_map(|r| [r.1, r.2]).collect();
    // Two batches, as the training split arrives.
    counts.push(&users[..5], &labels[..10]).unwrap();
    counts.push(&users[5..], &labels[10..]).unwrap();
    counts
}

#[test]
fn comparable_splits_bin_users_by_their_training_ratio_and_score_each_bin() {
    let counts = training_counts();
    assert_eq!(counts.ratio(2), Some(0.75));
    assert_eq!((counts.ratio(6), counts.ratio(7)), (None, None));
    // (user, click, love, p_click, p_love), users interleaved as in a file.
    let test: [(u64, f32, f32, f32, f32); 13] = [
        (5, 1.0, 0.0, 0.9, 0.2),
        (3, 1.0, 0.0, 0.6, 0.3),
        (4, 1.0, 1.0, 0.4, 0.6),
        (6, 1.0, 0.0, 0.2, 0.6),
        (1, 0.0, 0.0, 0.1, 0.1),
        (2, 1.0, -1.0, 0.7, 0.7),
        (7, 1.0, 1.0, 0.5, 0.5),
        (5, 0.0, 1.0, 0.3, 0.1),
        (4, 0.0, 0.0, 0.4, 0.5),
        (1, 0.0, 0.0, 0.2, 0.3),
        (2, 0.0, 0.0, 0.2, 0.9),
        (3, 0.0, 1.0, 0.5, 0.8),
        (6, 0.0, 1.0, 0.8, 0.7),
    ];
    let users: Vec<u64> = test.iter().map(|r| r.0).collect();
    let labels: Vec<f32> = test.iter().flat_map(|r| [r.1, r.2]).collect();
    let predictions: Vec<f32> = test.iter().flat_map(|r| [r.3, r.4]).collect();
    let scored = Scored {
        tasks: 2,
        users: &users,
        labels: &labels,
        predictions: &predictions,
    };
    let splits = comparable_splits(&counts, scored).unwrap();
    let bins: Vec<&str> = splits.iter().map(|s| s.bin.as_str()).collect();
    assert_eq!(bins, ["q1", "q2", "q3", "q4", "q5", "none", "all"]);
    // One user per quantile bin (two samples each), ascending ρ: 5, 4, 1, 2, 3.
    let ranges: Vec<Option<[f64; 2]>> = splits.iter().map(|s| s.range).collect();
    let r = |v: f64| Some([v, v]);
    assert_eq!(
        ranges,
        [r(0.0), r(0.25), r(0.5), r(0.75), r(1.0), None, None]
    );
    let shape: Vec<(usize, usize)> = splits.iter().map(|s| (s.users, s.rows)).collect();
    assert_eq!(
        shape,
        [(1, 2), (1, 2), (1, 2), (1, 2), (1, 2), (2, 3), (7, 13)]
    );
    // By hand: q1 click 0.9 > 0.3, love 0.1 < 0.2; q2 click tied; q3 no positive; q4 love has one
    // labelled (negative) sample; none: click positives 0.2, 0.5 below 0.8, love 0.7 > 0.6 > 0.5.
    let aucs: Vec<Vec<Option<f64>>> = splits.iter().map(|s| s.auc.clone()).collect();
    let hand = [
        [Some(1.0), Some(0.0)],
        [Some(0.5), Some(1.0)],
        [None, None],
        [Some(1.0), None],
        [Some(1.0), Some(1.0)],
        [Some(0.0), Some(0.5)],
    ];
    for (k, want) in hand.iter().enumerate() {
        assert_eq!(aucs[k], want, "{}", splits[k].bin);
    }
    let positives: Vec<Vec<usize>> = splits.iter().map(|s| s.positives.clone()).collect();
    assert_eq!(
        positives[..6],
        [[1, 1], [1, 1], [0, 0], [1, 0], [1, 1], [2, 2]]
    );
    assert_eq!(positives[6], [6, 5]);
    // `all` against the pairwise definition.
    for (t, &got) in aucs[6].iter().enumerate() {
        let col = |v: &[f32]| -> Vec<f32> { v.iter().skip(t).step_by(2).copied().collect() };
        let want = brute_auc(&col(&predictions), &col(&labels));
        assert_eq!(got, want, "all, task {t}");
        assert!(want.is_some_and(|a| a > 0.0 && a < 1.0), "a mixed example");
    }
}

#[test]
fn comparable_splits_refuse_mismatched_lengths() {
    let counts = training_counts();
    let scored = Scored {
        tasks: 2,
        users: &[1, 2],
        labels: &[1.0, 0.0, 0.0],
        predictions: &[0.5; 4],
    };
    let err = comparable_splits(&counts, scored).unwrap_err().to_string();
    assert!(err.contains("test labels hold 3 values"), "{err}");
    let mut counts = PositiveCounts::new(2);
    assert!(counts.push(&[1], &[1.0]).is_err());
}

fn section() -> Entanglement {
    Entanglement {
        mixture: "learned".into(),
        experts: vec!["shared/t0".into(), "click/t0".into(), "love/t0".into()],
        towers: vec!["click".into(), "love".into()],
        gate_rows: 1234,
        gate_mean: vec![vec![0.5, 0.375, 0.125], vec![0.25, 0.0625, 0.6875]],
        gate_top_share: vec![vec![0.9, 0.1, 0.0], vec![0.0, 0.2, 0.8]],
        gate_entropy: vec![0.4321, 0.8765],
        tasks: vec!["click".into(), "love".into()],
        ratio: RATIO.into(),
        group: Some("user_id".into()),
        splits: vec![Split {
            bin: "q1".into(),
            range: Some([0.125, 0.5]),
            users: 17,
            rows: 345,
            auc: vec![Some(0.7531), None],
            positives: vec![123, 0],
        }],
        splits_skipped: None,
        figures: vec!["entangle-gates.png".into(), "entangle-gates.svg".into()],
    }
}

#[test]
fn the_report_holds_every_number_of_the_json() {
    let md = section().markdown();
    for needle in [
        "| shared/t0 | click/t0 | love/t0 |",
        "1234 test samples",
        "| click | 0.5000 | 0.3750 | 0.1250 | 0.4321 |",
        "| love | 0.2500 | 0.0625 | 0.6875 | 0.8765 |",
        "| click | 0.9000 | 0.1000 | 0.0000 | 0.4321 |",
        "| q1 | 0.1250–0.5000 | 17 | 345 | 0.7531 | – | 123 | 0 |",
        "`user_id`",
        "![gate usage](entangle-gates.png)",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from\n{md}");
    }
    assert!(
        !md.contains("entangle-splits.png"),
        "no figure that was not written"
    );
}

#[test]
fn a_shared_bottom_says_it_has_no_gate_and_skipped_splits_say_why() {
    let mut s = section();
    s.mixture = "uniform".into();
    s.splits.clear();
    s.splits_skipped = Some("no users".into());
    let md = s.markdown();
    assert!(md.contains("Shared bottom: no gate"), "{md}");
    assert!(md.contains("Skipped: no users."), "{md}");
    let json = serde_json::to_value(&s).unwrap();
    for key in [
        "experts",
        "towers",
        "gate_mean",
        "gate_top_share",
        "splits",
        "mixture",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
}
