use super::*;
use crate::data::{ColumnData, MISSING};

const ALL_TYPES: &str = r#"
delimiter = "\t"
[[column]]
name = "click"
type = "label"
[[column]]
name = "user"
type = "categorical"
[[column]]
name = "price"
type = "numeric"
[[column]]
name = "genres"
type = "multi_hot"
[[column]]
name = "time"
type = "timestamp"
[[column]]
name = "w"
type = "weight"
[[column]]
name = "hist"
type = "sequence"
[[column]]
name = "hist_t"
type = "sequence_times"
[[column]]
name = "note"
type = "skip"
"#;

const ALL_TYPES_HEADER: &str = "click\tuser\tprice\tgenres\ttime\tw\thist\thist_t\tnote\n";

fn options(batch_rows: usize) -> ReadOptions {
    ReadOptions {
        batch_rows,
        ..ReadOptions::default()
    }
}

#[test]
fn every_column_type_reads_into_its_typed_column() {
    let text = format!(
        "{ALL_TYPES_HEADER}1\tu7\t3.5\ta|b\t100\t0.5\ti1|i2|i3\t10|20|30\tx\n\
         0\t\t\t\t-5\t2\t\t\t\n"
    );
    let (batches, bad) =
        read("types.tsv", &schema(ALL_TYPES), text.as_bytes(), options(8)).unwrap();
    assert_eq!((batches.len(), bad.count), (1, 0));
    let b = &batches[0];
    assert_eq!((b.rows, b.lines.clone()), (2, vec![2, 3]));
    assert_eq!(b.columns[0], ColumnData::Label(vec![1.0, 0.0]));
    let ColumnData::Categorical(users) = &b.columns[1] else {
        panic!()
    };
    assert_eq!(users.iter().collect::<Vec<_>>(), ["u7", ""]);
    let ColumnData::Numeric(price) = &b.columns[2] else {
        panic!()
    };
    assert_eq!(price[0], 3.5);
    assert!(
        price[1].is_nan() && MISSING.is_nan(),
        "an empty numeric field is MISSING"
    );
    let ColumnData::MultiHot(genres) = &b.columns[3] else {
        panic!()
    };
    assert_eq!(genres.offsets, [0, 2, 2]);
    assert_eq!(genres.row(0).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(b.columns[4], ColumnData::Timestamp(vec![100, -5]));
    assert_eq!(b.columns[5], ColumnData::Weight(vec![0.5, 2.0]));
    let ColumnData::Sequence(hist) = &b.columns[6] else {
        panic!()
    };
    assert_eq!(hist.row(0).collect::<Vec<_>>(), ["i1", "i2", "i3"]);
    assert_eq!(hist.range(1).len(), 0);
    let ColumnData::SequenceTimes(times) = &b.columns[7] else {
        panic!()
    };
    assert_eq!(
        (times.row(0), times.row(1)),
        (&[10.0, 20.0, 30.0][..], &[][..])
    );
    assert_eq!(b.columns[8], ColumnData::Skip);
}

const CSV3: &str = "delimiter = \",\"\n\
    [[column]]\nname = \"y\"\ntype = \"label\"\n\
    [[column]]\nname = \"id\"\ntype = \"categorical\"\n\
    [[column]]\nname = \"x\"\ntype = \"numeric\"\n";

fn ids(batches: &[Batch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let ColumnData::Categorical(t) = &b.columns[1] else {
            panic!()
        };
        out.extend(t.iter().map(str::to_string));
    }
    out
}

#[test]
fn crlf_and_lf_files_read_the_same() {
    let lf = "y,id,x\n1,a,1.5\n0,b,\n";
    let crlf = lf.replace('\n', "\r\n");
    let s = schema(CSV3);
    let (a, _) = read("lf.csv", &s, lf.as_bytes(), options(8)).unwrap();
    let (b, _) = read("crlf.csv", &s, crlf.as_bytes(), options(8)).unwrap();
    assert_eq!(ids(&a), ["a", "b"]);
    assert_eq!(a[0].columns[0], b[0].columns[0]);
    assert_eq!(ids(&a), ids(&b));
    // No final line break, and a UTF-8 byte-order mark before the header.
    let bom = "\u{feff}y,id,x\r\n1,a,1.5\r\n0,b,";
    let (c, _) = read("bom.csv", &s, bom.as_bytes(), options(8)).unwrap();
    assert_eq!(ids(&c), ["a", "b"]);
}

#[test]
fn quoted_fields_hold_delimiters_quotes_and_line_breaks() {
    let good = "y,id,x\n\
        1,\"a,b\",1\n\
        0,\"say \"\"hi\"\"\",2\n\
        1,\"two\nlines\",3\n\
        0,\"crlf\r\ninside\",\"4\"\r\n\
        1,plain\"quote,5\n";
    let s = schema(CSV3);
    let (batches, _) = read("quoted.csv", &s, good.as_bytes(), options(8)).unwrap();
    assert_eq!(
        ids(&batches),
        [
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "crlf\r\ninside",
            "plain\"quote"
        ]
    );
    assert_eq!(batches[0].lines, [2, 3, 4, 6, 8]);
    // A row after multi-line records is reported on its own physical line.
    assert_eq!(
        read_error("quoted_bad.csv", &s, format!("{good}1,z,oops\n").as_bytes()),
        "quoted_bad.csv:9: column 3 \"x\": number \"oops\" is not a number"
    );
}

#[test]
fn bad_quoting_is_an_error_naming_the_line() {
    let s = schema(CSV3);
    assert_eq!(
        read_error("unclosed.csv", &s, b"y,id,x\n1,a,1\n0,\"open,2\n1,b,3\n"),
        "unclosed.csv:3: column 2 \"id\": a quoted field is not closed before the end of the file \
         or within 1000 lines (1048576 bytes); reading resumes at the next line"
    );
    assert_eq!(
        read_error("after_quote.csv", &s, b"y,id,x\n1,\"a\"b,1\n"),
        "after_quote.csv:2: field 2: a closing quote must be followed by the delimiter or the end \
         of the line"
    );
}

#[test]
fn quoting_can_be_turned_off_for_tsv_with_literal_quotes() {
    let s = schema(
        "header = false\nquote = \"\"\n[[column]]\nname = \"title\"\ntype = \"categorical\"\n",
    );
    let (batches, _) = read("titles.tsv", &s, b"\"Heat\" (1995)\n\"a\n", options(8)).unwrap();
    let ColumnData::Categorical(t) = &batches[0].columns[0] else {
        panic!()
    };
    assert_eq!(t.iter().collect::<Vec<_>>(), ["\"Heat\" (1995)", "\"a"]);
}

#[test]
fn wrong_column_count_names_the_file_and_line() {
    let s = schema(CSV3);
    assert_eq!(
        read_error("count.csv", &s, b"y,id,x\n1,a,1\n0,b\n"),
        "count.csv:3: 2 fields where the schema has 3 columns"
    );
    assert_eq!(
        read_error("blank.csv", &s, b"y,id,x\n1,a,1\n\n0,b,2\n"),
        "blank.csv:3: 1 fields where the schema has 3 columns"
    );
    assert_eq!(
        read_error("extra.csv", &s, b"y,id,x\n1,a,1,\n"),
        "extra.csv:2: 4 fields where the schema has 3 columns"
    );
}

#[test]
fn unparsable_and_non_finite_numbers_name_the_column() {
    let s = schema(ALL_TYPES);
    let row = |fields: [&str; 9]| format!("{ALL_TYPES_HEADER}{}\n", fields.join("\t"));
    let ok = ["1", "u", "1", "a", "5", "1", "i", "7", "-"];
    let cases: [(usize, &str, &str); 10] = [
        (
            2,
            "1,5",
            "column 3 \"price\": number \"1,5\" is not a number",
        ),
        (
            2,
            "NaN",
            "column 3 \"price\": number \"NaN\" is not finite (NaN and inf are not allowed)",
        ),
        (
            2,
            "-inf",
            "column 3 \"price\": number \"-inf\" is not finite (NaN and inf are not allowed)",
        ),
        (
            0,
            "nan",
            "column 1 \"click\": label \"nan\" is not finite (NaN and inf are not allowed)",
        ),
        (0, "2", "column 1 \"click\": label \"2\" is not 0 or 1"),
        (0, "", "column 1 \"click\": label \"\" is not a number"),
        (
            5,
            "inf",
            "column 6 \"w\": weight \"inf\" is not finite (NaN and inf are not allowed)",
        ),
        (
            5,
            "-1",
            "column 6 \"w\": weight \"-1\" is negative or too large for f32",
        ),
        (
            4,
            "1.5",
            "column 5 \"time\": timestamp \"1.5\" is not an integer",
        ),
        (
            3,
            "a||b",
            "column 4 \"genres\": value 2 of \"a||b\" is empty (separator \"|\")",
        ),
    ];
    for (column, value, message) in cases {
        let mut fields = ok;
        fields[column] = value;
        assert_eq!(
            read_error("num.tsv", &s, row(fields).as_bytes()),
            format!("num.tsv:2: {message}")
        );
    }
    let mut fields = ok;
    fields[7] = "7|8";
    assert_eq!(
        read_error("seq.tsv", &s, row(fields).as_bytes()),
        "seq.tsv:2: column 8 \"hist_t\": 2 times for the 1 ids of sequence column \"hist\""
    );
    fields[7] = "7|x";
    assert_eq!(
        read_error("seq2.tsv", &s, row(fields).as_bytes()),
        "seq2.tsv:2: column 8 \"hist_t\": sequence time \"x\" is not a number"
    );
}

#[test]
fn invalid_utf8_names_the_column() {
    let s = schema(CSV3);
    assert_eq!(
        read_error("utf8.csv", &s, b"y,id,x\n1,\xff\xfe,1\n"),
        "utf8.csv:2: column 2 \"id\": not valid UTF-8: invalid utf-8 sequence of 1 bytes from \
         index 0"
    );
}

#[test]
fn empty_and_missing_files_are_errors() {
    let s = schema(CSV3);
    assert_eq!(
        read_error("empty.csv", &s, b""),
        "empty.csv: empty file: no header line"
    );
    assert_eq!(
        read_error("header_only.csv", &s, b"y,id,x\r\n"),
        "header_only.csv: empty file: no rows after the header"
    );
    let no_header = schema(&CSV3.replace("delimiter", "header = false\ndelimiter"));
    assert_eq!(
        read_error("empty2.csv", &no_header, b""),
        "empty2.csv: empty file: no rows"
    );
    let missing = scratch_dir().join("does-not-exist.csv");
    let e = TableReader::open(&missing, &s, ReadOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        short(&e.to_string()),
        "does-not-exist.csv: cannot open: No such file or directory (os error 2)"
    );
}

#[test]
fn a_header_that_differs_from_the_schema_names_the_column() {
    let s = schema(CSV3);
    assert_eq!(
        read_error("header.csv", &s, b"y,ID,x\n1,a,1\n"),
        "header.csv:1: column 2 \"id\": header names \"ID\" where the schema has \"id\""
    );
    assert_eq!(
        read_error("header2.csv", &s, b"y,id\n1,a\n"),
        "header2.csv:1: header has 2 columns, the schema 3"
    );
}

#[test]
fn criteo_layout_reads_from_the_three_line_schema() {
    let s = schema(
        "delimiter = \"\\t\"\nheader = false\n\
         columns = \"label:label, numeric:I1-I13, categorical:C1-C26\"\n",
    );
    assert_eq!(s.columns.len(), 40);
    let mut text = String::new();
    for r in 0..5u32 {
        let mut fields = vec![(r % 2).to_string()];
        // Every third numeric and every fourth categorical value is missing, as in Criteo.
        fields.extend((0..13).map(|i| {
            if (i + r) % 3 == 0 {
                String::new()
            } else {
                format!("{}", i * r)
            }
        }));
        fields.extend((0..26).map(|i| {
            if (i + r) % 4 == 0 {
                String::new()
            } else {
                format!("{:08x}", i * 977 + r)
            }
        }));
        text += &fields.join("\t");
        text += "\n";
    }
    let (batches, _) = read("criteo.tsv", &s, text.as_bytes(), options(3)).unwrap();
    assert_eq!(batches.iter().map(|b| b.rows).collect::<Vec<_>>(), [3, 2]);
    let ColumnData::Numeric(i1) = &batches[0].columns[1] else {
        panic!()
    };
    assert!(i1[0].is_nan() && i1[1] == 0.0);
    let ColumnData::Numeric(i2) = &batches[0].columns[2] else {
        panic!()
    };
    assert_eq!(i2[1], 1.0);
    let ColumnData::Categorical(c1) = &batches[1].columns[14] else {
        panic!()
    };
    assert_eq!(c1.iter().collect::<Vec<_>>(), ["00000003", ""]);
    assert_eq!(s.columns[39].name, "C26");
}

#[test]
fn the_criteo_fixture_reads_with_its_schema_file() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/criteo");
    let s = Schema::load(&dir.join("schema.toml")).unwrap();
    let mut reader = TableReader::open(&dir.join("sample.tsv"), &s, options(4)).unwrap();
    let batches = reader.by_ref().collect::<Result<Vec<_>>>().unwrap();
    assert_eq!(batches.iter().map(|b| b.rows).collect::<Vec<_>>(), [4, 2]);
    assert_eq!(reader.into_bad_rows().count, 0);
    // First line: label 0, I1 = 1069, I2 empty, C1 = 17d7ab26, C5 empty.
    let b = &batches[0];
    assert_eq!(b.columns[0], ColumnData::Label(vec![0.0, 0.0, 1.0, 1.0]));
    let ColumnData::Numeric(i1) = &b.columns[1] else {
        panic!()
    };
    let ColumnData::Numeric(i2) = &b.columns[2] else {
        panic!()
    };
    assert_eq!(i1[0], 1069.0);
    assert!(i2[0].is_nan());
    let ColumnData::Categorical(c1) = &b.columns[14] else {
        panic!()
    };
    let ColumnData::Categorical(c5) = &b.columns[18] else {
        panic!()
    };
    assert_eq!((c1.get(0), c5.get(0)), ("17d7ab26", ""));
}

#[test]
fn skip_bad_rows_counts_them_keeps_the_first_reasons_and_no_partial_rows() {
    let s = schema(CSV3);
    let text = "y,id,x\n1,a,1\n1,b,bad\n0,c,3\n2,d,4\nonly\n1,e,NaN\n0,f,6\n";
    let opts = ReadOptions {
        batch_rows: 2,
        skip_bad_rows: true,
        kept_reasons: 2,
    };
    let (batches, bad) = read("skip.csv", &s, text.as_bytes(), opts).unwrap();
    assert_eq!(ids(&batches), ["a", "c", "f"]);
    let lines: Vec<u64> = batches.iter().flat_map(|b| b.lines.clone()).collect();
    assert_eq!(lines, [2, 4, 8]);
    for b in &batches {
        let ColumnData::Numeric(x) = &b.columns[2] else {
            panic!()
        };
        assert_eq!(x.len(), b.rows, "a rejected row leaves no value behind");
    }
    assert_eq!(bad.count, 4);
    let reasons: Vec<String> = bad.first.iter().map(|e| short(&e.to_string())).collect();
    assert_eq!(
        reasons,
        [
            "skip.csv:3: column 3 \"x\": number \"bad\" is not a number",
            "skip.csv:5: column 1 \"y\": label \"2\" is not 0 or 1",
        ]
    );
    assert!(bad.to_string().starts_with("4 bad rows skipped\n"));
    // Every row bad: zero batches and the count, not an empty-file error.
    let opts = ReadOptions {
        skip_bad_rows: true,
        ..ReadOptions::default()
    };
    let (batches, bad) = read("all_bad.csv", &s, b"y,id,x\n1,a,x\n", opts).unwrap();
    assert_eq!((batches.len(), bad.count), (0, 1));
}

#[test]
fn a_file_larger_than_a_batch_streams_in_full_batches() {
    let s = schema(CSV3);
    let rows = 10_007u32;
    let mut text = String::from("y,id,x\n");
    for r in 0..rows {
        text += &format!("{},\"id,{r}\",{r}\r\n", r % 2);
    }
    let path = scratch("big.csv", text.as_bytes());
    let mut reader = TableReader::open(&path, &s, options(1000)).unwrap();
    let (mut seen, mut sum, mut batches) = (0u32, 0.0, 0);
    while let Some(b) = reader.next_batch().unwrap() {
        assert_eq!(b.rows, if batches < 10 { 1000 } else { 7 });
        let ColumnData::Numeric(x) = &b.columns[2] else {
            panic!()
        };
        let ColumnData::Categorical(id) = &b.columns[1] else {
            panic!()
        };
        for (i, v) in x.iter().enumerate() {
            assert_eq!(*v, f64::from(seen));
            assert_eq!(id.get(i), format!("id,{seen}"));
            assert_eq!(b.lines[i], u64::from(seen) + 2);
            seen += 1;
            sum += v;
        }
        batches += 1;
    }
    assert_eq!((seen, batches, reader.rows()), (rows, 11, u64::from(rows)));
    assert_eq!(sum, f64::from(rows - 1) * f64::from(rows) / 2.0);
    assert!(reader.next_batch().unwrap().is_none(), "stays exhausted");
}

#[test]
fn batch_rows_zero_is_rejected() {
    let e = TableReader::new(&b"1\n"[..], "in", &schema(CSV3), options(0))
        .err()
        .unwrap();
    assert_eq!(e.to_string(), "in: batch_rows must be at least 1");
}

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    /// Quotes a field the way a CSV writer must: when it holds the delimiter, a quote or a line
    /// break, or starts with a quote; otherwise sometimes anyway (both must read back).
    fn quote(field: &str, always: bool) -> String {
        if always || field.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field.to_string()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn written_rows_read_back_equal(
            rows in prop::collection::vec(
                (any::<bool>(), "[a-c,\"\n\r é]{0,8}", -1e6f64..1e6, any::<bool>()),
                1..40,
            ),
            crlf in any::<bool>(),
            batch_rows in 1usize..7,
        ) {
            let s = schema(CSV3);
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("y,id,x{eol}");
            for (y, id, x, always) in &rows {
                text += &format!("{},{},{}{eol}", u8::from(*y), quote(id, *always), quote(&x.to_string(), *always));
            }
            let (batches, bad) = read("prop.csv", &s, text.as_bytes(), options(batch_rows)).unwrap();
            prop_assert_eq!(bad.count, 0);
            prop_assert_eq!(ids(&batches), rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>());
            let xs: Vec<f64> = batches.iter().flat_map(|b| match &b.columns[2] {
                ColumnData::Numeric(x) => x.clone(),
                _ => unreachable!(),
            }).collect();
            prop_assert_eq!(xs, rows.iter().map(|r| r.2).collect::<Vec<_>>());
        }
    }
}
