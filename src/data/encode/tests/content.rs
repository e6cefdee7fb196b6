//! The content features (hashid, similarity) on a handmade table: the values they encode, the
//! missing ids they count, the quantile boundaries, a save/load round trip that needs neither
//! the embedding files nor the GPU, and the error of a fit without the content handed in.

use std::sync::Arc;

use super::*;
use crate::data::embeddings::EmbeddingTable;
use crate::data::encode::content::{ContentTables, MissingIds};
use crate::data::encode::similarity::quantile_boundaries;
use crate::kernels::content::{bucket_of, similarity_value_f64, Measure};

fn model() -> ModelConfig {
    config(
        "[[feature]]\nname = \"user\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"user_hash\"\nkind = \"hashid\"\ncolumn = \"user\"\n\
         embeddings = \"unused.txt\"\nbits = 3\nradices = [2, 3]\n\
         [[feature]]\nname = \"sim\"\nkind = \"similarity\"\nuser = \"user\"\nitem = \"city\"\n\
         user_embeddings = \"u.txt\"\nitem_embeddings = \"i.txt\"\nbuckets = 4\n",
    )
}

/// Codes for users a and b (c has none); vectors for users a, b and cities x, y (user c none).
fn content() -> ContentTables {
    let table = |ids: &[&str], v: &[f32]| {
        let ids = ids.iter().map(|s| s.to_string()).collect();
        Arc::new(EmbeddingTable::new(ids, 2, v.to_vec()).unwrap())
    };
    let codes = [("a".to_string(), 5), ("b".to_string(), 0)]
        .into_iter()
        .collect();
    ContentTables {
        codes: [("user_hash".to_string(), Arc::new(codes))].into(),
        similarity: [(
            "sim".to_string(),
            (
                table(&["a", "b"], &[1.0, 0.0, 0.0, 1.0]),
                table(&["x", "y"], &[1.0, 0.2, -1.0, 0.5]),
            ),
        )]
        .into(),
    }
}

fn fitted(d: &Path) -> (Encoder, Schema, PathBuf) {
    let schema = Schema::parse(FLAT_SCHEMA, "schema.toml").unwrap();
    let train = write(d, "train.tsv", FLAT_TRAIN);
    let options = ReadOptions::default();
    let e = Encoder::fit_file_with(
        &model(),
        &schema,
        "schema.toml",
        &train,
        options,
        &content(),
    );
    (e.unwrap(), schema, train)
}

#[test]
fn hashid_is_code_plus_one_and_missing_ids_are_zero_and_counted() {
    let d = dir("content-hashid");
    let (e, schema, train) = fitted(&d);
    let m = e.encode(&read_all(&train, &schema), "t").unwrap();
    // Rows: a, b, a, c.
    assert_eq!(ids(&m.features[1]).1, &[6, 1, 6, 0]);
    // Values 0..=2^3: radix 2 needs 4 digits (2^4 > 8), radix 3 two (9 > 8).
    let bases = e.mns(1);
    assert_eq!((bases[0].digits, bases[1].digits), (4, 2));
    let missing = e.missing_content();
    let one = MissingIds {
        rows: 4,
        missing_rows: 1,
        missing_ids: 1,
    };
    assert_eq!(
        missing,
        vec![("user_hash".into(), one), ("sim".into(), one)]
    );
}

#[test]
fn similarity_buckets_are_training_quantiles_and_missing_is_zero() {
    let d = dir("content-sim");
    let (e, schema, train) = fitted(&d);
    let m = e.encode(&read_all(&train, &schema), "t").unwrap();
    // Rows (a, x), (b, x), (a, y), (c, x): cosines 0.98, 0.20, −0.89, and c has no vector. Three
    // values in 4 buckets: boundaries between consecutive sorted values, so buckets 3, 2, 1.
    assert_eq!(ids(&m.features[2]).1, &[3, 2, 1, 0]);
    let cos = similarity_value_f64(&[1.0, 0.0], &[1.0, 0.2], Measure::Cosine);
    assert_eq!(bucket_of(cos, &[-0.3, 0.6]), 3);
}

#[test]
fn quantile_boundaries_sit_between_values_and_are_deduplicated() {
    let mut values = vec![0.5, 0.1, 0.1, 0.1, 0.9, 0.3];
    // Sorted 0.1 0.1 0.1 0.3 0.5 0.9; 3 buckets: cuts at 2 and 4 → (0.1+0.1)/2, (0.3+0.5)/2.
    assert_eq!(quantile_boundaries(&mut values, 3), vec![0.1, 0.4]);
    let mut ties = vec![0.2; 10];
    assert_eq!(quantile_boundaries(&mut ties, 8), vec![0.2]);
    assert!(quantile_boundaries(&mut [], 8).is_empty());
}

#[test]
fn content_features_round_trip_without_files_or_gpu() {
    let d = dir("content-save");
    let (e, schema, train) = fitted(&d);
    let out = d.join("encoder");
    e.save(&out).unwrap();
    let back = Encoder::load(&out, &model(), &schema, "schema.toml").unwrap();
    let eval = write(&d, "eval.tsv", FLAT_EVAL);
    for file in [&train, &eval] {
        let batch = read_all(file, &schema);
        assert_eq!(
            back.encode(&batch, "t").unwrap(),
            e.encode(&batch, "t").unwrap()
        );
    }
    for f in 0..3 {
        assert_eq!(
            (back.table_rows(f), back.mns(f)),
            (e.table_rows(f), e.mns(f))
        );
    }
    assert_eq!(back.missing_content(), e.missing_content());
    // Another hashid seed is another model: refused, naming the saved and the model's values.
    let other = model_with("seed = 2\n");
    let err = Encoder::load(&out, &other, &schema, "schema.toml").unwrap_err();
    assert!(err.to_string().contains("seed 1"), "{err}");
}

fn model_with(extra: &str) -> ModelConfig {
    let text = format!(
        "[[feature]]\nname = \"user\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"user_hash\"\nkind = \"hashid\"\ncolumn = \"user\"\n\
         embeddings = \"unused.txt\"\nbits = 3\nradices = [2, 3]\n{extra}\
         [[feature]]\nname = \"sim\"\nkind = \"similarity\"\nuser = \"user\"\nitem = \"city\"\n\
         user_embeddings = \"u.txt\"\nitem_embeddings = \"i.txt\"\nbuckets = 4\n"
    );
    config(&text)
}

#[test]
fn a_fit_without_the_content_names_the_feature_key() {
    let d = dir("content-none");
    let schema = Schema::parse(FLAT_SCHEMA, "schema.toml").unwrap();
    let train = write(&d, "train.tsv", FLAT_TRAIN);
    let options = ReadOptions::default();
    let err =
        Encoder::fit_file(&model(), &schema, "schema.toml", &train, options.clone()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("schema.toml: feature[1].embeddings: "),
        "{err}"
    );
    let mut wide = content();
    let (users, _) = wide.similarity["sim"].clone();
    let items = Arc::new(EmbeddingTable::new(vec!["x".into()], 3, vec![1.0; 3]).unwrap());
    wide.similarity.insert("sim".into(), (users, items));
    let err = Encoder::fit_file_with(&model(), &schema, "schema.toml", &train, options, &wide)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "schema.toml: feature[2].item_embeddings: user vectors have 2 components, item vectors 3: \
         they must match"
    );
}
