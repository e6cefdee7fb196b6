//! `wgrec policy` end to end on a tiny OBD-shaped log and a tiny trained model: the files parse
//! with `wgrec ope`'s reader; greedy rows are one-hot on the argmax of the q row; ε rows are
//! (1 − ε)·greedy + ε/A; q is, bit for bit, what `wgrec predict` gives the substituted rows; a
//! logged action missing from the candidates is a clear error; `wgrec ope` reads the output.

use std::path::Path;

use crate::{last_json, lcg, ok, temp, wgrec};

const SCHEMA: &str = "delimiter = \"\\t\"\nheader = true\ncolumns = \"label:click, \
categorical:item_id, categorical:position, numeric:propensity, categorical:user, \
numeric:item_feature_0, categorical:item_feature_1\"\n";
const HEADER: &str = "click\titem_id\tposition\tpropensity\tuser\titem_feature_0\titem_feature_1";
pub const MODEL: &str = r#"
[model]
tables = 1
dim = 4
experts = [{ type = "dcn", layers = 1 }]
expert_width = 8
hidden = [8]

[[feature]]
name = "item_id"
kind = "categorical"

[[feature]]
name = "user"
kind = "categorical"

[[feature]]
name = "item_feature_0"
kind = "numeric"

[[feature]]
name = "item_feature_1"
kind = "categorical"

[[task]]
name = "click"
loss = "bce"

[train]
batch_size = 64
epochs = 2
seed = 1
"#;
const ACTIONS: usize = 4;

/// The item's own columns: its id, a price and a category (`item_feature_*`).
fn item(a: u64) -> (String, &'static str) {
    (
        format!("{}", 0.5 * a as f64 - 0.7),
        ["shoes", "coats"][(a % 2) as usize],
    )
}

/// `rows` rows of a uniform-random log over ACTIONS items; users u0–u5 click item u mod 4 more.
fn split(rows: usize, seed: u64) -> String {
    let mut next = lcg(seed);
    let mut text = format!("{HEADER}\n");
    for _ in 0..rows {
        let (a, u) = (next() % ACTIONS as u64, next() % 6);
        let click = u64::from(next().is_multiple_of(4) || a == u % 4);
        let (price, cat) = item(a);
        let line = format!(
            "{click}\t{a}\t{}\t0.25\tu{u}\t{price}\t{cat}\n",
            1 + next() % 3
        );
        text.push_str(&line);
    }
    text
}

/// A trained model in `dir/run` and the log `dir/data/test.tsv`.
/// [`trained_with`] the tiny model.
pub fn trained(dir: &Path) {
    trained_with(dir, MODEL);
}

/// A model of `model`'s text trained in `dir/run` on the tiny log in `dir/data`.
pub fn trained_with(dir: &Path, model: &str) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("schema.toml"), SCHEMA).expect("schema");
    for (name, rows, seed) in [("train", 400, 1), ("valid", 60, 2), ("test", 25, 3)] {
        std::fs::write(data.join(format!("{name}.tsv")), split(rows, seed)).expect("split");
    }
    std::fs::write(dir.join("model.toml"), model).expect("model");
    ok(&wgrec()
        .args([
            "train",
            "--config",
            "model.toml",
            "--data",
            "data",
            "--out",
            "run",
        ])
        .current_dir(dir)
        .output()
        .expect("run"));
}

pub fn policy(dir: &Path, args: &[&str]) -> std::process::Output {
    wgrec()
        .args(["policy", "--checkpoint", "run", "--log", "data/test.tsv"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run wgrec")
}

/// A `p_`/`q_` table through `wgrec ope`'s reader (`log_actions`: the log's action per row), as
/// rows.
fn table(path: &Path, prefix: &str, log_actions: &[String]) -> Vec<Vec<f64>> {
    let (ids, t) = wgrec::ope::files::read_table(path, prefix, log_actions, None).expect("parses");
    assert_eq!(ids, ["0", "1", "2", "3"]);
    (0..t.rounds()).map(|i| t.row(i).to_vec()).collect()
}

/// The test log with each row repeated once per action, the action's columns substituted.
fn substituted(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("data/test.tsv")).expect("log");
    let mut text = format!("{HEADER}\n");
    for line in log.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        for a in 0..ACTIONS as u64 {
            let (price, cat) = item(a);
            let row = [f[0], &a.to_string(), f[2], f[3], f[4], &price, cat].join("\t");
            text.push_str(&format!("{row}\n"));
        }
    }
    text
}

#[test]
fn policy_files_are_greedy_epsilon_and_the_models_scores_and_ope_reads_them() {
    let dir = temp("policy");
    trained(&dir);
    let common = ["--actions-from", "data/train.tsv", "--batch", "7"];
    let cols = ["--action-columns", "item_id,item_feature_0,item_feature_1"];
    let greedy = [
        "--policy",
        "greedy",
        "--out",
        "g.tsv",
        "--reward-model",
        "q.tsv",
    ];
    ok(&policy(&dir, &[&common[..], &cols, &greedy].concat()));
    let eps = ["--policy", "epsilon", "--epsilon", "0.2", "--out", "e.tsv"];
    ok(&policy(&dir, &[&common[..], &cols, &eps].concat()));
    let log = std::fs::read_to_string(dir.join("data/test.tsv")).expect("log");
    let log_actions: Vec<String> = log
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(1).unwrap_or("").to_owned())
        .collect();
    let (g, e) = (
        table(&dir.join("g.tsv"), "p_", &log_actions),
        table(&dir.join("e.tsv"), "p_", &log_actions),
    );
    let q = table(&dir.join("q.tsv"), "q_", &log_actions);
    assert_eq!((g.len(), e.len(), q.len()), (25, 25, 25));
    let mut argmaxes = std::collections::BTreeSet::new();
    for i in 0..25 {
        let best = (0..ACTIONS).fold(0, |b, j| if q[i][j] > q[i][b] { j } else { b });
        argmaxes.insert(best);
        for j in 0..ACTIONS {
            assert_eq!(
                g[i][j],
                if j == best { 1.0 } else { 0.0 },
                "row {i}: {:?} {:?}",
                g[i],
                q[i]
            );
            let want = 0.8 * g[i][j] + 0.2 / ACTIONS as f64;
            assert!((e[i][j] - want).abs() < 1e-12, "row {i}: {:?}", e[i]);
        }
        assert!((e[i].iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    assert!(
        argmaxes.len() > 1 || q.iter().any(|r| r[0] != r[1]),
        "the model scores actions apart"
    );
    // q is what `wgrec predict` gives the substituted rows, to the printed f32.
    std::fs::write(dir.join("sub.tsv"), substituted(&dir)).expect("write");
    ok(&wgrec()
        .args([
            "predict",
            "--checkpoint",
            "run",
            "--input",
            "sub.tsv",
            "--output",
            "pred.tsv",
        ])
        .current_dir(&dir)
        .output()
        .expect("run"));
    let pred = std::fs::read_to_string(dir.join("pred.tsv")).expect("predictions");
    let q_text = std::fs::read_to_string(dir.join("q.tsv")).expect("q");
    let q_fields: Vec<&str> = q_text.lines().skip(1).flat_map(|l| l.split('\t')).collect();
    let p_fields: Vec<&str> = pred.lines().skip(1).collect();
    assert_eq!(q_fields, p_fields);
    // End to end: wgrec ope reads the files as written.
    let json = last_json(&ok(&wgrec()
        .args([
            "ope",
            "--log",
            "data/test.tsv",
            "--schema",
            "data/schema.toml",
        ])
        .args([
            "--policy",
            "e.tsv",
            "--reward-model",
            "q.tsv",
            "--bootstrap",
            "50",
            "--json",
        ])
        .current_dir(&dir)
        .output()
        .expect("run")));
    let names: Vec<&str> = json["estimates"]
        .as_array()
        .expect("estimates")
        .iter()
        .map(|e| e["estimator"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["on-policy", "ips", "snips", "dr"]);
}

#[test]
fn a_logged_action_missing_from_the_candidates_is_a_clear_error_and_writes_nothing() {
    let dir = temp("policy-missing");
    trained(&dir);
    std::fs::write(
        dir.join("cand.tsv"),
        "item_id\titem_feature_0\titem_feature_1\n0\t-0.7\tshoes\n1\t-0.2\tcoats\n",
    )
    .expect("write");
    let out = policy(
        &dir,
        &[
            "--candidates",
            "cand.tsv",
            "--policy",
            "greedy",
            "--out",
            "g.tsv",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("test.tsv")
            && stderr.contains("item_id")
            && stderr.contains("not among the 2 candidates"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.join("g.tsv").exists());
    let out = policy(
        &dir,
        &[
            "--candidates",
            "cand.tsv",
            "--policy",
            "epsilon",
            "--epsilon",
            "2",
            "--out",
            "g.tsv",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("epsilon"),
        "{stderr}"
    );
}
