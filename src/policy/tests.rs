//! The pure parts of `crate::policy`: rules, ties, candidates and the log reader's errors. The
//! GPU path (scores against `wgrec predict`, the files through `wgrec ope`) is `tests/cli/policy.rs`.

use super::*;
use crate::data::Schema;

fn schema() -> Schema {
    Schema::parse(
        "delimiter = \"\\t\"\nheader = true\ncolumns = \"label:click, categorical:item, \
         categorical:user, numeric:price\"\n",
        "schema.toml",
    )
    .expect("schema")
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn greedy_is_one_hot_on_the_highest_score_and_ties_go_to_the_first_action() {
    assert_eq!(
        Rule::Greedy.probabilities(&[0.1, 0.3, 0.2]),
        [0.0, 1.0, 0.0]
    );
    assert_eq!(
        Rule::Greedy.probabilities(&[0.5, 0.2, 0.5]),
        [1.0, 0.0, 0.0]
    );
    assert_eq!(argmax(&[0.2, 0.7, 0.7, 0.1]), 1);
}

#[test]
fn epsilon_is_one_minus_epsilon_on_greedy_plus_epsilon_over_actions() {
    let p = Rule::epsilon(0.2)
        .expect("valid")
        .probabilities(&[0.1, 0.4, 0.3, 0.2]);
    let expected = [0.05, 0.8 + 0.05, 0.05, 0.05];
    for (a, b) in p.iter().zip(expected) {
        assert!((a - b).abs() < 1e-15, "{p:?}");
    }
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(
        Rule::epsilon(0.0)
            .expect("valid")
            .probabilities(&[0.1, 0.4]),
        [0.0, 1.0]
    );
    for bad in [-0.1, 1.5, f64::NAN] {
        let e = Rule::epsilon(bad).expect_err("out of range").to_string();
        assert!(e.contains("epsilon"), "{e}");
    }
}

#[test]
fn policy_table_applies_the_rule_row_by_row() {
    let table = policy_table(Rule::Greedy, &[0.1, 0.9, 0.8, 0.2], 2);
    assert_eq!(table, [0.0, 1.0, 1.0, 0.0]);
}

#[test]
fn candidates_file_sorts_actions_numerically_and_keeps_their_values() {
    let path = temp_file("cand.tsv", "item\tprice\n10\t1.5\n9\t2.5\n10\t1.5\n");
    let c = Candidates::read(&path, &schema()).expect("candidates");
    assert_eq!(
        (c.columns, c.names),
        (vec![1, 3], vec!["item".to_owned(), "price".to_owned()])
    );
    assert_eq!(c.actions, ["9", "10"]);
    assert_eq!(c.values, [vec!["9", "2.5"], vec!["10", "1.5"]]);
}

#[test]
fn candidates_with_conflicting_or_unknown_columns_are_errors_naming_the_file() {
    let path = temp_file("conflict.tsv", "item\tprice\n10\t1.5\n10\t2.5\n");
    let e = Candidates::read(&path, &schema())
        .expect_err("conflict")
        .to_string();
    assert!(
        e.contains("conflict.tsv") && e.contains(":3:") && e.contains("price"),
        "{e}"
    );
    let path = temp_file("unknown.tsv", "item\tcolour\n10\tred\n");
    let e = Candidates::read(&path, &schema())
        .expect_err("unknown")
        .to_string();
    assert!(e.contains("unknown.tsv") && e.contains("colour"), "{e}");
    let path = temp_file("short.tsv", "item\tprice\n10\n");
    let e = Candidates::read(&path, &schema())
        .expect_err("short")
        .to_string();
    assert!(e.contains("short.tsv") && e.contains(":2:"), "{e}");
}

#[test]
fn candidates_from_a_log_take_each_actions_first_row() {
    let path = temp_file(
        "train.tsv",
        "click\titem\tuser\tprice\n0\t2\tu\t3\n1\t1\tv\t4\n0\t2\tw\t3\n",
    );
    let log = LogText::read(&path, &schema()).expect("log");
    let names = ["item".to_owned(), "price".to_owned()];
    let c = Candidates::from_log(&log, &schema(), &names).expect("candidates");
    assert_eq!(c.actions, ["1", "2"]);
    assert_eq!(c.values, [vec!["1", "4"], vec!["2", "3"]]);
}

#[test]
fn a_logged_action_missing_from_the_candidates_is_an_error_naming_line_and_column() {
    let log_path = temp_file(
        "log.tsv",
        "click\titem\tuser\tprice\n0\t1\tu\t4\n0\t7\tu\t4\n",
    );
    let log = LogText::read(&log_path, &schema()).expect("log");
    let cand = temp_file("two.tsv", "item\tprice\n1\t4\n2\t3\n");
    let c = Candidates::read(&cand, &schema()).expect("candidates");
    let e = check_actions(&log, &c).expect_err("missing").to_string();
    assert!(
        e.contains("log.tsv") && e.contains(":3:") && e.contains("\"7\""),
        "{e}"
    );
}

#[test]
fn a_log_row_with_another_field_count_or_a_quote_is_an_error_naming_its_line() {
    let path = temp_file("bad.tsv", "click\titem\tuser\tprice\n0\t1\tu\t4\n0\t1\tu\n");
    let e = LogText::read(&path, &schema())
        .expect_err("short row")
        .to_string();
    assert!(
        e.contains("bad.tsv") && e.contains(":3:") && e.contains("3 fields"),
        "{e}"
    );
    let path = temp_file("quoted.tsv", "click\titem\tuser\tprice\n0\t1\t\"u\"\t4\n");
    let e = LogText::read(&path, &schema())
        .expect_err("quoted")
        .to_string();
    assert!(
        e.contains("quoted.tsv") && e.contains(":2:") && e.contains("quoted"),
        "{e}"
    );
}
