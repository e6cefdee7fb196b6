//! A stray opening quote costs its own row, never the rest of the file.

use super::*;
use crate::data::ColumnData;

const TSV: &str =
    "delimiter = \"\\t\"\nheader = false\ncolumns = \"label:y, categorical:c1, numeric:x\"";

fn rows(n: usize, bad_line: usize) -> String {
    (1..=n)
        .map(|i| match i == bad_line {
            true => format!("1\t\"abc\t{i}\n"),
            false => format!("{}\tid{i}\t{i}\n", i % 2),
        })
        .collect()
}

fn skipping() -> ReadOptions {
    ReadOptions {
        skip_bad_rows: true,
        ..ReadOptions::default()
    }
}

fn numbers(batches: &[Batch]) -> Vec<f64> {
    batches
        .iter()
        .flat_map(|b| match &b.columns[2] {
            ColumnData::Numeric(v) => v.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn skipping_an_unclosed_quote_drops_only_its_row() {
    let (batches, bad) = read(
        "stray.tsv",
        &schema(TSV),
        rows(1600, 5).as_bytes(),
        skipping(),
    )
    .unwrap();
    let read: Vec<f64> = numbers(&batches);
    assert_eq!(read.len(), 1599, "every row but line 5");
    assert_eq!(
        (read[3], read[4]),
        (4.0, 6.0),
        "line 6 reads right after line 4"
    );
    assert_eq!(bad.count, 1);
    assert_eq!(
        short(&bad.first[0].to_string()),
        "stray.tsv:5: column 2 \"c1\": a quoted field is not closed before the end of the file or \
         within 1000 lines (1048576 bytes); reading resumes at the next line"
    );
}

#[test]
fn a_quote_closed_past_the_line_bound_is_that_rows_error() {
    // The quote opened on line 2 closes on line 1203, past the 1000-line bound: line 2 is the bad
    // row and lines 3.. read as rows of their own.
    let mut text = rows(1200, 2);
    text.push_str("1\tend\"\t0\n");
    let (batches, bad) = read("late.tsv", &schema(TSV), text.as_bytes(), skipping()).unwrap();
    assert_eq!(bad.count, 1, "{bad}");
    assert_eq!(numbers(&batches).len(), 1200);
}
