//! Schemas of hostile size, and which sequence a sequence_times column belongs to.

use std::time::{Duration, Instant};

use crate::data::{ColumnKind, Schema};

fn error(text: &str) -> String {
    Schema::parse(text, "schema.toml").unwrap_err().to_string()
}

fn times_of(s: &Schema, name: &str) -> usize {
    match &s.columns[s.index(name).unwrap()].kind {
        ColumnKind::SequenceTimes { sequence, .. } => *sequence,
        k => panic!("{name} is {k:?}"),
    }
}

#[test]
fn a_trillion_column_range_is_refused_before_allocating() {
    let e = error("columns = \"label:click, numeric:I1-I1099511627776\"");
    assert_eq!(
        e,
        "schema.toml: columns: item 2 \"numeric:I1-I1099511627776\" brings the schema to \
         1099511627777 columns, over the limit of 100000"
    );
}

#[test]
fn the_largest_allowed_schema_parses_and_finds_a_duplicate_in_well_under_a_second() {
    // 100,000 names compared pairwise would take minutes; a hash set takes milliseconds.
    let start = Instant::now();
    let s = Schema::parse("columns = \"label:y, numeric:I1-I99999\"", "schema.toml").unwrap();
    assert_eq!(s.columns.len(), 100_000);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    let e = error("columns = \"numeric:I1-I99999, categorical:I99998\"");
    assert_eq!(
        e,
        "schema.toml: column[99999].name: \"I99998\" appears twice"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let e = error("columns = \"label:y, numeric:I1-I100000\"");
    assert!(
        e.contains("100001 columns, over the limit of 100000"),
        "{e}"
    );
}

#[test]
fn compact_sequence_times_name_their_sequence_after_an_at_sign() {
    let s = Schema::parse(
        "columns = \"sequence:hist_item, sequence:hist_cat, sequence_times:hist_time@hist_item\"",
        "schema.toml",
    )
    .unwrap();
    assert_eq!(
        times_of(&s, "hist_time"),
        0,
        "the item history, not the nearer side sequence"
    );
}

#[test]
fn sequence_times_after_several_sequences_must_name_one() {
    let e = error("columns = \"sequence:hist_item, sequence:hist_cat, sequence_times:hist_time\"");
    assert_eq!(
        e,
        "schema.toml: column[2].sequence: sequence_times column \"hist_time\" follows 2 \
         sequence columns (hist_item, hist_cat): name its sequence with `sequence = \"…\"` or \
         `sequence_times:hist_time@SEQUENCE`"
    );
    let one = Schema::parse(
        "columns = \"sequence:hist, sequence_times:t\"",
        "schema.toml",
    );
    assert_eq!(
        times_of(&one.unwrap(), "t"),
        0,
        "one sequence before: unambiguous"
    );
    let e = error("columns = \"sequence:a, sequence_times:t@b\"");
    assert_eq!(
        e,
        "schema.toml: column[1].sequence: \"b\" is not an earlier sequence column"
    );
}
