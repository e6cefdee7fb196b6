//! A categorical feature's dynamic id map keys (`capacity`, `admit_after`, `expire_after`): their
//! defaults, and the errors naming the key when they are set without sense.

use crate::config::tests::GOOD;
use crate::config::ModelConfig;
use crate::data::idmap::IdMapOptions;

/// GOOD with `lines` added to the `user_id` feature (feature 0).
fn with_user(lines: &str) -> String {
    let s = GOOD.replace("min_count = 2\n", &format!("min_count = 2\n{lines}\n"));
    assert_ne!(s, GOOD, "GOOD's user_id has min_count = 2");
    s
}

fn refusal(text: &str) -> String {
    ModelConfig::parse(text, "m.toml")
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn capacity_turns_the_id_map_on_with_default_admission_and_no_expiry() {
    let c = ModelConfig::parse(&with_user("capacity = 100"), "m.toml").expect("valid");
    let options = c.features[0].kind.id_map_options();
    let expected = IdMapOptions {
        capacity: 100,
        admit_after: 1,
        expire_after: 0,
    };
    assert_eq!(options, Some(expected));
    let text = with_user("capacity = 7\nadmit_after = 3\nexpire_after = 500");
    let c = ModelConfig::parse(&text, "m.toml").expect("valid");
    let options = c.features[0].kind.id_map_options().expect("a map");
    assert_eq!(
        (options.capacity, options.admit_after, options.expire_after),
        (7, 3, 500)
    );
}

#[test]
fn without_capacity_a_categorical_feature_has_no_id_map() {
    let c = ModelConfig::parse(GOOD, "m.toml").expect("valid");
    assert!(c.features.iter().all(|f| f.kind.id_map_options().is_none()));
}

#[test]
fn dynamic_id_keys_without_sense_are_errors_naming_the_key() {
    let cases = [
        (
            "capacity = 10\nhash_rows = 10",
            "feature[0].capacity",
            "set one",
        ),
        (
            "capacity = 0",
            "feature[0].capacity",
            "0: needs at least one row",
        ),
        (
            "capacity = 2147483648",
            "feature[0].capacity",
            "at most 2147483647",
        ),
        (
            "admit_after = 2",
            "feature[0].admit_after",
            "set capacity too",
        ),
        (
            "expire_after = 9",
            "feature[0].expire_after",
            "set capacity too",
        ),
        ("capacity = -1", "feature[0]", "expected u32"),
    ];
    for (lines, key, why) in cases {
        let e = refusal(&with_user(lines));
        assert!(
            e.contains("m.toml") && e.contains(key) && e.contains(why),
            "{lines}: {e}"
        );
    }
}

#[test]
fn a_bag_has_no_dynamic_id_map() {
    let text = GOOD.replace("pooling = \"sum\"", "pooling = \"sum\"\ncapacity = 10");
    let e = refusal(&text);
    assert!(e.contains("feature[2]") && e.contains("capacity"), "{e}");
}
