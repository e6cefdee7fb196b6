//! Tests of the data readers: schemas, hostile tables, vocabularies.

mod encoded_through_loader;
mod quotes;
mod schema;
mod schema_limits;
mod table;
mod table_text;
mod vocab;

use std::path::PathBuf;

use super::{BadRows, Batch, ColumnData, ReadOptions, Schema, TableReader};
use crate::Result;

/// Writes `bytes` to a fresh file in the temporary directory and returns its path.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = scratch_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn schema(text: &str) -> Schema {
    Schema::parse(text, "schema.toml").unwrap()
}

/// Reads a whole file written from `bytes` as `name`.
fn read(
    name: &str,
    schema: &Schema,
    bytes: &[u8],
    options: ReadOptions,
) -> Result<(Vec<Batch>, BadRows)> {
    let path = scratch(name, bytes);
    let mut reader = TableReader::open(&path, schema, options)?;
    let batches = reader.by_ref().collect::<Result<Vec<_>>>()?;
    Ok((batches, reader.into_bad_rows()))
}

/// The error of reading `bytes` as `name`, as text, with the temporary directory cut off the front
/// so that tests can compare whole messages.
fn read_error(name: &str, schema: &Schema, bytes: &[u8]) -> String {
    match read(name, schema, bytes, ReadOptions::default()) {
        Ok(_) => panic!("{name}: read without error"),
        Err(e) => short(&e.to_string()),
    }
}

/// `message` without the scratch directory.
fn short(message: &str) -> String {
    let dir = scratch_dir().display().to_string() + "/";
    message.replace(&dir, "")
}

fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("wgrec-data-{}", std::process::id()))
}

pub(crate) const ALL_TYPES: &str = r#"
delimiter = "\t"
[[column]]
name = "click"
type = "label"
[[column]]
name = "user"
type = "categorical"
[[column]]
name = "price"
type = "numeric"
[[column]]
name = "genres"
type = "multi_hot"
[[column]]
name = "time"
type = "timestamp"
[[column]]
name = "w"
type = "weight"
[[column]]
name = "hist"
type = "sequence"
[[column]]
name = "hist_t"
type = "sequence_times"
[[column]]
name = "note"
type = "skip"
"#;

pub(crate) const ALL_TYPES_HEADER: &str =
    "click\tuser\tprice\tgenres\ttime\tw\thist\thist_t\tnote\n";

pub(crate) fn options(batch_rows: usize) -> ReadOptions {
    ReadOptions {
        batch_rows,
        ..ReadOptions::default()
    }
}

pub(crate) const CSV3: &str = "delimiter = \",\"\n\
    [[column]]\nname = \"y\"\ntype = \"label\"\n\
    [[column]]\nname = \"id\"\ntype = \"categorical\"\n\
    [[column]]\nname = \"x\"\ntype = \"numeric\"\n";

pub(crate) fn ids(batches: &[Batch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let ColumnData::Categorical(t) = &b.columns[1] else {
            panic!()
        };
        out.extend(t.iter().map(str::to_string));
    }
    out
}
