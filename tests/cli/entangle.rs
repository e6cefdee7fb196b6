//! `wgrec analyze`'s entanglement section on small two-task runs (`stem`, `shared`, `single`):
//! the gate table's shape and sums, the comparable-sample splits partitioning the test split with
//! the positives the file holds, the `all` split's AUC equal to `eval`'s, and the figures written.

use std::path::Path;

use crate::{last_json, ok, temp, two_task_split, wgrec, TWO_TASK_MODEL};

/// Trains `arch` on the two-task data (`buy` missing on one row in three) and returns the run's
/// `eval --json` and `analyze --json` reports, with the test split's text and the report folder.
/// Without `group` the model file has no `train.group`.
fn analysed(
    arch: &str,
    group: bool,
) -> (
    serde_json::Value,
    serde_json::Value,
    String,
    std::path::PathBuf,
) {
    let dir = temp(&format!("entangle-{arch}-{group}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("schema.toml"),
        "delimiter = \",\"\ncolumns = \"label:click, label:buy, categorical:user, categorical:item\"\n",
    )
    .unwrap();
    let mut test = String::new();
    for (split, rows, seed) in [("train", 600, 11), ("valid", 150, 12), ("test", 151, 13)] {
        let (text, _) = two_task_split(rows, seed);
        std::fs::write(data.join(format!("{split}.csv")), &text).unwrap();
        test = text;
    }
    let model = dir.join("model.toml");
    let mut text = TWO_TASK_MODEL.replacen(
        "[model]\n",
        &format!("[model]\narchitecture = \"{arch}\"\n"),
        1,
    );
    if !group {
        text = text.replacen("group = \"user\"\n", "", 1);
    }
    std::fs::write(&model, text).unwrap();
    let run = dir.join("run");
    let run_on =
        |args: &[&str], path: &Path| wgrec().args(args).arg(path).output().expect("run wgrec");
    ok(&wgrec()
        .args(["train", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .output()
        .expect("train"));
    let eval = last_json(&ok(&run_on(&["eval", "--json", "--checkpoint"], &run)));
    let report = dir.join("report");
    let out = wgrec()
        .args(["analyze", "--json", "--checkpoint"])
        .arg(&run)
        .arg("--out")
        .arg(&report)
        .output()
        .expect("analyze");
    (eval, last_json(&ok(&out)), test, report)
}

/// Positives per task (click, buy) in a split's text; an empty buy field is no label.
fn positives(text: &str) -> [u64; 2] {
    let mut n = [0; 2];
    for line in text.lines().skip(1) {
        let mut fields = line.split(',');
        for slot in &mut n {
            *slot += u64::from(fields.next() == Some("1"));
        }
    }
    n
}

/// The splits partition the 151 test rows, `all` holds the file's positives, and its AUC is
/// `eval`'s to 1e-12 (the same probabilities; the two sum their ranks in different orders).
fn check_splits(section: &serde_json::Value, eval: &serde_json::Value, test: &str) {
    let splits = section["splits"].as_array().expect("splits");
    let bins: Vec<&str> = splits.iter().map(|s| s["bin"].as_str().unwrap()).collect();
    assert_eq!(
        bins,
        ["q1", "q2", "q3", "q4", "q5", "none", "all"],
        "{section}"
    );
    let rows: u64 = splits[..6]
        .iter()
        .map(|s| s["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, 151);
    // Every user clicks in training here: the training pass's user keys are the test pass's.
    assert_eq!(splits[5]["rows"], 0, "none: {section}");
    let all = &splits[6];
    assert_eq!(all["rows"], 151);
    let want = positives(test);
    for (t, task) in ["click", "buy"].iter().enumerate() {
        assert_eq!(all["positives"][t], want[t], "{task}: {section}");
        let auc = all["auc"][t].as_f64().expect("two classes");
        let eval_auc = eval["test_auc"][task].as_f64().expect("eval auc");
        assert!(
            (auc - eval_auc).abs() < 1e-12,
            "{task}: {auc} vs {eval_auc}"
        );
        let binned: u64 = splits[..6]
            .iter()
            .map(|s| s["positives"][t].as_u64().unwrap())
            .sum();
        assert_eq!(binned, want[t], "{task}: bins hold every positive");
    }
}

#[test]
fn analyze_reports_stem_gates_per_tower_and_comparable_sample_splits() {
    let (eval, report, test, dir) = analysed("stem", true);
    let section = &report["entanglement"];
    assert_eq!(section["mixture"], "learned", "{section}");
    assert_eq!(
        section["experts"],
        serde_json::json!(["shared/t0", "click/t0", "buy/t0"])
    );
    assert_eq!(section["towers"], serde_json::json!(["click", "buy"]));
    assert_eq!(section["gate_rows"], 151);
    for key in ["gate_mean", "gate_top_share"] {
        for row in section[key].as_array().expect(key) {
            let sum: f64 = row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .sum();
            assert!((sum - 1.0).abs() < 1e-6, "{key}: {row}");
        }
    }
    check_splits(section, &eval, &test);
    for file in [
        "entangle-gates.png",
        "entangle-gates.svg",
        "entangle-splits.png",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("| click | ") && md.contains("| all | – | "),
        "{md}"
    );
}

#[test]
fn a_shared_bottom_reports_its_uniform_mean_and_a_single_model_only_splits() {
    let (eval, report, test, _) = analysed("shared", true);
    let section = &report["entanglement"];
    assert_eq!(section["mixture"], "uniform", "{section}");
    assert_eq!(
        section["gate_mean"],
        serde_json::json!([[1.0], [1.0]]),
        "one expert each"
    );
    check_splits(section, &eval, &test);
    let (eval, report, test, dir) = analysed("single", true);
    let section = &report["entanglement"];
    assert_eq!(section["mixture"], "none", "{section}");
    assert_eq!(section["gate_mean"], serde_json::json!([]));
    check_splits(section, &eval, &test);
    assert!(
        !dir.join("entangle-gates.png").exists(),
        "no gate, no heat map"
    );
}

#[test]
fn without_a_user_column_the_splits_are_skipped_with_the_reason() {
    let (_, report, _, dir) = analysed("mmoe", false);
    let section = &report["entanglement"];
    assert_eq!(section["mixture"], "learned", "{section}");
    assert_eq!(section["splits"], serde_json::json!([]));
    let why = section["splits_skipped"].as_str().expect("a reason");
    assert!(why.contains("train.group"), "{why}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Skipped: the run has no train.group"), "{md}");
    assert!(!dir.join("entangle-splits.png").exists());
}
