//! The text [`build_sequences`](super::build_sequences) writes: fields written back as the reader
//! parsed them (numbers in Rust's shortest round-trip form, missing as empty), quoted when they
//! must be, and the output's `schema.toml`.

use std::fmt::Write as _;

use crate::data::batch::{ColumnData, Ragged, Tokens};
use crate::data::schema::{ColumnKind, Schema};
use crate::error::{Error, Result};

/// A value written back as text (numbers in Rust's shortest round-trip form, missing as empty).
pub(super) fn format_field(column: &ColumnData, r: usize) -> String {
    let join_tokens = |bags: &Ragged<Tokens>, sep: &str| bags.row(r).collect::<Vec<_>>().join(sep);
    match column {
        // A missing label (the sentinel, below 0) is written back as the empty field it was read from.
        ColumnData::Label(v) if v[r] < 0.0 => String::new(),
        ColumnData::Label(v) | ColumnData::Weight(v) => v[r].to_string(),
        ColumnData::Numeric(v) => {
            if v[r].is_nan() {
                String::new()
            } else {
                v[r].to_string()
            }
        }
        ColumnData::Timestamp(v) => v[r].to_string(),
        ColumnData::Categorical(t) => t.get(r).to_string(),
        ColumnData::MultiHot(bags) | ColumnData::Sequence(bags) => join_tokens(bags, "\u{0}"),
        ColumnData::SequenceTimes(times) => times
            .row(r)
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join("\u{0}"),
        ColumnData::Skip => String::new(),
    }
}

/// `field` for column `c`, its NUL placeholders replaced by the column's separator and quoted when
/// it holds the delimiter, the quote or a line break (an error when quoting is off).
pub(super) fn quoted(
    schema: &Schema,
    field: &str,
    file: &str,
    line: Option<u64>,
    c: usize,
) -> Result<String> {
    let separator = match &schema.columns[c].kind {
        ColumnKind::MultiHot { separator }
        | ColumnKind::Sequence { separator }
        | ColumnKind::SequenceTimes { separator, .. } => separator.as_str(),
        _ => "|",
    };
    let field = field.replace('\u{0}', separator);
    let d = char::from(schema.delimiter);
    let needs = field.contains(d) || field.contains('\n') || field.contains('\r');
    match schema.quote {
        Some(q) => {
            let q = char::from(q);
            if needs || field.starts_with(q) {
                Ok(format!("{q}{}{q}", field.replace(q, &format!("{q}{q}"))))
            } else {
                Ok(field)
            }
        }
        None if needs => Err(Error::Data {
            file: file.to_string(),
            line,
            column: Some(format!("{} {:?}", c + 1, schema.columns[c].name)),
            message: format!(
                "{field:?} holds the delimiter or a line break and the schema turns quoting off"
            ),
        }),
        None => Ok(field),
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The schema of the output: the kept columns, then the history columns.
pub(super) fn output_schema(schema: &Schema, kept: &[usize], new_names: &[String]) -> String {
    let mut s = String::from("# Sample table built from an event log by `wgrec data sequences`.\n");
    let _ = writeln!(
        s,
        "delimiter = {}",
        toml_string(&char::from(schema.delimiter).to_string())
    );
    let quote = schema
        .quote
        .map(|q| char::from(q).to_string())
        .unwrap_or_default();
    let _ = writeln!(s, "quote = {}\nheader = true", toml_string(&quote));
    for &c in kept {
        let column = &schema.columns[c];
        let _ = write!(
            s,
            "\n[[column]]\nname = {}\ntype = \"{}\"\n",
            toml_string(&column.name),
            column.kind.name()
        );
        match &column.kind {
            ColumnKind::MultiHot { separator } | ColumnKind::Sequence { separator } => {
                let _ = writeln!(s, "separator = {}", toml_string(separator));
            }
            ColumnKind::SequenceTimes {
                separator,
                sequence,
            } => {
                let _ = writeln!(
                    s,
                    "separator = {}\nsequence = {}",
                    toml_string(separator),
                    toml_string(&schema.columns[*sequence].name)
                );
            }
            _ => {}
        }
    }
    let last = new_names.len() - 1;
    for (k, name) in new_names.iter().enumerate() {
        let kind = if k == last {
            "sequence_times"
        } else {
            "sequence"
        };
        let _ = write!(
            s,
            "\n[[column]]\nname = {}\ntype = \"{kind}\"\nseparator = \"|\"\n",
            toml_string(name)
        );
        if k == last {
            let _ = writeln!(s, "sequence = {}", toml_string(&new_names[0]));
        }
    }
    s
}
