//! Every refused input gets an error naming the file and the line, row, component or tensor; the
//! whole message is compared, with the scratch directory cut off the front.

use std::path::Path;

use ::safetensors::Dtype;

use super::tests::{f32_bytes, i64_bytes, npy, put, safetensors_file, scratch, RawTensor};
use super::EmbeddingTable;
use crate::{Error, Result};

/// `result`'s error message without `dir`; a success fails the test.
fn message<T: std::fmt::Debug>(dir: &Path, result: Result<T>) -> String {
    let error = result.expect_err("the input should be refused");
    error
        .to_string()
        .replace(&format!("{}/", dir.display()), "")
}

/// Each `(text, message)`: reading `text` as `emb.txt` fails with exactly `message`.
fn assert_text_errors(test: &str, cases: &[(&[u8], &str)]) {
    let dir = scratch(test);
    for &(text, expected) in cases {
        let path = put(&dir, "emb.txt", text);
        let got = message(&dir, EmbeddingTable::read(&path));
        assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(text));
    }
}

const FINITE: &str =
    "is not finite; every component must be (a value past f32's range reads as inf)";

#[test]
fn text_widths_and_numbers_are_checked_by_line_and_column() {
    assert_text_errors(
        "text_widths",
        &[
            (b"a\t1 2\nb\t1 2 3\n", "emb.txt:2: column 3: 3 components where the first row (line 1) has 2; this one is past the end"),
            (b"a\t1 2 3\n# c\nb\t1 2\n", "emb.txt:3: column 3: 2 components where the first row (line 1) has 3; this one is missing"),
            (b"a\t1 2\nb\t1 x\n", "emb.txt:2: column 2: component 2 \"x\" is not a number"),
            (b"a\t1,,2\n", "emb.txt:1: column 2: component 2 is empty (a comma with no number before or after it)"),
            (b"a 1 2\nb 3 4,\n", "emb.txt:2: column 3: component 3 is empty (a comma with no number before or after it)"),
            (b"a\t1 2\n\xff\t2 3\n", "emb.txt:2: not valid UTF-8: invalid utf-8 sequence of 1 bytes from index 0"),
        ],
    );
}

#[test]
fn text_non_finite_values_duplicate_and_empty_ids_are_refused() {
    let nan = format!("emb.txt:2: column 2: NaN {FINITE}");
    let inf = format!("emb.txt:1: column 1: inf {FINITE}");
    let minus_inf = format!("emb.txt:1: column 3: -inf {FINITE}");
    assert_text_errors(
        "text_values",
        &[
            (b"a\t1 2\nb\t3 NaN\n", &nan),
            (b"a\t1e39 2\n", &inf),
            (b"a\t1 2 -inf\n", &minus_inf),
            (
                b"a\t1\nb\t2\n\na\t3\n",
                "emb.txt:4: duplicate id \"a\", first seen at line 1",
            ),
            (b"a\t1 2\n\t1 2\n", "emb.txt:2: empty id"),
        ],
    );
}

#[test]
fn text_without_rows_or_components_is_refused() {
    let d0 = "emb.txt:1: the first row has no components (D = 0); write `id<TAB>v1 v2 …`";
    assert_text_errors(
        "text_empty",
        &[
            (
                b"",
                "emb.txt: no rows: an embedding table needs at least one id",
            ),
            (
                b"# only a comment\n\n  \n",
                "emb.txt: no rows: an embedding table needs at least one id",
            ),
            (b"a\n", d0),
            (b"a\t\n", d0),
        ],
    );
    let dir = scratch("text_missing");
    let got = message(&dir, EmbeddingTable::read(&dir.join("none.txt")));
    assert!(got.starts_with("none.txt: cannot read: "), "{got}");
}

/// Each `(tensors, message)`: reading them as `x.safetensors` fails with exactly `message`.
fn assert_safetensors_errors(test: &str, cases: &[(&[RawTensor], &str)]) {
    let dir = scratch(test);
    for &(tensors, expected) in cases {
        let path = put(&dir, "x.safetensors", &safetensors_file(tensors));
        assert_eq!(message(&dir, EmbeddingTable::read(&path)), expected);
    }
}

#[test]
fn safetensors_names_the_tensor_that_is_missing_or_misshapen() {
    let v = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
    let ids = i64_bytes(&[1, 2]);
    let ids3 = i64_bytes(&[1, 2, 3]);
    let i32s = [1i32.to_le_bytes(), 2i32.to_le_bytes()].concat();
    let vectors = ("vectors", Dtype::F32, &[2usize, 2][..], &v[..]);
    let good_ids = ("ids", Dtype::I64, &[2usize][..], &ids[..]);
    let layout = "an embedding file holds `ids` [N] and `vectors` [N, D]";
    let no_ids =
        format!("x.safetensors: tensor `ids`: missing (the file has [\"vectors\"]); {layout}");
    let no_vectors = format!(
        "x.safetensors: tensor `vectors`: missing (the file has [\"ids\", \"other\"]); {layout}"
    );
    assert_safetensors_errors(
        "safetensors_shapes",
        &[
            (&[vectors], &no_ids),
            (&[good_ids, ("other", Dtype::F32, &[4], &v)], &no_vectors),
            (&[good_ids, ("vectors", Dtype::F32, &[4], &v)], "x.safetensors: tensor `vectors`: shape [4]; expected [N, D] (rank 2)"),
            (&[("ids", Dtype::I64, &[3], &ids3), vectors], "x.safetensors: tensor `ids`: shape [3]; expected [2], one id per row of `vectors` [2, 2]"),
            (&[("ids", Dtype::F32, &[2], &v[..8]), vectors], "x.safetensors: tensor `ids`: dtype F32; ids must be I64, I32, U32 or U64"),
            (&[good_ids, ("vectors", Dtype::I32, &[1, 2], &i32s)], "x.safetensors: tensor `ids`: shape [2]; expected [1], one id per row of `vectors` [1, 2]"),
            (&[good_ids, ("vectors", Dtype::I32, &[2, 1], &i32s)], "x.safetensors: tensor `vectors`: dtype I32; vectors must be F32, F64, F16 or BF16"),
            (&[("ids", Dtype::I64, &[2], &ids), ("vectors", Dtype::F32, &[2, 0], &[])], "x.safetensors: tensor `vectors`: the vectors have width D = 0"),
            (&[("ids", Dtype::I64, &[0], &[]), ("vectors", Dtype::F32, &[0, 3], &[])], "x.safetensors: tensor `ids`: no rows: an embedding table needs at least one id"),
        ],
    );
}

#[test]
fn safetensors_names_the_row_of_a_bad_value_or_duplicate_id() {
    let nan = f32_bytes(&[1.0, 2.0, 3.0, f32::NAN]);
    let ok = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
    let (ids, twice) = (i64_bytes(&[1, 2]), i64_bytes(&[3, 3]));
    let bad_value = format!(
        "x.safetensors: tensor `vectors`: row 1 (0-based), component 2 (1-based): NaN {FINITE}"
    );
    assert_safetensors_errors(
        "safetensors_rows",
        &[
            (&[("ids", Dtype::I64, &[2], &ids), ("vectors", Dtype::F32, &[2, 2], &nan)], &bad_value),
            (&[("ids", Dtype::I64, &[2], &twice), ("vectors", Dtype::F32, &[2, 2], &ok)], "x.safetensors: tensor `ids`: row 1 (0-based): duplicate id \"3\", first seen at row 0"),
        ],
    );
    let dir = scratch("safetensors_garbage");
    let path = put(&dir, "x.safetensors", b"not a safetensors file");
    let got = message(&dir, EmbeddingTable::read(&path));
    assert!(
        got.starts_with("x.safetensors: not a valid safetensors file: "),
        "{got}"
    );
}

#[test]
fn npy_refuses_other_layouts_and_dtypes() {
    let dir = scratch("npy_layouts");
    let v = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    put(
        &dir,
        "x.ids.npy",
        &npy("<i8", false, &[2], &i64_bytes(&[1, 2])),
    );
    let cases: [(Vec<u8>, &str); 7] = [
        (npy("<f4", true, &[2, 3], &v), "x.npy: Fortran order; save a C-ordered array (numpy.ascontiguousarray(a))"),
        (npy("<i4", false, &[2, 3], &v), "x.npy: dtype \"<i4\"; the vectors must be little-endian float32 or float64 ('<f4' or '<f8'; numpy: a.astype('<f4'))"),
        (npy(">f4", false, &[2, 3], &v), "x.npy: dtype \">f4\"; the vectors must be little-endian float32 or float64 ('<f4' or '<f8'; numpy: a.astype('<f4'))"),
        (npy("<f4", false, &[6], &v), "x.npy: shape [6]; expected (N, D) (rank 2)"),
        (npy("<f4", false, &[2, 3], &v[..20]), "x.npy: 20 bytes of data where shape [2, 3] of \"<f4\" needs 24; truncated?"),
        (npy("<f4", false, &[2, 0], &[]), "x.npy: the vectors have width D = 0"),
        (b"PK\x03\x04 a zip, not an npy".to_vec(), "x.npy: not an .npy file (no \\x93NUMPY magic)"),
    ];
    for (bytes, expected) in cases {
        let path = put(&dir, "x.npy", &bytes);
        assert_eq!(message(&dir, EmbeddingTable::read(&path)), expected);
    }
}

#[test]
fn npy_ids_must_be_there_once_and_match_the_rows() {
    let dir = scratch("npy_ids");
    let path = put(
        &dir,
        "x.npy",
        &npy("<f4", false, &[2, 1], &f32_bytes(&[1.0, 2.0])),
    );
    let got = message(&dir, EmbeddingTable::read(&path));
    let expected =
        "x.npy: no ids: expected x.ids.npy (integer ids) or x.ids.txt (one id per line) beside it";
    assert_eq!(got, expected);
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("x.ids.npy", npy("<i8", false, &[3], &i64_bytes(&[1, 2, 3])), "x.ids.npy: shape [3]; expected (2,), one id per row of x.npy"),
        ("x.ids.npy", npy("<f4", false, &[2], &f32_bytes(&[1.0, 2.0])), "x.ids.npy: dtype \"<f4\"; ids must be little-endian integers ('<i8', '<i4', '<u4' or '<u8'), or strings in a .ids.txt file"),
        ("x.ids.npy", npy("<i8", false, &[2], &i64_bytes(&[7, 7])), "x.ids.npy: row 1 (0-based): duplicate id \"7\", first seen at row 0"),
        ("x.ids.txt", b"a\nb\nc\n".to_vec(), "x.ids.txt: 3 ids (lines) where x.npy has 2 rows"),
        ("x.ids.txt", b"a\na\n".to_vec(), "x.ids.txt:2: duplicate id \"a\", first seen at line 1"),
        ("x.ids.txt", b"a\n\n".to_vec(), "x.ids.txt:2: empty id"),
    ];
    for (name, bytes, expected) in cases {
        let ids = put(&dir, name, &bytes);
        assert_eq!(message(&dir, EmbeddingTable::read(&path)), expected);
        std::fs::remove_file(ids).unwrap();
    }
    put(
        &dir,
        "x.ids.npy",
        &npy("<i8", false, &[2], &i64_bytes(&[1, 2])),
    );
    put(&dir, "x.ids.txt", b"a\nb\n");
    let got = message(&dir, EmbeddingTable::read(&path));
    assert_eq!(
        got,
        "x.npy: both x.ids.npy and x.ids.txt exist; keep the one that holds the ids"
    );
}

#[test]
fn npy_names_the_row_and_component_of_a_non_finite_value() {
    let dir = scratch("npy_values");
    put(
        &dir,
        "x.ids.npy",
        &npy("<i8", false, &[2], &i64_bytes(&[1, 2])),
    );
    let nan = npy(
        "<f4",
        false,
        &[2, 2],
        &f32_bytes(&[1.0, 2.0, f32::NAN, 4.0]),
    );
    let huge: Vec<u8> = [1.0f64, 1e300]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let cases = [
        (
            nan,
            format!("x.npy: row 1 (0-based), component 1 (1-based): NaN {FINITE}"),
        ),
        (
            npy("<f8", false, &[2, 1], &huge),
            format!("x.npy: row 1 (0-based), component 1 (1-based): inf {FINITE}"),
        ),
    ];
    for (bytes, expected) in cases {
        let path = put(&dir, "x.npy", &bytes);
        assert_eq!(message(&dir, EmbeddingTable::read(&path)), expected);
    }
}

#[test]
fn new_checks_shape_values_and_ids() {
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let memory = "embedding table (in memory)";
    let cases = [
        (
            EmbeddingTable::new(ids(&["a", "b"]), 3, vec![0.5; 5]),
            format!("{memory}: 5 values do not make 2 rows of 3 components"),
        ),
        (
            EmbeddingTable::new(ids(&["a"]), 0, vec![]),
            format!("{memory}: the vectors have width D = 0"),
        ),
        (
            EmbeddingTable::new(vec![], 2, vec![]),
            format!("{memory}: no rows: an embedding table needs at least one id"),
        ),
        (
            EmbeddingTable::new(ids(&["a", "b"]), 1, vec![0.5, f32::INFINITY]),
            format!("{memory}: row 1 (0-based), component 1 (1-based): inf {FINITE}"),
        ),
        (
            EmbeddingTable::new(ids(&["a", ""]), 1, vec![0.5, 1.0]),
            format!("{memory}: row 1 (0-based): empty id"),
        ),
        (
            EmbeddingTable::new(ids(&["a", "b", "a"]), 1, vec![0.5; 3]),
            format!("{memory}: row 2 (0-based): duplicate id \"a\", first seen at row 0"),
        ),
    ];
    for (result, expected) in cases {
        let error = result.expect_err(&expected);
        assert!(matches!(error, Error::Data { .. }), "{error:?}");
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn writers_refuse_what_their_format_cannot_hold() {
    let dir = scratch("writers");
    let table = |ids: &[&str]| {
        let ids = ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let n = ids.len();
        EmbeddingTable::new(ids, 2, vec![0.25; 2 * n]).unwrap()
    };
    let st = dir.join("x.safetensors");
    let not_integer = "is not an integer in decimal (safetensors holds no strings); write the text format instead (EmbeddingTable::write_text)";
    let cases = [
        (table(&["1", "b"]).write(&st), format!("output x.safetensors: id \"b\" of row 1 {not_integer}")),
        (table(&["007"]).write(&st), format!("output x.safetensors: id \"007\" of row 0 {not_integer}")),
        (table(&["1"]).write(&dir.join("x.bin")), "output x.bin: the path must end in `.safetensors` (reading picks the format by extension)".to_owned()),
        (table(&["a", "b\tc"]).write_text(&dir.join("x.txt")), "output x.txt: id \"b\\tc\" of row 1 cannot be written as text: it holds a tab or a line break".to_owned()),
        (table(&["1"]).write_text(&dir.join("x.npy")), "output x.npy: reading would take a `.npy` path for that format; use `.tsv`".to_owned()),
        (table(&[" #a"]).write_text(&dir.join("x.txt")), "output x.txt: id \" #a\" of row 0 cannot be written as text: it starts with `#`, which would make the line a comment".to_owned()),
    ];
    for (result, expected) in cases {
        assert_eq!(message(&dir, result), expected);
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(
        left.is_empty(),
        "a refused write left files behind: {left:?}"
    );
}
