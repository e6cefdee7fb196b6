//! The text of a table: line endings, quoting, and the errors that name the file, line and column.

use super::*;
use crate::data::ColumnData;

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
        // −1 is the in-memory sentinel of an empty label field, never a value in a file.
        (0, "-1", "column 1 \"click\": label \"-1\" is not 0 or 1"),
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
