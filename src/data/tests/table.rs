//! Reading typed columns: every type, the Criteo layout, streaming in batches, skipping bad rows.

use super::*;
use crate::data::{ColumnData, MISSING};
use crate::kernels::loss::MISSING_LABEL;

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

#[test]
fn an_empty_label_field_is_a_missing_label_and_other_text_stays_an_error() {
    let s = schema("delimiter = \",\"\ncolumns = \"label:click, label:buy, numeric:x\"");
    let text = "click,buy,x\n1,,2\n, ,3\n0,1,\n";
    let (batches, bad) = read("missing.csv", &s, text.as_bytes(), options(8)).unwrap();
    assert_eq!((batches.len(), bad.count), (1, 0));
    let b = &batches[0];
    assert_eq!(
        b.columns[0],
        ColumnData::Label(vec![1.0, MISSING_LABEL, 0.0])
    );
    assert_eq!(
        b.columns[1],
        ColumnData::Label(vec![MISSING_LABEL; 2].into_iter().chain([1.0]).collect())
    );
    assert_eq!(MISSING_LABEL, -1.0);
    // Text that is not empty and not 0 or 1 still names file, line and column; so does the
    // sentinel's own text.
    for (field, message) in [
        ("x", "label \"x\" is not a number"),
        ("-1", "label \"-1\" is not 0 or 1"),
        ("0.5", "label \"0.5\" is not 0 or 1"),
    ] {
        let text = format!("click,buy,x\n1,0,2\n1,{field},3\n");
        assert_eq!(
            read_error("bad.csv", &s, text.as_bytes()),
            format!("bad.csv:3: column 2 \"buy\": {message}")
        );
    }
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
