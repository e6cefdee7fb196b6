//! The stream reader read to the end: the same batches as the training files' reader, resumes
//! from every position (file, folder, stdin), folder order, and the errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;
use crate::data::{ColumnData, ReadOptions, TableReader};

pub(super) const HEADER: &str = "click\tuser\tx\n";

pub(super) fn schema() -> Schema {
    let text = "delimiter = \"\\t\"\n\
                [[column]]\nname = \"click\"\ntype = \"label\"\n\
                [[column]]\nname = \"user\"\ntype = \"categorical\"\n\
                [[column]]\nname = \"x\"\ntype = \"numeric\"\n";
    Schema::parse(text, "schema.toml").unwrap()
}

/// Rows `from..to`: user `u<i>`, x = i.
pub(super) fn rows(from: usize, to: usize) -> String {
    (from..to)
        .map(|i| format!("{}\tu{i}\t{i}\n", i % 2))
        .collect()
}

pub(super) fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-source-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(super) fn options(batch_rows: usize, follow: bool) -> StreamOptions {
    StreamOptions {
        batch_rows,
        skip_bad_rows: false,
        follow,
        idle_exit: None,
        flush_after: Duration::from_millis(20),
        poll: Duration::from_millis(5),
    }
}

pub(super) fn users(batch: &Batch) -> Vec<String> {
    match &batch.columns[1] {
        ColumnData::Categorical(t) => t.iter().map(str::to_owned).collect(),
        other => panic!("user column is {}", other.type_name()),
    }
}

/// Every batch to the end of a source read without following.
pub(super) fn drain(reader: &mut StreamReader) -> Vec<StreamBatch> {
    let stop = AtomicBool::new(false);
    let mut out = Vec::new();
    while let Some(b) = reader.next_batch(&stop).unwrap() {
        out.push(b);
    }
    out
}

pub(super) fn all_users(batches: &[StreamBatch]) -> Vec<String> {
    batches.iter().flat_map(|b| users(&b.batch)).collect()
}

/// From each batch's position, a reopened source reads exactly the rows after it.
fn check_resumes(
    spec: &SourceSpec,
    batches: &[StreamBatch],
    open: impl Fn(&StreamPosition) -> StreamReader,
) {
    let everything = all_users(batches);
    for (k, b) in batches.iter().enumerate() {
        let rest = drain(&mut open(&b.position));
        let before: usize = batches[..=k].iter().map(|b| b.batch.rows).sum();
        assert_eq!(
            all_users(&rest),
            everything[before..],
            "{spec:?} after batch {k}"
        );
        let lines: Vec<u64> = rest.iter().flat_map(|b| b.batch.lines.clone()).collect();
        let want: Vec<u64> = batches[k + 1..]
            .iter()
            .flat_map(|b| b.batch.lines.clone())
            .collect();
        assert_eq!(lines, want, "{spec:?} lines after batch {k}");
        if let Some(last) = rest.last() {
            assert_eq!(last.position, batches.last().unwrap().position);
        }
    }
}

#[test]
fn file_batches_equal_table_reader_batches_and_resume_from_every_position() {
    let path = scratch("file").join("rows.tsv");
    std::fs::write(&path, format!("{HEADER}{}", rows(0, 23))).unwrap();
    let spec = SourceSpec::File(path.clone());
    let batches =
        drain(&mut StreamReader::open(&spec, &schema(), options(5, false), None).unwrap());
    let read = ReadOptions {
        batch_rows: 5,
        ..ReadOptions::default()
    };
    let table: Vec<Batch> = TableReader::open(&path, &schema(), read)
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(
        batches.iter().map(|b| b.batch.clone()).collect::<Vec<_>>(),
        table
    );
    assert_eq!(batches.last().unwrap().position.rows(), 23);
    assert_eq!(batches[0].file, path.display().to_string());
    check_resumes(&spec, &batches, |p| {
        StreamReader::open(&spec, &schema(), options(5, false), Some(p)).unwrap()
    });
}

pub(super) fn write_partition(dir: &Path, name: &str, body: &str) {
    // As the producers' contract says: a temporary name, then a rename.
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, format!("{HEADER}{body}")).unwrap();
    std::fs::rename(&temporary, dir.join(name)).unwrap();
}

#[test]
fn folder_reads_partitions_in_name_order_ignores_temporaries_and_resumes() {
    let dir = scratch("folder");
    write_partition(&dir, "2026-01-02.tsv", &rows(7, 11));
    write_partition(&dir, "2026-01-01.tsv", &rows(0, 7));
    write_partition(&dir, "2026-01-01b.tsv", "");
    std::fs::write(dir.join("2026-01-03.tsv.tmp"), "garbage").unwrap();
    std::fs::write(dir.join(".2026-01-00.tsv"), "garbage").unwrap();
    std::fs::write(dir.join("notes.txt"), "garbage").unwrap();
    let spec = SourceSpec::parse(dir.to_str().unwrap());
    assert_eq!(spec, SourceSpec::Folder(dir.clone()));
    let batches =
        drain(&mut StreamReader::open(&spec, &schema(), options(3, false), None).unwrap());
    let sizes: Vec<usize> = batches.iter().map(|b| b.batch.rows).collect();
    assert_eq!(sizes, [3, 3, 1, 3, 1], "a batch never spans two partitions");
    assert_eq!(
        all_users(&batches),
        (0..11).map(|i| format!("u{i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        batches[2].position.partition.as_deref(),
        Some("2026-01-01.tsv")
    );
    assert!(batches[3].file.ends_with("2026-01-02.tsv"));
    check_resumes(&spec, &batches, |p| {
        StreamReader::open(&spec, &schema(), options(3, false), Some(p)).unwrap()
    });
}

#[test]
fn stdin_resume_skips_the_rows_already_consumed() {
    let text = format!("{HEADER}{}", rows(0, 13));
    let open = |p: Option<&StreamPosition>| {
        let input = std::io::Cursor::new(text.clone().into_bytes());
        StreamReader::from_reader(input, &schema(), options(4, false), p).unwrap()
    };
    let batches = drain(&mut open(None));
    assert_eq!(
        batches.iter().map(|b| b.batch.rows).collect::<Vec<_>>(),
        [4, 4, 4, 1]
    );
    assert_eq!(batches[0].file, "<stdin>");
    check_resumes(&SourceSpec::Stdin, &batches, |p| open(Some(p)));
}

#[test]
fn errors_name_the_file_and_the_line_after_a_resume() {
    let dir = scratch("errors");
    let path = dir.join("bad-header.tsv");
    std::fs::write(&path, format!("click\tuser\ty\n{}", rows(0, 2))).unwrap();
    let e = StreamReader::open(
        &SourceSpec::File(path.clone()),
        &schema(),
        options(2, false),
        None,
    )
    .and_then(|mut r| r.next_batch(&AtomicBool::new(false)))
    .err()
    .expect("bad header")
    .to_string();
    assert!(
        e.contains("bad-header.tsv:1") && e.contains("header names \"y\""),
        "{e}"
    );
    let path = dir.join("bad-row.tsv");
    std::fs::write(&path, format!("{HEADER}{}1\tu9\tnine\n", rows(0, 4))).unwrap();
    let spec = SourceSpec::File(path.clone());
    let mut reader = StreamReader::open(&spec, &schema(), options(2, false), None).unwrap();
    let first = reader.next_batch(&AtomicBool::new(false)).unwrap().unwrap();
    let mut resumed =
        StreamReader::open(&spec, &schema(), options(2, false), Some(&first.position)).unwrap();
    let stop = AtomicBool::new(false);
    assert_eq!(
        resumed.next_batch(&stop).unwrap().unwrap().batch.lines,
        [4, 5]
    );
    let e = resumed
        .next_batch(&stop)
        .err()
        .expect("bad row")
        .to_string();
    assert!(e.contains("bad-row.tsv:6: column 3 \"x\""), "{e}");
}

#[test]
fn bad_rows_are_counted_and_consumed_with_skip_bad_rows() {
    let path = scratch("skip").join("rows.tsv");
    std::fs::write(
        &path,
        format!("{HEADER}{}2\tu9\t9\n{}", rows(0, 2), rows(2, 3)),
    )
    .unwrap();
    let mut o = options(10, false);
    o.skip_bad_rows = true;
    let mut reader = StreamReader::open(&SourceSpec::File(path), &schema(), o, None).unwrap();
    let batches = drain(&mut reader);
    assert_eq!(all_users(&batches), ["u0", "u1", "u2"]);
    assert_eq!(batches[0].position.rows(), 4, "bad rows count as consumed");
    assert_eq!(reader.bad_rows().count, 1);
}

#[test]
fn resumes_are_exact_across_a_byte_order_mark_quoted_line_breaks_and_an_unclosed_quote() {
    let path = scratch("quotes").join("rows.tsv");
    let body = format!(
        "\u{FEFF}{HEADER}1\t\"u0\nstill u0\"\t0\n0\tu1\t1\n1\t\"u2\t2\n{}",
        rows(3, 8)
    );
    std::fs::write(&path, body).unwrap();
    let spec = SourceSpec::File(path);
    let mut o = options(2, false);
    o.skip_bad_rows = true;
    let mut reader = StreamReader::open(&spec, &schema(), o.clone(), None).unwrap();
    let batches = drain(&mut reader);
    let mut want = vec!["u0\nstill u0".to_string(), "u1".into()];
    want.extend((3..8).map(|i| format!("u{i}")));
    assert_eq!(all_users(&batches), want);
    assert_eq!(
        reader.bad_rows().count,
        1,
        "the unclosed quote costs its own row only"
    );
    assert_eq!(
        batches[1].batch.lines,
        [6, 7],
        "lines count the quoted line break and the bad row"
    );
    check_resumes(&spec, &batches, |p| {
        StreamReader::open(&spec, &schema(), o.clone(), Some(p)).unwrap()
    });
}
