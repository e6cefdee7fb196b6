//! The hashid and similarity feature tables: defaults, and every bad key named with its line.

use super::*;
use crate::kernels::content::Measure;

fn parse(features: &str) -> Result<ModelConfig> {
    ModelConfig::parse(&format!("[model]\ntables = 1\n{features}"), "m.toml")
}

const HASHID: &str = "[[feature]]\nname = \"h\"\nkind = \"hashid\"\ncolumn = \"item_id\"\n\
                      embeddings = \"v.safetensors\"\n";
const SIMILARITY: &str = "[[feature]]\nname = \"s\"\nkind = \"similarity\"\nuser = \"user_id\"\n\
                          item = \"item_id\"\nuser_embeddings = \"u.npy\"\n\
                          item_embeddings = \"u.npy\"\n";

#[test]
fn content_kinds_parse_with_their_defaults() {
    let c = parse(&format!("{HASHID}bits = 16\n{SIMILARITY}")).unwrap();
    assert_eq!(
        c.features[0].kind,
        FeatureKind::HashId {
            embeddings: "v.safetensors".into(),
            bits: 16,
            radices: vec![2, 3, 10],
            seed: 1,
        }
    );
    assert_eq!(c.features[0].column(), "item_id");
    assert_eq!(
        c.features[1].kind,
        FeatureKind::Similarity {
            user: "user_id".into(),
            item: "item_id".into(),
            user_embeddings: "u.npy".into(),
            item_embeddings: "u.npy".into(),
            measure: Measure::Cosine,
            buckets: 1024,
            radices: vec![2, 3, 10],
        }
    );
    let dot = parse(&format!("{SIMILARITY}measure = \"dot\"\nbuckets = 8\n")).unwrap();
    assert!(matches!(
        dot.features[0].kind,
        FeatureKind::Similarity {
            measure: Measure::Dot,
            buckets: 8,
            ..
        }
    ));
}

#[test]
fn bad_content_keys_are_errors_naming_the_key() {
    let cases = [
        (
            format!("{HASHID}bits = 0\n"),
            "m.toml: feature[0].bits: 0: 1 to 31",
        ),
        (
            format!("{HASHID}bits = 32\n"),
            "m.toml: feature[0].bits: 32: 1 to 31",
        ),
        (
            format!("{HASHID}bits = 8\nradices = [1]\n"),
            "m.toml: feature[0].radices: [1]: at least one radix",
        ),
        (
            HASHID.to_string(),
            "m.toml: feature[0]: \"h\", line 4, column 1: missing field `bits`",
        ),
        (
            format!("{SIMILARITY}buckets = 1\n"),
            "m.toml: feature[0].buckets: 1: 2 to 2^20",
        ),
        (
            format!("{SIMILARITY}measure = \"l2\"\n"),
            "m.toml: feature[0]: \"s\", line 10, column 11: unknown variant `l2`",
        ),
        (
            format!("{SIMILARITY}column = \"x\"\n"),
            "m.toml: feature[0]: \"s\", line 10, column 1: unknown field `column`",
        ),
        (
            "[[feature]]\nname = \"q\"\nkind = \"hashed\"\n".to_string(),
            "unknown kind \"hashed\": one of \"categorical\", \"bag\", \"numeric\", \"sequence\", \
             \"hashid\" or \"similarity\"",
        ),
    ];
    for (text, want) in cases {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}\n→ {err}\nwanted {want}");
    }
}
