//! JSON requests → rows in the model's schema, scored exactly as the same rows in a file.
//!
//! Two shapes ([`Shape`]): `score`, `{"context": {...}, "candidates": [{...}, ...]}`, one row per
//! candidate with the context's fields shared; and `batch`, `{"rows": [{...}, ...]}`. A value is
//! a string, a number, `null` (an empty field) or, for a multi-valued column (bag, sequence,
//! sequence times), an array whose items are joined with the column's separator; the column's
//! text form works everywhere.
//!
//! Why field texts: [`parse_rows`] turns each row into one text per schema column, in schema
//! order, and [`append_rows`] parses those with the file reader's own `parse_field`, so a request
//! and the same row in a TSV file become the same [`Batch`] and score the same bits. Columns the
//! model does not read may be left out (a label is then missing, a weight 1, anything else an
//! empty field); a column it reads must be there. Which columns those are, [`RequestColumns`]
//! finds once per model by asking the encoder's resolution whether the model still resolves
//! without each one.

use serde_json::{Map, Value};

use crate::config::ModelConfig;
use crate::data::batch::parse_field;
use crate::data::{Batch, ColumnKind, Schema};

/// The two request shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"context": {...}, "candidates": [...]}` (`POST /score`).
    Score,
    /// `{"rows": [...]}` (`POST /batch`).
    Batch,
}

impl Shape {
    /// What one row is called in messages.
    pub fn row_name(self) -> &'static str {
        match self {
            Shape::Score => "candidate",
            Shape::Batch => "row",
        }
    }
}

/// A request that cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Malformed JSON, an unknown feature, a missing one, a bad value (HTTP 400).
    Bad(String),
    /// More rows than the server takes in one request (HTTP 413).
    TooManyRows {
        /// Rows in the request.
        rows: usize,
        /// The limit.
        max: usize,
    },
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Bad(message) => f.write_str(message),
            RequestError::TooManyRows { rows, max } => write!(
                f,
                "{rows} rows in one request, more than the server takes ({max}); split it"
            ),
        }
    }
}

pub(super) fn bad(message: impl Into<String>) -> RequestError {
    RequestError::Bad(message.into())
}

/// Rows as one field text per schema column, in schema order.
pub type Rows = Vec<Vec<String>>;

/// Which columns of a model's schema a request must give.
#[derive(Debug, Clone)]
pub struct RequestColumns {
    schema: Schema,
    required: Vec<bool>,
}

impl RequestColumns {
    /// The columns of `schema` that `config` reads: every column but labels, weights and skipped
    /// ones, without which the model (GAUC key and loss weights aside) no longer resolves.
    pub fn new(config: &ModelConfig, schema: &Schema) -> Self {
        let mut scoring = config.clone();
        (scoring.train.group, scoring.train.weights) = (None, None);
        let required = (0..schema.columns.len())
            .map(|c| match schema.columns[c].kind {
                ColumnKind::Label | ColumnKind::Weight | ColumnKind::Skip => false,
                _ => {
                    let mut without = schema.clone();
                    without.columns[c].kind = ColumnKind::Skip;
                    without.check_model(&scoring, "request").is_err()
                }
            })
            .collect();
        RequestColumns {
            schema: schema.clone(),
            required,
        }
    }

    /// From a schema and which of its columns are required.
    pub(super) fn from_parts(schema: Schema, required: Vec<bool>) -> Self {
        RequestColumns { schema, required }
    }

    /// The model's schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Whether a request must give column `c`.
    pub fn is_required(&self, c: usize) -> bool {
        self.required[c]
    }

    /// The text of an absent column the model does not read: a missing label, weight 1, an
    /// empty field.
    fn default_text(&self, c: usize) -> &'static str {
        match self.schema.columns[c].kind {
            ColumnKind::Weight => "1",
            _ => "",
        }
    }
}

/// The text of `value` for column `c` (`Err`: why it cannot be one).
fn value_text(kind: &ColumnKind, value: &Value) -> std::result::Result<String, String> {
    let separator = match kind {
        ColumnKind::MultiHot { separator }
        | ColumnKind::Sequence { separator }
        | ColumnKind::SequenceTimes { separator, .. } => Some(separator.as_str()),
        _ => None,
    };
    match (value, separator) {
        (Value::String(s), _) => Ok(s.clone()),
        (Value::Number(n), _) => Ok(n.to_string()),
        (Value::Null, _) => Ok(String::new()),
        (Value::Array(items), Some(separator)) => {
            let texts = items
                .iter()
                .map(|item| match item {
                    Value::String(_) | Value::Number(_) => {
                        let text = value_text(&ColumnKind::Categorical, item)?;
                        if text.contains(separator) {
                            return Err(format!(
                                "item {text:?} holds the column's separator {separator:?}"
                            ));
                        }
                        Ok(text)
                    }
                    _ => Err(format!(
                        "an array item must be a string or a number, not {item}"
                    )),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(texts.join(separator))
        }
        (Value::Array(_), None) => Err(format!(
            "an array, but a {} column holds one value",
            kind.name()
        )),
        _ => Err(format!(
            "expected a string, a number or null{}, not {value}",
            if separator.is_some() {
                " or an array"
            } else {
                ""
            }
        )),
    }
}

/// The fields `object` gives (`what` names it in messages), by schema column.
fn given_fields(
    columns: &RequestColumns,
    object: &Map<String, Value>,
    what: &str,
    fields: &mut [Option<String>],
) -> Result<(), RequestError> {
    let schema = &columns.schema;
    for (key, value) in object {
        let c = schema
            .index(key)
            .ok_or_else(|| bad(format!("unknown feature {key:?} in {what}")))?;
        if fields[c].is_some() {
            return Err(bad(format!(
                "feature {key:?} is given twice ({what} and the context)"
            )));
        }
        let kind = &schema.columns[c].kind;
        let text = value_text(kind, value)
            .map_err(|reason| bad(format!("{what}, column {key:?}: {reason}")))?;
        fields[c] = Some(text);
    }
    Ok(())
}

/// One row's field texts: the context's, the row's own, and defaults for what the model does not
/// read.
fn row_fields(
    columns: &RequestColumns,
    context: &[Option<String>],
    row: &Value,
    what: &str,
) -> Result<Vec<String>, RequestError> {
    let object = row
        .as_object()
        .ok_or_else(|| bad(format!("{what} must be a JSON object, not {row}")))?;
    let mut fields = context.to_vec();
    given_fields(columns, object, what, &mut fields)?;
    fields
        .into_iter()
        .enumerate()
        .map(|(c, field)| match field {
            Some(text) => Ok(text),
            None if columns.is_required(c) => Err(bad(format!(
                "{what}: missing feature {:?} (the model reads it)",
                columns.schema.columns[c].name
            ))),
            None => Ok(columns.default_text(c).to_string()),
        })
        .collect()
}

/// The request's top-level object, with only the keys `allowed`.
fn envelope<'a>(
    request: &'a Value,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, RequestError> {
    let object = request
        .as_object()
        .ok_or_else(|| bad("the request must be a JSON object"))?;
    if let Some(key) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown key {key:?} in the request (expected {})",
            allowed.join(", ")
        )));
    }
    Ok(object)
}

/// Parses a request body of `shape` into rows of the model's schema, refusing more than
/// `max_rows` rows.
pub fn parse_rows(
    body: &[u8],
    shape: Shape,
    columns: &RequestColumns,
    max_rows: usize,
) -> Result<Rows, RequestError> {
    parse_request(body, shape, columns, max_rows).map(|r| r.rows)
}

/// A parsed request: its rows and, for `/score`, how it asks to be ranked.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// One row per candidate (or per row of `/batch`).
    pub rows: Rows,
    /// `"policy"` and `"bids"` of a `/score` request ([`super::rank::RankFields`]).
    pub ranking: super::rank::RankFields,
}

/// [`parse_rows`], with a `/score` request's optional `"policy"` (`greedy`, `epsilon:<ε>`,
/// `ucb:<c>`, `thompson`) and `"bids"` (one number ≥ 0 per candidate).
pub fn parse_request(
    body: &[u8],
    shape: Shape,
    columns: &RequestColumns,
    max_rows: usize,
) -> Result<Request, RequestError> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    let (list_key, allowed): (&str, &[&str]) = match shape {
        Shape::Score => ("candidates", &["context", "candidates", "policy", "bids"]),
        Shape::Batch => ("rows", &["rows"]),
    };
    let object = envelope(&request, allowed)?;
    let list = object
        .get(list_key)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad(format!(
                "the request needs {list_key:?}: an array of objects"
            ))
        })?;
    if list.len() > max_rows {
        return Err(RequestError::TooManyRows {
            rows: list.len(),
            max: max_rows,
        });
    }
    let ranking = super::rank::RankFields::parse(object, list.len())?;
    let mut context = vec![None; columns.schema.columns.len()];
    match object.get("context") {
        None => {}
        Some(Value::Object(map)) => given_fields(columns, map, "context", &mut context)?,
        Some(other) => return Err(bad(format!("context must be a JSON object, not {other}"))),
    }
    let name = shape.row_name();
    let rows = list
        .iter()
        .enumerate()
        .map(|(i, row)| row_fields(columns, &context, row, &format!("{name} {i}")))
        .collect::<Result<Rows, RequestError>>()?;
    Ok(Request { rows, ranking })
}

/// A batch of no rows in `schema`, for [`append_rows`] (the file reader's own).
pub use crate::data::table::empty_batch;

/// Appends `rows` to `batch` with the file reader's parsing (its `lines` get each row's index in
/// the request). A bad value is an error naming the row (`shape`'s name for it), the column and
/// the reason, and leaves `batch` as it was.
pub fn append_rows(
    columns: &RequestColumns,
    rows: &[Vec<String>],
    shape: Shape,
    batch: &mut Batch,
) -> Result<(), RequestError> {
    let before = batch.rows;
    for (i, fields) in rows.iter().enumerate() {
        if let Err(message) = append_row(columns, fields, batch) {
            for column in &mut batch.columns {
                column.truncate(before);
            }
            (batch.rows, batch.lines) = (before, batch.lines[..before].to_vec());
            return Err(bad(format!("{} {i}, {message}", shape.row_name())));
        }
        batch.rows += 1;
        batch.lines.push(i as u64);
    }
    Ok(())
}

/// One row, as `TableReader` parses one record: each column's field, then sequence times as long
/// as their sequence (unless the model does not read the times and the request left them out).
/// `Err` names the column.
fn append_row(
    columns: &RequestColumns,
    fields: &[String],
    batch: &mut Batch,
) -> std::result::Result<(), String> {
    let schema = &columns.schema;
    if fields.len() != schema.columns.len() {
        return Err(format!(
            "{} fields where the schema has {} columns",
            fields.len(),
            schema.columns.len()
        ));
    }
    for (c, column) in schema.columns.iter().enumerate() {
        if matches!(column.kind, ColumnKind::Skip) {
            continue;
        }
        parse_field(&column.kind, &fields[c], &mut batch.columns[c])
            .map_err(|reason| format!("column {:?}: {reason}", column.name))?;
    }
    for (c, column) in schema.columns.iter().enumerate() {
        if let ColumnKind::SequenceTimes { sequence, .. } = column.kind {
            if fields[c].is_empty() && !columns.is_required(c) {
                continue;
            }
            let times = batch.columns[c].last_row_len();
            let ids = batch.columns[sequence].last_row_len();
            if times != ids {
                return Err(format!(
                    "column {:?}: {times} times for the {ids} ids of sequence column {:?}",
                    column.name, schema.columns[sequence].name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
