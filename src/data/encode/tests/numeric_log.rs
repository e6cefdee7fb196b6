//! The log transform of numeric features, and corrupt extremes named by their data line.

use std::fs;
use std::path::PathBuf;

use super::*;
use crate::config::ModelConfig;
use crate::data::numeric::NumericTransform;
use crate::data::{ReadOptions, Schema, TableReader};

const SCHEMA: &str = "header = false\ncolumns = \"label:click, numeric:x\"";

fn scratch(name: &str, text: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrec-numeric-{name}-{}", std::process::id()));
    fs::create_dir_all(&d).unwrap();
    let p = d.join("train.tsv");
    fs::write(&p, text).unwrap();
    p
}

fn model(extra: &str) -> ModelConfig {
    let text = format!(
        "[model]\ntables = 1\n[[feature]]\nname = \"x\"\nkind = \"numeric\"\n{extra}\n\
         [[task]]\nname = \"click\"\n"
    );
    ModelConfig::parse(&text, "model.toml").unwrap()
}

fn fit(extra: &str, name: &str, text: &str) -> (Result<Encoder>, PathBuf) {
    let schema = Schema::parse(SCHEMA, "schema.toml").unwrap();
    let path = scratch(name, text);
    let e = Encoder::fit_file(
        &model(extra),
        &schema,
        "schema.toml",
        &path,
        ReadOptions::default(),
    );
    (e, path)
}

fn values(e: &Encoder, path: &std::path::Path) -> Vec<u32> {
    let schema = e.schema().clone();
    let batch = TableReader::open(path, &schema, ReadOptions::default())
        .unwrap()
        .next_batch()
        .unwrap()
        .unwrap();
    match &e.encode(&batch, "train.tsv").unwrap().features[0] {
        FeatureInput::Ids { rows, .. } => rows.clone(),
        FeatureInput::Sequence(_) => panic!("a sequence"),
    }
}

#[test]
fn the_log_transform_is_log2_of_one_plus_x_mirrored_for_negatives() {
    let log = NumericTransform::Log;
    assert_eq!(
        [0.0, 1.0, 3.0, 7.0, 1023.0].map(|x| log.apply(x)),
        [0.0, 1.0, 2.0, 3.0, 10.0]
    );
    assert_eq!(log.apply(-3.0), -2.0);
    assert!(log.apply(f64::NAN).is_nan());
    assert_eq!(NumericTransform::Linear.apply(-3.5), -3.5);
}

#[test]
fn a_log_feature_quantises_log2_of_one_plus_x() {
    // By hand, step 1: t = log2(1 + x) = 0, 1, 2, 3, 3.46, 9.97 for x = 0, 1, 3, 7, 10, 1000;
    // min 0, so v = 1 + ⌊t⌋ = 1, 2, 3, 4, 4, 10; the empty field is 0.
    let text = "1\t0\n0\t1\n1\t3\n0\t7\n1\t10\n0\t1000\n1\t\n";
    let (e, path) = fit("transform = \"log\"", "log", text);
    assert_eq!(values(&e.unwrap(), &path), [1, 2, 3, 4, 4, 10, 0]);
    let (linear, path) = fit("", "linear", text);
    assert_eq!(
        values(&linear.unwrap(), &path),
        [1, 2, 4, 8, 11, 1001, 0],
        "linear is the default"
    );
}

#[test]
fn a_corrupt_extreme_value_names_its_data_line_not_the_schema() {
    let (e, path) = fit("", "extreme", "1\t1\n0\t1e300\n1\t2\n0\t-1e300\n1\t3\n");
    let message = e.unwrap_err().to_string();
    let file = path.display().to_string();
    assert_eq!(
        message,
        format!(
            "{file}:2: column 2 \"x\": value 1e300 is 2e300 steps of 1 from the other end of the \
             training range (-1e300, line 4); at most 4294967293 steps fit: fix the value, or \
             raise the feature's step or give it transform = \"log\""
        )
    );
}
