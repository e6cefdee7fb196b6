//! Ranking policies at the command line: `wgrec predict --policy` (the `p_` columns unchanged,
//! requests as runs of a column, seeds) and, on a model with uncertainty heads, `wgrec policy
//! --rule thompson|ucb:<c>` and `wgrec predict --policy thompson`; clear errors without a head.

use std::path::Path;

use crate::ok;
use crate::policy::{policy, trained, trained_with, MODEL};
use crate::temp;
use crate::wgrec;

pub fn predict(dir: &Path, args: &[&str]) -> std::process::Output {
    wgrec()
        .args(["predict", "--checkpoint", "run", "--input", "data/test.tsv"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run wgrec")
}

/// A TSV's columns by header name.
fn columns(path: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).expect("read");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    (header.iter().enumerate())
        .map(|(c, h)| {
            (
                h.to_string(),
                rows.iter().map(|r| r[c].to_owned()).collect(),
            )
        })
        .collect()
}

#[test]
fn predict_with_a_policy_keeps_p_and_ranks_runs_of_the_request_column() {
    let dir = temp("predict-policy");
    trained(&dir);
    ok(&predict(&dir, &["--output", "plain.tsv"]));
    let ranked = ["--policy", "greedy", "--request-column", "user"];
    ok(&predict(
        &dir,
        &[&ranked[..], &["--output", "g.tsv"]].concat(),
    ));
    let (plain, g) = (columns(&dir.join("plain.tsv")), columns(&dir.join("g.tsv")));
    assert_eq!(g["p_click"], plain["p_click"], "p_ stays bit-identical");
    let keys: Vec<&str> = g.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["p_click", "rank_click", "score_click"],
        "no head: no mean/sd"
    );
    let users = columns(&dir.join("data/test.tsv"))["user"].clone();
    let p: Vec<f32> = g["p_click"].iter().map(|v| v.parse().expect("p")).collect();
    let mut start = 0;
    while start < users.len() {
        let end = (start..users.len())
            .find(|&r| users[r] != users[start])
            .unwrap_or(users.len());
        for r in start..end {
            let better = (start..end)
                .filter(|&o| p[o] > p[r] || (p[o] == p[r] && o < r))
                .count();
            assert_eq!(
                g["rank_click"][r],
                better.to_string(),
                "row {r} in {start}..{end}"
            );
            assert_eq!(
                g["score_click"][r].parse::<f64>().expect("score"),
                p[r] as f64
            );
        }
        start = end;
    }
    // ε = 1 shuffles every request (here the whole file: propensity is 0.25 on every row):
    // the same seed gives the same file, another seed another order.
    let eps = |seed: &str, out: &str| {
        let args = ["--policy", "epsilon:1", "--request-column", "propensity"];
        ok(&predict(
            &dir,
            &[&args[..], &["--seed", seed, "--output", out]].concat(),
        ));
        columns(&dir.join(out))
    };
    let (a, b, c) = (eps("3", "a.tsv"), eps("3", "b.tsv"), eps("4", "c.tsv"));
    assert_eq!(a, b);
    assert_ne!(a["rank_click"], c["rank_click"]);
    assert_eq!(a["p_click"], plain["p_click"]);
    let mut places: Vec<usize> = a["rank_click"]
        .iter()
        .map(|v| v.parse().expect("place"))
        .collect();
    places.sort_unstable();
    assert_eq!(
        places,
        (0..25).collect::<Vec<_>>(),
        "one request of 25 rows"
    );
}

#[test]
fn belief_policies_without_a_head_and_unknown_request_columns_are_clear_errors() {
    let dir = temp("predict-policy-errors");
    trained(&dir);
    for (args, message) in [
        (vec!["--policy", "thompson"], "uncertainty head"),
        (vec!["--policy", "ucb:1"], "uncertainty head"),
        (
            vec!["--policy", "greedy", "--request-column", "colour"],
            "\"colour\"",
        ),
        (vec!["--policy", "boltzmann"], "\"boltzmann\""),
    ] {
        let out = predict(&dir, &[&args[..], &["--output", "x.tsv"]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(message),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !dir.join("x.tsv").exists(),
            "{stderr}"
        );
    }
    let out = policy(
        &dir,
        &[
            "--actions-from",
            "data/train.tsv",
            "--action-columns",
            "item_id,item_feature_0,item_feature_1",
        ]
        .into_iter()
        .chain(["--rule", "thompson", "--out", "t.tsv"])
        .collect::<Vec<_>>(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("uncertainty head"),
        "{stderr}"
    );
    assert!(!dir.join("t.tsv").exists());
}

#[test]
fn on_a_model_with_heads_thompson_and_ucb_policies_and_predictions_read_the_belief() {
    let dir = temp("policy-heads");
    let model = MODEL.replace(
        "loss = \"bce\"\n",
        "loss = \"bce\"\nuncertainty = { kind = \"bootstrap\", heads = 4 }\n",
    );
    assert_ne!(model, MODEL);
    trained_with(&dir, &model);
    let cand = ["--actions-from", "data/train.tsv", "--action-columns"];
    let cand = [&cand[..], &["item_id,item_feature_0,item_feature_1"]].concat();
    let run = |rule: &str, out: &str| {
        let args = [
            "--rule",
            rule,
            "--draws",
            "400",
            "--out",
            out,
            "--reward-model",
            "q.tsv",
        ];
        ok(&policy(&dir, &[&cand[..], &args].concat()));
        let text = std::fs::read_to_string(dir.join(out)).expect("read");
        let rows: Vec<Vec<f64>> = (text.lines().skip(1))
            .map(|l| {
                l.split('\t')
                    .map(|v| v.parse().expect("a number"))
                    .collect()
            })
            .collect();
        rows
    };
    let (t, u) = (run("thompson", "t.tsv"), run("ucb:1", "u.tsv"));
    assert_eq!((t.len(), u.len()), (25, 25));
    for (ti, ui) in t.iter().zip(&u) {
        assert!((ti.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{ti:?}");
        // Exact for K = 4 bootstrap heads: each probability is a share of the heads.
        let shares = ti
            .iter()
            .all(|&v| (v * 4.0 - (v * 4.0).round()).abs() < 1e-9);
        assert!(shares, "{ti:?}");
        assert_eq!(
            ui.iter().filter(|&&v| v == 1.0).count(),
            1,
            "UCB is one-hot: {ui:?}"
        );
    }
    assert_eq!(run("thompson", "t2.tsv"), t, "a seed gives the same file");
    ok(&predict(&dir, &["--output", "plain.tsv"]));
    ok(&predict(
        &dir,
        &["--policy", "thompson", "--output", "ts.tsv"],
    ));
    let (plain, ts) = (
        columns(&dir.join("plain.tsv")),
        columns(&dir.join("ts.tsv")),
    );
    assert_eq!(
        ts["p_click"], plain["p_click"],
        "p_ stays bit-identical with a head"
    );
    let keys: Vec<&str> = ts.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "mean_click",
            "p_click",
            "rank_click",
            "score_click",
            "sd_click"
        ]
    );
    let num =
        |c: &str| -> Vec<f64> { ts[c].iter().map(|v| v.parse().expect("a number")).collect() };
    let (score, mean, sd) = (num("score_click"), num("mean_click"), num("sd_click"));
    for (r, ((s, m), d)) in score.iter().zip(&mean).zip(&sd).enumerate() {
        // One of K = 4 heads lies within (K − 1)/√K sample deviations of their mean.
        let z = (s / (1.0 - s)).ln();
        assert!((z - m).abs() <= 1.5 * d + 1e-4, "row {r}: {s} {m} {d}");
    }
}

#[test]
fn predict_bids_multiply_the_score_and_bad_bids_name_the_line() {
    let dir = temp("predict-bids");
    trained(&dir);
    // `position` (1–3) as the bid: greedy ranks each user's run by p · position.
    let args = [
        "--policy",
        "greedy",
        "--request-column",
        "user",
        "--bid-column",
        "position",
    ];
    ok(&predict(
        &dir,
        &[&args[..], &["--output", "b.tsv"]].concat(),
    ));
    let (b, data) = (
        columns(&dir.join("b.tsv")),
        columns(&dir.join("data/test.tsv")),
    );
    let bid: Vec<f64> = data["position"]
        .iter()
        .map(|v| v.parse().expect("bid"))
        .collect();
    let p: Vec<f32> = b["p_click"].iter().map(|v| v.parse().expect("p")).collect();
    let score: Vec<f64> = b["score_click"]
        .iter()
        .map(|v| v.parse().expect("s"))
        .collect();
    let users = &data["user"];
    let mut start = 0;
    while start < users.len() {
        let end = (start..users.len())
            .find(|&r| users[r] != users[start])
            .unwrap_or(users.len());
        for r in start..end {
            assert_eq!(
                score[r],
                p[r] as f64 * bid[r],
                "row {r}: the score is bid · p"
            );
            let better = (start..end)
                .filter(|&o| score[o] > score[r] || (score[o] == score[r] && o < r))
                .count();
            assert_eq!(b["rank_click"][r], better.to_string(), "row {r}");
        }
        start = end;
    }
    // item_feature_0 is −0.7 on item 0: a negative bid names the file's line and the column.
    let bad = [
        "--policy",
        "greedy",
        "--bid-column",
        "item_feature_0",
        "--output",
        "x.tsv",
    ];
    let out = predict(&dir, &bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("item_feature_0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("-0.7") && stderr.contains("test.tsv:"),
        "{stderr}"
    );
    assert!(!dir.join("x.tsv").exists() && !stderr.contains("panicked"));
    let out = predict(
        &dir,
        &[
            "--policy",
            "greedy",
            "--bid-column",
            "colour",
            "--output",
            "x.tsv",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("\"colour\""),
        "{stderr}"
    );
}
