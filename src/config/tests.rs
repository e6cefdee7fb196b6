use super::*;

pub(super) const GOOD: &str = r#"
[model]
tables = 3
dim = 8
experts = [
  { type = "dcn", layers = 3, rank = 4 },
  { type = "gwpfm", groups = [["user_id"], ["item_id", "genre"]] },
  { type = "ipnn" },
]
hidden = [64, 32]

[[feature]]
name = "user_id"
kind = "categorical"
min_count = 2

[[feature]]
name = "item_id"
kind = "categorical"

[[feature]]
name = "genre"
kind = "bag"
column = "genres"
pooling = "sum"

[[feature]]
name = "age"
kind = "numeric"
radices = [2, 10]

[[feature]]
name = "history"
kind = "sequence"
item = "item_id"
side = ["genre"]
side_columns = ["hist_genre"]
time = { by = "position" }

[[task]]
name = "click"
loss = "pair"
alpha = 0.6

[train]
batch_size = 512
clip_norm = 1.0
"#;

fn err(text: &str) -> String {
    ModelConfig::parse(text, "m.toml")
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn a_full_file_parses_with_defaults_filled_in() {
    let c = ModelConfig::parse(GOOD, "m.toml").expect("valid");
    assert_eq!(c.model.tables, 3);
    assert_eq!(
        c.expert(0),
        &Expert::Dcn {
            layers: 3,
            rank: Some(4)
        }
    );
    assert_eq!(c.expert(2), &Expert::Ipnn);
    assert_eq!(c.model.expert_width, 400, "default");
    assert_eq!(c.features[2].column(), "genres");
    assert_eq!(c.features[0].column(), "user_id");
    assert_eq!(
        c.features[4].kind,
        FeatureKind::Sequence {
            item: "item_id".into(),
            side: vec!["genre".into()],
            max_len: 50,
            pooling: SequencePooling::Tim,
            buckets: 64,
            time: TimeBucket::Position,
            side_columns: vec!["hist_genre".into()],
            times: None,
            timestamp: None,
        }
    );
    assert_eq!(c.tasks[0].loss, Loss::Pair);
    assert_eq!(c.train.batch_size, 512);
    assert_eq!(c.train.epochs, 3, "default");
    assert_eq!(c.train.clip_norm, Some(1.0));
}

#[test]
fn one_expert_serves_every_table_and_tasks_default_to_click() {
    let c = ModelConfig::parse(
        "[model]\ntables = 4\n[[feature]]\nname = \"a\"\nkind = \"categorical\"\n",
        "m.toml",
    )
    .expect("valid");
    assert_eq!(c.expert(3), c.expert(0));
    assert_eq!(c.tasks.len(), 1);
    assert_eq!(c.tasks[0].name, "click");
}

#[test]
fn unknown_keys_are_errors_naming_the_key_and_line() {
    let e = err(&GOOD.replace("hidden = [64, 32]", "hiden = [64, 32]"));
    assert!(
        e.contains("m.toml") && e.contains("hiden") && e.contains("line"),
        "{e}"
    );
    let e = err(&GOOD.replace("min_count = 2", "min_cnt = 2"));
    assert!(e.contains("min_cnt"), "{e}");
    let e = err(&GOOD.replace("layers = 3, rank = 4", "layers = 3, rnak = 4"));
    assert!(e.contains("rnak"), "{e}");
    let e = err(&GOOD.replace("[train]", "[training]"));
    assert!(e.contains("training"), "{e}");
}

#[test]
fn bad_values_are_errors_naming_the_key() {
    let cases = [
        (GOOD.replace("dim = 8", "dim = 6"), "model.dim"),
        (GOOD.replace("tables = 3", "tables = 2"), "model.experts"),
        (
            GOOD.replace("layers = 3, rank = 4", "layers = 0"),
            "model.experts[0].layers",
        ),
        (
            GOOD.replace("[\"item_id\", \"genre\"]", "[\"item\", \"genre\"]"),
            "model.experts[1].groups[1]",
        ),
        (
            GOOD.replace("radices = [2, 10]", "radices = [1]"),
            "feature[3].radices",
        ),
        (
            GOOD.replace("item = \"item_id\"", "item = \"age\""),
            "feature[4].item",
        ),
        (
            GOOD.replace("name = \"genre\"", "name = \"user_id\""),
            "feature[2].name",
        ),
        (GOOD.replace("alpha = 0.6", "alpha = 1.5"), "task[0].alpha"),
        (
            GOOD.replace("clip_norm = 1.0", "clip_norm = -1.0"),
            "train.clip_norm",
        ),
        (
            GOOD.replace("batch_size = 512", "batch_size = 0"),
            "train.batch_size",
        ),
    ];
    for (text, key) in cases {
        let e = err(&text);
        assert!(e.contains(key), "expected {key} in: {e}");
    }
}

#[test]
fn wrong_types_and_unknown_variants_name_the_key() {
    let e = err(&GOOD.replace("tables = 3", "tables = \"three\""));
    assert!(e.contains("tables"), "{e}");
    let e = err(&GOOD.replace("type = \"ipnn\"", "type = \"pnn\""));
    assert!(e.contains("pnn"), "{e}");
    let e = err(&GOOD.replace("kind = \"bag\"", "kind = \"bags\""));
    assert!(e.contains("bags"), "{e}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let e = ModelConfig::load(Path::new("/nonexistent/model.toml"))
        .expect_err("missing")
        .to_string();
    assert!(e.contains("/nonexistent/model.toml"), "{e}");
}

/// The example in docs/config.md is a valid model file (the documentation stays true).
#[test]
fn the_documented_example_parses() {
    let doc = include_str!("../../docs/config.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("block end");
    let text = &doc[start..end];
    // The example lists a subset of features; add the ones its experts and sequence refer to.
    let text = format!("{text}\n[[feature]]\nname = \"item_id\"\nkind = \"categorical\"\n");
    let c = ModelConfig::parse(&text, "docs/config.md").expect("the documented example parses");
    assert_eq!(c.model.tables, 3);
    assert_eq!(c.train.clip_norm, Some(1.0));
}

#[test]
fn side_columns_must_match_side_features() {
    let text = GOOD.replace("side_columns = [\"hist_genre\"]\n", "");
    let e = err(&text);
    assert!(e.contains("feature[4].side_columns"), "{e}");
    assert!(e.contains("0 columns for 1 side features"), "{e}");
}

#[test]
fn train_keys_are_checked() {
    let e = err(&GOOD.replace("clip_norm = 1.0", "log_every = 0"));
    assert!(e.contains("train.log_every"), "{e}");
    let e = err(&GOOD.replace("clip_norm = 1.0", "sparse_optimizer = \"adamw\""));
    assert!(e.contains("sparse_optimizer") || e.contains("adamw"), "{e}");
    let e = err(&GOOD.replace("clip_norm = 1.0", "weights = { gamma = 0.5 }"));
    assert!(e.contains("train.weights.column"), "{e}");
    let e = err(&GOOD.replace("clip_norm = 1.0", "weights = { negative = 0.0 }"));
    assert!(e.contains("train.weights.negative"), "{e}");
    let c = ModelConfig::parse(
        &GOOD.replace(
            "clip_norm = 1.0",
            "group = \"user_id\"\nweights = { column = \"n\", gamma = 1.0, negative = 0.5 }",
        ),
        "m.toml",
    )
    .expect("valid");
    assert_eq!(c.train.group.as_deref(), Some("user_id"));
    assert_eq!(c.train.weights.as_ref().unwrap().negative, 0.5);
}

#[test]
fn lr_decay_parses_and_is_checked() {
    let c = ModelConfig::parse(
        &GOOD.replace(
            "clip_norm = 1.0",
            "lr_decay = { kind = \"cosine\", steps = 100, floor = 0.1 }",
        ),
        "m.toml",
    )
    .expect("valid");
    assert_eq!(
        c.train.lr_decay,
        Some(LrDecay::Cosine {
            steps: 100,
            floor: 0.1
        })
    );
    let e = err(&GOOD.replace(
        "clip_norm = 1.0",
        "lr_decay = { kind = \"cosine\", steps = 0 }",
    ));
    assert!(e.contains("train.lr_decay.steps"), "{e}");
    let e = err(&GOOD.replace(
        "clip_norm = 1.0",
        "warmup_steps = 10\nlr_decay = { kind = \"step\", every = 5, gamma = 0.5 }",
    ));
    assert!(e.contains("train.lr_decay") && e.contains("warm-up"), "{e}");
    let e = err(&GOOD.replace("clip_norm = 1.0", "lr_decay = { kind = \"linear\" }"));
    assert!(e.contains("linear"), "{e}");
}

#[test]
fn embedding_weight_decay_keys_parse_and_a_negative_or_infinite_one_is_refused_by_key() {
    let text = GOOD
        .replace(
            "clip_norm = 1.0",
            "sparse_optimizer = \"adam\"\nsparse_weight_decay = 0.001\n\
             sparse_weight_decay_mode = \"frequency\"",
        )
        .replace("min_count = 2", "min_count = 2\nembedding_l2 = 0.01");
    let c = ModelConfig::parse(&text, "m.toml").expect("valid");
    assert_eq!(c.train.sparse_optimizer, SparseOptimizerName::Adam);
    assert_eq!(c.train.sparse_weight_decay, 0.001);
    assert_eq!(c.train.sparse_weight_decay_mode, SparseDecayMode::Frequency);
    assert_eq!(c.features[0].embedding_l2, Some(0.01));
    assert_eq!(c.features[1].embedding_l2, None);
    let e = err(&GOOD.replace("clip_norm = 1.0", "sparse_weight_decay = -0.1"));
    assert!(
        e.contains("train.sparse_weight_decay") && e.contains("≥ 0"),
        "{e}"
    );
    let e = err(&GOOD.replace("min_count = 2", "embedding_l2 = inf"));
    assert!(e.contains("feature[0].embedding_l2"), "{e}");
    let e = err(&GOOD.replace("clip_norm = 1.0", "sparse_weight_decay_mode = \"sample\""));
    assert!(
        e.contains("sparse_weight_decay_mode") || e.contains("sample"),
        "{e}"
    );
}

#[test]
fn gwpfm_blocks_are_read_from_the_groups_key() {
    let c = ModelConfig::parse(GOOD, "m.toml").expect("valid");
    assert_eq!(
        c.expert(1),
        &Expert::Gwpfm {
            blocks: vec![
                vec!["user_id".into()],
                vec!["item_id".into(), "genre".into()]
            ]
        }
    );
    // The Rust name is not a key: model files keep the paper's `groups`.
    let e = err(&GOOD.replace("groups = [", "blocks = ["));
    assert!(
        e.contains("unknown field `blocks`, expected `groups`"),
        "{e}"
    );
}

/// Sections are checked in file order (model, features, experts, tasks, train, sizes, weight
/// decay) and the first error wins, whatever module checks it.
#[test]
fn with_errors_in_two_sections_the_earlier_check_is_reported() {
    let layers = ("layers = 3, rank = 4", "layers = 0");
    let cases = [
        (
            ("dim = 8", "dim = 6"),
            ("name = \"genre\"", "name = \"user_id\""),
            "model.dim",
        ),
        (
            ("radices = [2, 10]", "radices = [1]"),
            layers,
            "feature[3].radices",
        ),
        (
            layers,
            ("alpha = 0.6", "alpha = 1.5"),
            "model.experts[0].layers",
        ),
        (
            ("alpha = 0.6", "alpha = 1.5"),
            ("batch_size = 512", "batch_size = 0"),
            "task[0].alpha",
        ),
        (
            ("batch_size = 512", "batch_size = 0"),
            ("hidden = [64, 32]", "hidden = [64, 100000]"),
            "train.batch_size",
        ),
        (
            ("hidden = [64, 32]", "hidden = [64, 100000]"),
            ("clip_norm = 1.0", "sparse_weight_decay = -1.0"),
            "model.hidden[1]",
        ),
    ];
    for ((a, b), (c, d), key) in cases {
        let e = err(&GOOD.replace(a, b).replace(c, d));
        assert!(
            e.starts_with(&format!("m.toml: {key}: ")),
            "expected {key} first: {e}"
        );
    }
}

/// Every model file the repository ships (configs/ and its claims/, content/ and scale/, which
/// docs/claims.md, BENCHMARKS.md and the scripts train) parses and passes the checks: a stale key fails here, not in a user's run.
#[test]
fn every_shipped_model_file_loads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut loaded = 0;
    for dir in [
        root.clone(),
        root.join("claims"),
        root.join("content"),
        root.join("scale"),
    ] {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for file in files {
            ModelConfig::load(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            loaded += 1;
        }
    }
    assert!(loaded >= 33, "only {loaded} model files found");
}
