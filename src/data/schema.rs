//! The schema of a sample table (`schema.toml` beside the data): the delimiter, whether a header
//! line names the columns, and each column's name and type, in file order. Two forms: a
//! `[[column]]` table per column, or the compact `columns = "type:names, …"` string for wide files
//! (see the module docs of [`crate::data`]); the column types live in `schema_columns`. Errors
//! are [`Error::Config`](crate::Error::Config) naming the key.

use std::path::Path;

use serde::Deserialize;

use super::schema_columns::{bad, expand_compact, resolve_columns, RawColumn};
pub use super::schema_columns::{Column, ColumnKind};
use crate::error::Result;

/// A validated schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Field delimiter (one ASCII byte).
    pub delimiter: u8,
    /// Quote byte of RFC-4180 quoted fields; `None` when quoting is off (`quote = ""`).
    pub quote: Option<u8>,
    /// The first line of the file names the columns.
    pub header: bool,
    /// The columns, in file order.
    pub columns: Vec<Column>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    #[serde(default = "tab")]
    delimiter: String,
    #[serde(default = "double_quote")]
    quote: String,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default)]
    columns: Option<String>,
    #[serde(rename = "column", default)]
    column: Vec<RawColumn>,
}

fn tab() -> String {
    "\t".into()
}
fn double_quote() -> String {
    "\"".into()
}
fn yes() -> bool {
    true
}

/// A single ASCII byte that can separate or quote fields.
fn one_byte(file: &str, key: &str, s: &str) -> Result<u8> {
    match s.as_bytes() {
        [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(bad(
            file,
            key,
            format!("must be one ASCII character other than a line break, not {s:?}"),
        )),
    }
}

impl Schema {
    /// Reads and validates a schema file.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| bad(&name, "", e.to_string()))?;
        Self::parse(&text, &name)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let raw: RawSchema =
            toml::from_str(text).map_err(|e| bad(file, "", e.to_string().trim_end()))?;
        let delimiter = one_byte(file, "delimiter", &raw.delimiter)?;
        let quote = match raw.quote.as_str() {
            "" => None,
            q => Some(one_byte(file, "quote", q)?),
        };
        if quote == Some(delimiter) {
            return Err(bad(file, "quote", "must differ from the delimiter"));
        }
        let raw_columns = match (raw.columns, raw.column.is_empty()) {
            (Some(_), false) => {
                return Err(bad(
                    file,
                    "columns",
                    "give either `columns = \"…\"` or [[column]] tables, not both",
                ))
            }
            (Some(compact), true) => expand_compact(file, &compact)?,
            (None, false) => raw.column,
            (None, true) => {
                return Err(bad(
                    file,
                    "column",
                    "no columns: add [[column]] tables or `columns = \"…\"`",
                ))
            }
        };
        let columns = resolve_columns(file, raw_columns)?;
        Ok(Schema {
            delimiter,
            quote,
            header: raw.header,
            columns,
        })
    }

    /// Index of the column called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}
