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

use crate::explore::rank_tests::gaussian;

#[test]
fn ucb_table_is_one_hot_on_the_upper_bound_per_row() {
    use crate::explore::Policy;
    // Row 0: the sure 0.5 beats the unsure 0 at c = 0 but not at c = 2; row 1 the other way.
    let belief = gaussian(&[(0.5, 0.1), (0.0, 1.0), (0.0, 1.0), (0.5, 0.1)]);
    let p = [0.6, 0.5, 0.5, 0.6];
    let table = belief_table(Policy::Ucb(2.0), &p, &belief, 0, 2, 1000, 1).expect("ucb");
    assert_eq!(table, [0.0, 1.0, 1.0, 0.0]);
    let table = belief_table(Policy::Ucb(0.0), &p, &belief, 0, 2, 1000, 1).expect("ucb");
    assert_eq!(table, [1.0, 0.0, 0.0, 1.0]);
}

#[test]
fn thompson_table_estimates_the_chance_of_ranking_first_within_its_monte_carlo_error() {
    use crate::explore::Policy;
    // P(z0 > z1) for N(0.3, 0.8²) against N(0, 0.5²) is Φ(0.3/√0.89) = 0.624757; 20 000 draws
    // give a standard error of 0.0034, and 4.89 of them is the two-sided α = 10⁻⁶ bound.
    let belief = gaussian(&[(0.3, 0.8), (0.0, 0.5), (0.0, 0.5), (0.3, 0.8)]);
    let p = [0.5; 4];
    let table = belief_table(Policy::Thompson, &p, &belief, 0, 2, 20_000, 9).expect("ts");
    let (exact, se) = (0.624_757, (0.624_757f64 * 0.375_243 / 20_000.0).sqrt());
    assert!((table[0] - exact).abs() < 4.89 * se, "{table:?}");
    assert!((table[3] - exact).abs() < 4.89 * se, "{table:?}");
    assert!(table.chunks(2).all(|r| (r[0] + r[1] - 1.0).abs() < 1e-12));
    let again = belief_table(Policy::Thompson, &p, &belief, 0, 2, 20_000, 9).expect("ts");
    assert_eq!(table, again, "a seed gives the same table");
}

#[test]
fn thompson_table_over_bootstrap_heads_is_the_exact_share_of_heads() {
    use crate::explore::rank_tests::bootstrap;
    use crate::explore::Policy;
    // Three heads; action 1 is first under heads 0 and 2, action 0 under head 1.
    let belief = bootstrap(&[vec![0.0, 1.0, 0.0], vec![1.0, 0.0, 1.0]]);
    let table = belief_table(Policy::Thompson, &[0.5, 0.5], &belief, 0, 2, 7, 1).expect("ts");
    assert_eq!(table, [1.0 / 3.0, 2.0 / 3.0]);
}

#[test]
fn belief_table_refuses_greedy_rules_and_zero_draws() {
    use crate::explore::Policy;
    let belief = gaussian(&[(0.0, 1.0), (0.0, 1.0)]);
    let p = [0.5, 0.5];
    let e = belief_table(Policy::Greedy, &p, &belief, 0, 2, 10, 1)
        .expect_err("greedy")
        .to_string();
    assert!(e.contains("needs no belief"), "{e}");
    let e = belief_table(Policy::Thompson, &p, &belief, 0, 2, 0, 1)
        .expect_err("no draws")
        .to_string();
    assert!(e.contains("--draws"), "{e}");
}

#[test]
fn beliefs_of_consecutive_submissions_join_row_after_row() {
    use crate::serve::rank::append_belief;
    let mut all = None;
    append_belief(&mut all, Some(gaussian(&[(0.1, 1.0)]))).expect("first");
    append_belief(&mut all, None).expect("a model without a head adds nothing");
    append_belief(&mut all, Some(gaussian(&[(0.2, 1.0), (0.3, 1.0)]))).expect("second");
    let all = all.expect("joined");
    assert_eq!(all.rows(), 3);
    assert_eq!(all.mean_logit(2, 0), 0.3f32 as f64);
    let mut other = Some(all);
    let wide = crate::explore::Belief {
        width: 4,
        values: vec![0.0; 4],
        ..gaussian(&[(0.0, 1.0)])
    };
    assert!(append_belief(&mut other, Some(wide)).is_err());
}
