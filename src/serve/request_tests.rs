use super::*;
use crate::data::ReadOptions;
use crate::data::TableReader;

const SCHEMA: &str = r#"
delimiter = "\t"
header = true
columns = "label:click, categorical:user_id, categorical:item_id, numeric:age, multi_hot:genres, weight:w, categorical:unused"
"#;

const MODEL: &str = r#"
[model]
tables = 1
dim = 4
experts = [{ type = "dcn", layers = 1 }]
expert_width = 8
hidden = [8]

[[feature]]
name = "user_id"
kind = "categorical"

[[feature]]
name = "item_id"
kind = "categorical"

[[feature]]
name = "age"
kind = "numeric"
radices = [10]

[[feature]]
name = "genres"
kind = "bag"

[[task]]
name = "click"

[train]
batch_size = 8
group = "unused"
"#;

fn columns() -> RequestColumns {
    let schema = Schema::parse(SCHEMA, "schema.toml").expect("schema");
    let config = ModelConfig::parse(MODEL, "model.toml").expect("model");
    RequestColumns::new(&config, &schema)
}

fn parse(body: &str, shape: Shape) -> Result<Rows, RequestError> {
    parse_rows(body.as_bytes(), shape, &columns(), 4)
}

fn error(body: &str, shape: Shape) -> String {
    match parse(body, shape) {
        Err(RequestError::Bad(message)) => message,
        other => panic!("expected a bad request, got {other:?}"),
    }
}

#[test]
fn the_model_reads_its_features_but_not_labels_weights_or_the_gauc_key() {
    let c = columns();
    let read: Vec<bool> = (0..7).map(|i| c.is_required(i)).collect();
    assert_eq!(read, [false, true, true, true, true, false, false]);
}

#[test]
fn a_score_request_shares_the_context_and_parses_like_the_same_rows_in_a_file() {
    let body = r#"{"context": {"user_id": "196", "age": 24, "unused": "x"},
        "candidates": [{"item_id": 242, "genres": ["Comedy", "Drama"]},
                       {"item_id": "7", "genres": "Crime", "click": 1, "age": null}]}"#;
    let err = error(body, Shape::Score);
    assert!(err.contains("\"age\" is given twice"), "{err}");

    let body = r#"{"context": {"user_id": "196", "unused": "x"},
        "candidates": [{"item_id": 242, "age": 24.5, "genres": ["Comedy", "Drama"]},
                       {"item_id": "7", "genres": "Crime", "click": 1, "age": null}]}"#;
    let rows = parse(body, Shape::Score).unwrap();
    let schema = columns().schema().clone();
    let mut batch = empty_batch(&schema);
    append_rows(&columns(), &rows, Shape::Score, &mut batch).unwrap();

    let file = "click\tuser_id\titem_id\tage\tgenres\tw\tunused\n\
                \t196\t242\t24.5\tComedy|Drama\t1\tx\n\
                1\t196\t7\t\tCrime\t1\tx\n";
    let options = ReadOptions::default();
    let mut reader = TableReader::new(file.as_bytes(), "f", &schema, options).unwrap();
    let expected = reader.next_batch().unwrap().unwrap();
    // Debug text, not ==: a missing number is NaN, which == never matches.
    let text = |b: &Batch| format!("{:?}", b.columns);
    assert_eq!(text(&batch), text(&expected));
    assert_eq!((batch.rows, batch.lines.clone()), (2, vec![0, 1]));
}

#[test]
fn unknown_missing_and_bad_values_name_the_row_and_column() {
    let unknown = error(
        r#"{"rows": [{"user_id": "1", "colour": "red"}]}"#,
        Shape::Batch,
    );
    assert!(
        unknown.contains("unknown feature \"colour\" in row 0"),
        "{unknown}"
    );
    let missing = error(
        r#"{"rows": [{"user_id": "1", "item_id": "2", "age": 3, "genres": []},
                     {"user_id": "1", "item_id": "2", "genres": []}]}"#,
        Shape::Batch,
    );
    assert!(
        missing.contains("row 1: missing feature \"age\""),
        "{missing}"
    );
    let array = error(
        r#"{"candidates": [{"user_id": ["1"], "item_id": "2", "age": 3, "genres": []}]}"#,
        Shape::Score,
    );
    assert!(
        array.contains("candidate 0, column \"user_id\": an array"),
        "{array}"
    );
    let malformed = error(r#"{"rows": [}"#, Shape::Batch);
    assert!(malformed.starts_with("malformed JSON"), "{malformed}");
    let too_many = parse(r#"{"rows": [{}, {}, {}, {}, {}]}"#, Shape::Batch);
    assert_eq!(too_many, Err(RequestError::TooManyRows { rows: 5, max: 4 }));

    let rows = parse(
        r#"{"rows": [{"user_id": "1", "item_id": "2", "age": 3, "genres": []},
                     {"user_id": "1", "item_id": "2", "age": "old", "genres": []}]}"#,
        Shape::Batch,
    )
    .unwrap();
    let schema = columns().schema().clone();
    let mut batch = empty_batch(&schema);
    let err = append_rows(&columns(), &rows, Shape::Batch, &mut batch).unwrap_err();
    let RequestError::Bad(message) = err else {
        panic!("{err:?}")
    };
    assert!(message.contains("row 1, column \"age\""), "{message}");
    assert!(message.contains("not a number"), "{message}");
    assert_eq!(
        batch,
        empty_batch(&schema),
        "a bad request leaves the batch as it was"
    );
}
