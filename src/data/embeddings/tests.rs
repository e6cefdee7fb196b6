//! Round trips of the three formats, files numpy and safetensors wrote (`tests/fixtures/embeddings`,
//! from `tests/fixtures/make_embedding_fixtures.py`), and the text format's spellings. The errors
//! are in `error_tests.rs`.

use std::path::{Path, PathBuf};

use ::safetensors::tensor::TensorView;
use ::safetensors::Dtype;

use super::EmbeddingTable;
use crate::rng::Rng;

/// A fresh directory for one test's files.
pub(super) fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-emb-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` as `dir/name` and returns the path.
pub(super) fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A test-only `.npy` writer (version 1.0), so that tests need no Python: `descr` as given, the
/// data as raw little-endian bytes.
pub(super) fn npy(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let fortran = if fortran { "True" } else { "False" };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((dict.len() as u16).to_le_bytes());
    bytes.extend(dict.as_bytes());
    bytes.extend(data);
    bytes
}

/// Little-endian bytes of f32 values.
pub(super) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian bytes of i64 values.
pub(super) fn i64_bytes(values: &[i64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// One tensor for [`safetensors_file`]: name, dtype, shape, little-endian bytes.
pub(super) type RawTensor<'a> = (&'a str, Dtype, &'a [usize], &'a [u8]);

/// A safetensors file of the given tensors, by the crate's writer.
pub(super) fn safetensors_file(tensors: &[RawTensor]) -> Vec<u8> {
    let views = tensors
        .iter()
        .map(|&(name, dtype, shape, data)| {
            (name, TensorView::new(dtype, shape.to_vec(), data).unwrap())
        })
        .collect::<Vec<_>>();
    ::safetensors::serialize(views, None).unwrap()
}

/// A seeded table of `n` rows and `dim` components in [-2, 2), with the given ids.
fn random_table(seed: u64, ids: Vec<String>, dim: usize) -> EmbeddingTable {
    let mut rng = Rng::new(seed);
    let vectors = (0..ids.len() * dim)
        .map(|_| rng.uniform(-2.0, 2.0))
        .collect();
    EmbeddingTable::new(ids, dim, vectors).unwrap()
}

fn bits(table: &EmbeddingTable) -> Vec<u32> {
    table.vectors.iter().map(|v| v.to_bits()).collect()
}

/// The fixtures' formula: `(i*dim + k)/8 - 1 + plus`, in f64, then rounded to f32.
fn formula(n: usize, dim: usize, plus: f64) -> Vec<f32> {
    (0..n * dim)
        .map(|j| (j as f64 / 8.0 - 1.0 + plus) as f32)
        .collect()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/embeddings")
        .join(name)
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn text_round_trip_keeps_every_bit_and_string_ids() {
    let dir = scratch("text_round_trip");
    let ids = strings(&["a", "New York", "42", "-7", "ünï"]);
    let mut table = random_table(1, ids, 7);
    // Values whose shortest spelling needs an exponent, and a negative zero.
    table.vectors[..4].copy_from_slice(&[1e-30, -3.4e38, f32::MIN_POSITIVE, -0.0]);
    let path = dir.join("emb.tsv");
    table.write_text(&path).unwrap();
    let back = EmbeddingTable::read(&path).unwrap();
    assert_eq!(back.ids, table.ids);
    assert_eq!((back.dim, bits(&back)), (table.dim, bits(&table)));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("a\t1e-30 -3.4e38 "), "{text}");
}

#[test]
fn safetensors_round_trip_is_exact_and_reproducible() {
    let dir = scratch("safetensors_round_trip");
    let ids = strings(&[
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "12",
    ]);
    let table = random_table(2, ids, 3);
    assert!(table.ids_are_integers());
    let (first, second) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    table.write(&first).unwrap();
    table.write(&second).unwrap();
    let back = EmbeddingTable::read(&first).unwrap();
    assert_eq!(back.ids, table.ids);
    assert_eq!((back.dim, bits(&back)), (table.dim, bits(&table)));
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
}

#[test]
fn npy_pairs_round_trip_with_every_id_dtype_and_text_ids() {
    let dir = scratch("npy_round_trip");
    let vectors = [0.5f32, -1.25, 3.0, 1e-3, -7.5, 2.0];
    let expected_ids = [
        ("<i8", "-5"),
        ("<i4", "-5"),
        ("<u4", "4294967295"),
        ("<u8", "5"),
    ];
    for (descr, last) in expected_ids {
        let mut ids = 7u64.to_le_bytes().to_vec();
        match descr {
            "<i8" => ids.extend((-5i64).to_le_bytes()),
            "<i4" => ids = [7i32.to_le_bytes(), (-5i32).to_le_bytes()].concat(),
            "<u4" => ids = [7u32.to_le_bytes(), u32::MAX.to_le_bytes()].concat(),
            _ => ids.extend(5u64.to_le_bytes()),
        }
        let name = &descr[1..];
        let path = put(
            &dir,
            &format!("{name}.npy"),
            &npy("<f4", false, &[2, 3], &f32_bytes(&vectors)),
        );
        put(
            &dir,
            &format!("{name}.ids.npy"),
            &npy(descr, false, &[2], &ids),
        );
        let table = EmbeddingTable::read(&path).unwrap();
        assert_eq!(table.ids, strings(&["7", last]), "{descr}");
        assert_eq!((table.dim, table.vectors.as_slice()), (3, &vectors[..]));
    }
    let f8: Vec<u8> = vectors
        .iter()
        .flat_map(|&v| (v as f64).to_le_bytes())
        .collect();
    let path = put(&dir, "words.npy", &npy("<f8", false, &[3, 2], &f8));
    put(&dir, "words.ids.txt", b"cat\r\ndog house\n#hash\n");
    let table = EmbeddingTable::read(&path).unwrap();
    assert_eq!(table.ids, strings(&["cat", "dog house", "#hash"]));
    assert_eq!((table.dim, table.vectors.as_slice()), (2, &vectors[..]));
}

#[test]
fn numpy_written_fixtures_read_as_numpy_wrote_them() {
    let f4 = EmbeddingTable::read(&fixture("f4.npy")).unwrap();
    assert_eq!(f4.ids, strings(&["7", "-3", "1000000000000"]));
    assert_eq!((f4.dim, f4.vectors.clone()), (4, formula(3, 4, 0.0)));
    let f8 = EmbeddingTable::read(&fixture("f8.npy")).unwrap();
    assert_eq!(f8.ids, strings(&["alice", "bob", "carol x"]));
    assert_eq!((f8.dim, f8.vectors.clone()), (5, formula(3, 5, 0.1)));
    let v3 = EmbeddingTable::read(&fixture("v3.npy")).unwrap();
    assert_eq!(v3.ids, strings(&["4000000000", "1"]));
    assert_eq!((v3.dim, v3.vectors.clone()), (3, formula(2, 3, 0.0)));
    let st = EmbeddingTable::read(&fixture("st.safetensors")).unwrap();
    assert_eq!(st.ids, strings(&["5", "-6"]));
    assert_eq!((st.dim, st.vectors.clone()), (3, formula(2, 3, 0.1)));
}

#[test]
fn safetensors_half_double_and_unsigned_dtypes_convert_to_f32_and_decimal_ids() {
    let dir = scratch("safetensors_dtypes");
    let values = [0.5f32, -1.25, 3.0, 1.0 / 3.0];
    let f16: Vec<u8> = values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    let bf16: Vec<u8> = values
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect();
    let f64s: Vec<u8> = values
        .iter()
        .flat_map(|&v| (v as f64).to_le_bytes())
        .collect();
    let u32s = [3u32.to_le_bytes(), u32::MAX.to_le_bytes()].concat();
    let u64s = [3u64.to_le_bytes(), u64::MAX.to_le_bytes()].concat();
    // (vectors dtype and bytes, ids dtype and bytes, the second id, the third component)
    type Case<'a> = (Dtype, &'a [u8], Dtype, &'a [u8], &'a str, f32);
    let cases: [Case; 3] = [
        (
            Dtype::F16,
            &f16,
            Dtype::U32,
            &u32s,
            "4294967295",
            half::f16::from_f32(1.0 / 3.0).to_f32(),
        ),
        (
            Dtype::BF16,
            &bf16,
            Dtype::U64,
            &u64s,
            "18446744073709551615",
            half::bf16::from_f32(1.0 / 3.0).to_f32(),
        ),
        (
            Dtype::F64,
            &f64s,
            Dtype::I64,
            &i64_bytes(&[3, -1]),
            "-1",
            1.0 / 3.0,
        ),
    ];
    for (i, (vdtype, vbytes, idtype, ibytes, last, third)) in cases.into_iter().enumerate() {
        let file = safetensors_file(&[
            ("ids", idtype, &[2], ibytes),
            ("vectors", vdtype, &[2, 2], vbytes),
        ]);
        let table = EmbeddingTable::read(&put(&dir, &format!("{i}.safetensors"), &file)).unwrap();
        assert_eq!(table.ids, strings(&["3", last]), "{vdtype:?}");
        assert_eq!(table.vectors, [0.5, -1.25, 3.0, third], "{vdtype:?}");
    }
}

#[test]
fn text_accepts_commas_spaces_comments_and_crlf() {
    let dir = scratch("text_spellings");
    let text = "# user vectors\n\n7\t1, 2.5 ,-3\r\n  # indented comment\nx y\t4 5 6\n12 7e0, 8 9\n   \nlast\t1\t2\t3";
    let table = EmbeddingTable::read(&put(&dir, "emb.txt", text.as_bytes())).unwrap();
    assert_eq!(table.ids, strings(&["7", "x y", "12", "last"]));
    assert_eq!(table.dim, 3);
    assert_eq!(
        table.vectors,
        [1.0, 2.5, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1.0, 2.0, 3.0]
    );
}

#[test]
fn rows_index_and_integer_ids_describe_the_table() {
    let table = random_table(3, strings(&["10", "b", "-3"]), 4);
    assert_eq!((table.len(), table.is_empty()), (3, false));
    assert_eq!(table.row(1), &table.vectors[4..8]);
    let index = table.index();
    assert_eq!((index.len(), index["b"], index["-3"]), (3, 1, 2));
    assert!(!table.ids_are_integers());
    for spelling in ["+1", "01", "1.0", " 1", "9223372036854775808"] {
        let table = random_table(4, strings(&["2", spelling]), 1);
        assert!(!table.ids_are_integers(), "{spelling:?}");
    }
    assert!(!random_table(5, strings(&["2", "-0"]), 1).ids_are_integers());
}

#[test]
fn a_large_table_round_trips_through_every_format() {
    // 10k × 64: the readers are one pass each (a quadratic step would show here as minutes).
    let dir = scratch("large");
    let ids: Vec<String> = (0..10_000).map(|i| (i * 7 - 3000).to_string()).collect();
    let table = random_table(6, ids, 64);
    table.write(&dir.join("big.safetensors")).unwrap();
    table.write_text(&dir.join("big.txt")).unwrap();
    let ids: Vec<i64> = table.ids.iter().map(|id| id.parse().unwrap()).collect();
    put(
        &dir,
        "big.npy",
        &npy("<f4", false, &[10_000, 64], &f32_bytes(&table.vectors)),
    );
    put(
        &dir,
        "big.ids.npy",
        &npy("<i8", false, &[10_000], &i64_bytes(&ids)),
    );
    for name in ["big.safetensors", "big.txt", "big.npy"] {
        let back = EmbeddingTable::read(&dir.join(name)).unwrap();
        assert_eq!(back.ids, table.ids, "{name}");
        assert_eq!(bits(&back), bits(&table), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn npy_headers_parse_in_any_key_order_and_quoting() {
    use super::npy_header::{parse, Header};
    let header = |dict: &str| {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict.as_bytes());
        bytes.extend([1, 2]);
        bytes
    };
    let expected = Header {
        descr: "<f8".to_owned(),
        fortran_order: false,
        shape: vec![3, 4],
    };
    for dict in [
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }\n",
        "{\"shape\":(3L,4L),\"fortran_order\":False,\"descr\":\"<f8\"}",
    ] {
        let bytes = header(dict);
        assert_eq!(
            parse(&bytes),
            Ok((expected.clone(), &[1u8, 2][..])),
            "{dict}"
        );
    }
    let bad = [
        (
            "{'descr': '<f8', 'shape': (3, 4)}",
            "the .npy header has no \"fortran_order\"",
        ),
        (
            "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}",
            "fortran_order is not True or False",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, x)}",
            "shape is not a tuple",
        ),
    ];
    for (dict, needle) in bad {
        let error = parse(&header(dict)).expect_err(dict);
        assert!(error.contains(needle), "{dict}: {error}");
    }
    let mut long = header("{}");
    long[8] = 200;
    let error = parse(&long).expect_err("a header past the end");
    assert!(error.contains("runs past the end of the file"), "{error}");
}
