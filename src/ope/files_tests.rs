//! The log and table readers: action mapping, and bad files as errors naming file, line, column.

use super::files::{load, sorted_actions, LogColumns};
use std::path::{Path, PathBuf};

const SCHEMA: &str =
    "delimiter = \"\\t\"\nheader = true\ncolumns = \"label:click, categorical:item_id, \
categorical:position, numeric:propensity\"\n";
const LOG: &str =
    "click\titem_id\tposition\tpropensity\n1\t10\t1\t0.5\n0\t2\t2\t0.25\n1\t7\t1\t0.25\n";

fn scratch(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-ope-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write fixture");
    }
    dir
}

fn run(dir: &Path, model: bool) -> crate::Result<super::files::OpeInput> {
    let q = dir.join("q.tsv");
    load(
        &dir.join("log.tsv"),
        &dir.join("schema.toml"),
        &LogColumns::default(),
        &dir.join("p.tsv"),
        model.then_some(q.as_path()),
    )
}

#[test]
fn positional_columns_follow_the_numerically_sorted_action_ids() {
    // Distinct ids 10, 2, 7 sort numerically to 2, 7, 10 (by bytes it would be 10, 2, 7).
    assert_eq!(
        sorted_actions(&["10".into(), "2".into(), "7".into()]),
        ["2", "7", "10"]
    );
    let p = "p_a\tp_b\tp_c\n0\t0\t1\n1\t0\t0\n0\t1\t0\n";
    let dir = scratch(
        "positional",
        &[("schema.toml", SCHEMA), ("log.tsv", LOG), ("p.tsv", p)],
    );
    let input = run(&dir, false).unwrap();
    assert_eq!(input.action_ids, ["2", "7", "10"]);
    assert_eq!(input.log.actions, [2, 0, 1]);
    assert_eq!(input.positions, 2);
    // Every round's logged action has probability 1: w = 1/p = 2, 4, 4; IPS = (2 + 0 + 4)/3 = 2.
    assert_eq!(super::ips(&input.log, &input.policy).unwrap(), 2.0);
}

#[test]
fn named_columns_may_hold_actions_the_log_never_shows() {
    let p = "p_99\tp_7\tp_2\tp_10\n0\t0\t0\t1\n0.5\t0\t0.5\t0\n0\t1\t0\t0\n";
    let q = "q_99\tq_7\tq_2\tq_10\n0.1\t0.1\t0.1\t0.1\n0.1\t0.1\t0.1\t0.1\n0.1\t0.1\t0.1\t0.1\n";
    let files = [
        ("schema.toml", SCHEMA),
        ("log.tsv", LOG),
        ("p.tsv", p),
        ("q.tsv", q),
    ];
    let dir = scratch("named", &files);
    let input = run(&dir, true).unwrap();
    assert_eq!(input.action_ids, ["99", "7", "2", "10"]);
    assert_eq!(input.log.actions, [3, 2, 1]);
    // w = 1/0.5, 0.5/0.25, 1/0.25 = 2, 2, 4; rewards 1, 0, 1: IPS = 6/3.
    assert_eq!(super::ips(&input.log, &input.policy).unwrap(), 2.0);
    let bad_q = q.replace("q_99\tq_7", "q_7\tq_99");
    std::fs::write(dir.join("q.tsv"), bad_q).unwrap();
    let e = run(&dir, true).unwrap_err().to_string();
    assert!(
        e.contains("q.tsv:1") && e.contains("differ from the policy"),
        "{e}"
    );
}

#[test]
fn bad_logs_name_the_file_line_and_column() {
    let p = "p_0\tp_1\tp_2\n1\t0\t0\n1\t0\t0\n1\t0\t0\n";
    let zero = LOG.replace("0\t2\t2\t0.25", "0\t2\t2\t0");
    let dir = scratch(
        "zero",
        &[("schema.toml", SCHEMA), ("log.tsv", &zero), ("p.tsv", p)],
    );
    let e = run(&dir, false).unwrap_err().to_string();
    assert!(
        e.contains("log.tsv:3: column 4 \"propensity\"")
            && e.contains("propensity 0 is not in (0, 1]"),
        "{e}"
    );
    let big = LOG.replace("1\t7\t1\t0.25", "1\t7\t1\t1.25");
    std::fs::write(dir.join("log.tsv"), big).unwrap();
    let e = run(&dir, false).unwrap_err().to_string();
    assert!(
        e.contains("log.tsv:4: column 4") && e.contains("1.25"),
        "{e}"
    );
    let typed = SCHEMA.replace("numeric:propensity", "categorical:propensity");
    std::fs::write(dir.join("schema.toml"), typed).unwrap();
    let e = run(&dir, false).unwrap_err().to_string();
    assert!(
        e.contains("column[3].type") && e.contains("the log's propensity"),
        "{e}"
    );
    let missing = SCHEMA.replace("numeric:propensity", "numeric:pscore");
    std::fs::write(dir.join("schema.toml"), missing).unwrap();
    std::fs::write(dir.join("log.tsv"), LOG.replace("propensity\n", "pscore\n")).unwrap();
    let e = run(&dir, false).unwrap_err().to_string();
    assert!(
        e.contains("schema.toml")
            && e.contains("no column \"propensity\"")
            && e.contains("--propensity"),
        "{e}"
    );
}

#[test]
fn bad_policy_files_name_the_file_and_line() {
    let cases = [
        (
            "p_0\tp_1\tp_2\n1\t0\t0\n1\t0\t0\n",
            "p.tsv: 2 rows, the log has 3 rounds",
        ),
        (
            "p_0\tp_1\tp_2\n1\t0\t0\n1\t0\t0\n1\t0\t0\n1\t0\t0\n",
            "p.tsv:5: more rows than the log's 3",
        ),
        (
            "p_0\tp_1\tp_2\n1\t0\t0\n0.5\t0.4\t0\n1\t0\t0\n",
            "p.tsv:3: the probabilities sum to 0.9",
        ),
        (
            "p_0\tp_1\tp_2\n1\t0\t0\n1\t0\t0\n1.5\t-0.5\t0\n",
            "p.tsv:4: column 1 \"p_0\": \"1.5\" is not a probability",
        ),
        (
            "p_0\tp_1\n1\t0\n1\t0\n1\t0\n",
            "p.tsv:1: 2 columns neither name every action",
        ),
        (
            "p_0\tp_1\tp_2\n1\t0\n1\t0\t0\n1\t0\t0\n",
            "p.tsv:2: 2 fields, the header has 3",
        ),
        (
            "x_0\tp_1\tp_2\n1\t0\t0\n1\t0\t0\n1\t0\t0\n",
            "p.tsv:1: column 1 \"x_0\"",
        ),
    ];
    for (i, (p, expected)) in cases.iter().enumerate() {
        let dir = scratch(
            &format!("policy{i}"),
            &[("schema.toml", SCHEMA), ("log.tsv", LOG), ("p.tsv", p)],
        );
        let e = run(&dir, false).unwrap_err().to_string();
        assert!(e.contains(expected), "case {i}: {e}");
    }
}
