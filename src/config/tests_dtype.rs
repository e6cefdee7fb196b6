//! `dtype` (model-wide and per feature) and `stochastic_rounding`: parsed, defaulted, bad values
//! named with the file and key, a TIM over tables of different dtypes refused.

use super::tests::GOOD;
use super::*;

fn err(text: &str) -> String {
    ModelConfig::parse(text, "m.toml")
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn dtype_defaults_to_f32_and_features_override_the_model() {
    let c = ModelConfig::parse(GOOD, "m.toml").expect("valid");
    assert_eq!(c.model.dtype, Dtype::F32);
    assert!((0..c.features.len()).all(|f| c.dtype_of(f) == Dtype::F32));
    assert!(!c.train.stochastic_rounding);
    let text = GOOD
        .replace("hidden = [64, 32]", "hidden = [64, 32]\ndtype = \"f16\"")
        .replace("min_count = 2", "min_count = 2\ndtype = \"f32\"")
        .replace(
            "clip_norm = 1.0",
            "clip_norm = 1.0\nstochastic_rounding = true",
        );
    let c = ModelConfig::parse(&text, "m.toml").expect("valid");
    assert_eq!(c.model.dtype, Dtype::F16);
    assert_eq!(c.dtype_of(0), Dtype::F32, "user_id's own");
    assert_eq!(c.dtype_of(1), Dtype::F16, "the model's");
    assert!(c.train.stochastic_rounding);
}

#[test]
fn a_bad_dtype_names_the_file_and_key() {
    let e = err(&GOOD.replace("hidden = [64, 32]", "hidden = [64, 32]\ndtype = \"f8\""));
    assert!(
        e.contains("m.toml") && e.contains("dtype") && e.contains("f8"),
        "{e}"
    );
    let e = err(&GOOD.replace("min_count = 2", "min_count = 2\ndtype = \"bf16\""));
    assert!(
        e.contains("m.toml") && e.contains("feature[0]") && e.contains("bf16"),
        "{e}"
    );
    let e = err(&GOOD.replace("clip_norm = 1.0", "stochastic_rounding = 1"));
    assert!(
        e.contains("m.toml") && e.contains("stochastic_rounding"),
        "{e}"
    );
}

#[test]
fn a_tim_over_tables_of_different_dtypes_is_refused() {
    // history (TIM) reads item_id and genre: all three must agree.
    let text = GOOD.replace(
        "column = \"genres\"",
        "column = \"genres\"\ndtype = \"f16\"",
    );
    let e = err(&text);
    assert!(
        e.contains("feature[4].dtype") && e.contains("\"genre\"") && e.contains("f16"),
        "{e}"
    );
    let all = text.replace("hidden = [64, 32]", "hidden = [64, 32]\ndtype = \"f16\"");
    let c = ModelConfig::parse(&all, "m.toml").expect("every table f16");
    assert!((0..c.features.len()).all(|f| c.dtype_of(f) == Dtype::F16));
}
