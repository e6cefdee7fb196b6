use crate::config::ModelConfig;
use crate::data::{ColumnKind, Schema};

fn error(text: &str) -> String {
    Schema::parse(text, "schema.toml").unwrap_err().to_string()
}

#[test]
fn the_full_form_parses_with_defaults() {
    let s = Schema::parse(
        "[[column]]\nname = \"click\"\ntype = \"label\"\n\
         [[column]]\nname = \"hist\"\ntype = \"sequence\"\nseparator = \";\"\n\
         [[column]]\nname = \"other\"\ntype = \"sequence\"\n\
         [[column]]\nname = \"hist_t\"\ntype = \"sequence_times\"\nsequence = \"hist\"\n\
         [[column]]\nname = \"other_t\"\ntype = \"sequence_times\"\nsequence = \"other\"\n",
        "schema.toml",
    )
    .unwrap();
    assert_eq!((s.delimiter, s.quote, s.header), (b'\t', Some(b'"'), true));
    assert_eq!(
        s.columns[1].kind,
        ColumnKind::Sequence {
            separator: ";".into()
        }
    );
    let times = |c: usize| match &s.columns[c].kind {
        ColumnKind::SequenceTimes { sequence, .. } => *sequence,
        k => panic!("{k:?}"),
    };
    assert_eq!((times(3), times(4)), (1, 2), "each names its sequence");
    assert_eq!(s.index("hist_t"), Some(3));
}

#[test]
fn the_compact_form_expands_ranges() {
    let s = Schema::parse(
        "delimiter = \",\"\nheader = false\n\
         columns = \"label:y, numeric:I1-I3, skip:a-b, categorical:C9-C10, multi_hot:tags\"",
        "schema.toml",
    )
    .unwrap();
    let names: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["y", "I1", "I2", "I3", "a-b", "C9", "C10", "tags"]);
    assert_eq!((s.delimiter, s.header), (b',', false));
    assert_eq!(
        s.columns[7].kind,
        ColumnKind::MultiHot {
            separator: "|".into()
        }
    );
}

#[test]
fn schema_errors_name_the_key() {
    let cases = [
        ("delimiter = \"ab\"\ncolumns = \"label:y\"", "schema.toml: delimiter: must be one ASCII character other than a line break, not \"ab\""),
        ("quote = \",\"\ndelimiter = \",\"\ncolumns = \"label:y\"", "schema.toml: quote: must differ from the delimiter"),
        ("header = true", "schema.toml: column: no columns: add [[column]] tables or `columns = \"…\"`"),
        ("columns = \"label:y, numbers:x\"", "schema.toml: column[1].type: unknown type \"numbers\" (label, categorical, numeric, multi_hot, timestamp, weight, sequence, sequence_times, skip)"),
        ("columns = \"label:y, x\"", "schema.toml: columns: item 2 \"x\" is not `type:name` or `type:A1-A9`"),
        ("columns = \"label:y, numeric:y\"", "schema.toml: column[1].name: \"y\" appears twice"),
        ("columns = \"sequence_times:t\"", "schema.toml: column[0].type: sequence_times needs a sequence column before it"),
        ("[[column]]\nname = \"x\"\ntype = \"numeric\"\nseparator = \";\"", "schema.toml: column[0].separator: a numeric column has none"),
        ("[[column]]\nname = \"x\"\ntype = \"sequence_times\"\nsequence = \"x\"", "schema.toml: column[0].sequence: \"x\" is not an earlier sequence column"),
        ("columns = \"label:y\"\n[[column]]\nname = \"x\"\ntype = \"label\"", "schema.toml: columns: give either `columns = \"…\"` or [[column]] tables, not both"),
    ];
    for (text, message) in cases {
        assert_eq!(error(text), message, "{text}");
    }
    // Unknown keys: the toml crate's message names the key, line and column.
    let e = error("[[column]]\nname = \"x\"\ntype = \"label\"\nseperator = \"|\"");
    assert!(e.contains("seperator") && e.contains("line 4"), "{e}");
}

#[test]
fn check_model_matches_features_and_tasks_to_columns() {
    let schema = Schema::parse(
        "columns = \"label:click, categorical:user_id, multi_hot:genres, numeric:age, \
         sequence:history, sequence_times:history_times, timestamp:ts, categorical:item_id\"",
        "schema.toml",
    )
    .unwrap();
    let model = |features: &str| {
        ModelConfig::parse(&format!("[model]\ntables = 1\n{features}"), "model.toml").unwrap()
    };
    let good = model(
        "[[feature]]\nname = \"user_id\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"item_id\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"genre\"\nkind = \"bag\"\ncolumn = \"genres\"\n\
         [[feature]]\nname = \"age\"\nkind = \"numeric\"\n\
         [[feature]]\nname = \"history\"\nkind = \"sequence\"\nitem = \"item_id\"\n",
    );
    schema.check_model(&good, "schema.toml").unwrap();
    let e = schema
        .check_model(
            &model("[[feature]]\nname = \"age\"\nkind = \"categorical\"\n"),
            "schema.toml",
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "schema.toml: feature[0].column: feature \"age\" cannot read column \"age\" of type numeric"
    );
    let e = schema
        .check_model(
            &model("[[feature]]\nname = \"zip\"\nkind = \"categorical\"\n"),
            "schema.toml",
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "schema.toml: feature[0].column: no column \"zip\" in the schema"
    );
    let e = schema
        .check_model(
            &model("[[feature]]\nname = \"g\"\nkind = \"bag\"\ncolumn = \"genres\"\nseparator = \" \"\n"),
            "schema.toml",
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "schema.toml: feature[0].column: feature \"g\" splits on \" \" but column \"genres\" on \"|\""
    );
    let e = schema
        .check_model(
            &model("[[feature]]\nname = \"user_id\"\nkind = \"categorical\"\n[[task]]\nname = \"love\"\n"),
            "schema.toml",
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "schema.toml: task[0].label: no label column \"love\" in the schema"
    );
}

#[test]
fn the_examples_in_docs_data_md_parse() {
    let doc = include_str!("../../../docs/data.md");
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2);
    let full = Schema::parse(blocks[0], "docs/data.md").unwrap();
    assert_eq!(full.columns.len(), 9);
    assert_eq!(full.delimiter, b',');
    let criteo = Schema::parse(blocks[1], "docs/data.md").unwrap();
    assert_eq!(criteo.columns.len(), 40);
}
