//! Bounds on sizes, the file's size, and errors inside the n-th `[[feature]]`.

use super::tests::GOOD;
use super::*;

fn err(text: &str) -> String {
    ModelConfig::parse(text, "m.toml")
        .expect_err("must be refused")
        .to_string()
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).expect("needle")]
        .matches('\n')
        .count()
        + 1
}

#[test]
fn an_unknown_key_in_the_third_feature_names_it_and_its_line() {
    let text = GOOD.replace("pooling = \"sum\"", "pooling = \"sum\"\npoolin = \"mean\"");
    let e = err(&text);
    let line = line_of(&text, "poolin =");
    assert!(e.contains("feature[2]") && e.contains("\"genre\""), "{e}");
    assert!(e.contains(&format!("line {line}, column 1")), "{e}");
    assert!(e.contains("unknown field `poolin`"), "{e}");
}

#[test]
fn a_wrong_type_in_the_third_feature_names_it_and_its_line() {
    let text = GOOD.replace(
        "pooling = \"sum\"",
        "pooling = \"sum\"\nmin_count = \"two\"",
    );
    let e = err(&text);
    let line = line_of(&text, "min_count = \"two\"");
    assert!(e.contains("feature[2]") && e.contains("\"genre\""), "{e}");
    assert!(e.contains(&format!("line {line}, column 13")), "{e}");
    assert!(e.contains("invalid type"), "{e}");
}

#[test]
fn an_unknown_kind_names_the_feature_and_the_kind_line() {
    let text = GOOD.replace("kind = \"bag\"", "kind = \"bags\"");
    let e = err(&text);
    let line = line_of(&text, "kind = \"bags\"");
    assert!(e.contains("feature[2]") && e.contains("\"bags\""), "{e}");
    assert!(e.contains(&format!("line {line}, column 1")), "{e}");
}

#[test]
fn a_model_file_over_one_mib_is_refused_before_parsing() {
    let text = format!("{GOOD}\n# {}\n", "x".repeat(MAX_FILE_BYTES as usize));
    let e = err(&text);
    assert!(e.contains("over 1 MiB"), "{e}");
}

#[test]
fn every_size_key_has_an_upper_bound_naming_it() {
    for (from, to, key) in [
        (
            "hidden = [64, 32]",
            "hidden = [64, 32]\nexpert_width = 1000000000",
            "model.expert_width",
        ),
        (
            "hidden = [64, 32]",
            "hidden = [64, 1000000]",
            "model.hidden[1]",
        ),
        ("rank = 4", "rank = 100000000", "model.experts[0].rank"),
        (
            "{ type = \"ipnn\" }",
            "{ type = \"mlp\", widths = [8, 99999999] }",
            "model.experts[2].widths",
        ),
        (
            "min_count = 2",
            "hash_rows = 100000000000",
            "feature[0].hash_rows",
        ),
        (
            "radices = [2, 10]",
            "radices = [2, 1000000]",
            "feature[3].radices",
        ),
        (
            "time = { by",
            "buckets = 10000000\ntime = { by",
            "feature[4].buckets",
        ),
        (
            "batch_size = 512",
            "batch_size = 100000000",
            "train.batch_size",
        ),
        (
            "batch_size = 512",
            "batch_size = 512\nepochs = 4000000000",
            "train.epochs",
        ),
        (
            "batch_size = 512",
            "batch_size = 512\nsteps = 18446744073709551615",
            "train.steps",
        ),
        (
            "batch_size = 512",
            "batch_size = 512\nshuffle_window = 100000",
            "train.shuffle_window",
        ),
    ] {
        let text = GOOD.replace(from, to);
        assert_ne!(text, GOOD, "{from} is in GOOD");
        let e = err(&text);
        assert!(
            e.contains(&format!("{key}: ")) && e.contains("at most"),
            "{key}: {e}"
        );
    }
}

#[test]
fn a_sequence_feature_bounds_dim_by_what_tim_holds() {
    let e = err(&GOOD.replace("dim = 8", "dim = 512"));
    assert!(e.contains("model.dim") && e.contains("at most 256"), "{e}");
    // GwPFM's two blocks make rows of 2 × 128 = 256 floats: still within TIM's limit.
    ModelConfig::parse(&GOOD.replace("dim = 8", "dim = 128"), "m.toml").expect("valid");
}

#[test]
fn without_a_sequence_feature_dim_reaches_the_documented_1024() {
    let cut = GOOD
        .find("[[feature]]\nname = \"history\"")
        .expect("history");
    let end = GOOD.find("[[task]]").expect("task");
    let text = format!("{}{}", &GOOD[..cut], &GOOD[end..]);
    let text = text.replace(
        "{ type = \"gwpfm\", groups = [[\"user_id\"], [\"item_id\", \"genre\"]] }",
        "{ type = \"fm\" }",
    );
    ModelConfig::parse(&text.replace("dim = 8", "dim = 1024"), "m.toml").expect("valid");
}

#[test]
fn sizes_read_as_people_write_them() {
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(128 << 20), "128 MiB");
    assert_eq!(human_bytes(3_435_973_837), "3.2 GiB");
    assert_eq!(human_bytes(1 << 20), "1 MiB");
}

#[test]
fn a_sequence_feature_bounds_the_rows_tim_reads_per_behaviour() {
    // 11 tables × (item + genre + time) = 33 rows per behaviour, one past TIM's 32.
    let many = GOOD.replace("tables = 3", "tables = 11").replace(
        "experts = [",
        "experts = [{ type = \"fm\" }]\nold_experts = [",
    );
    let many = drop_key(&many, "old_experts");
    let e = err(&many);
    assert!(
        e.contains("feature[4].side") && e.contains("at most 32"),
        "{e}"
    );
    ModelConfig::parse(&many.replace("tables = 11", "tables = 10"), "m.toml").expect("30 rows");
}

/// `text` without the (possibly multi-line) array value of `key`.
fn drop_key(text: &str, key: &str) -> String {
    let start = text.find(&format!("{key} = [")).expect("key");
    let end = start + text[start..].find("\n]\n").expect("end") + 3;
    format!("{}{}", &text[..start], &text[end..])
}
