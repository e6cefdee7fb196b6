//! Event logs to sample tables (DATA.md §2): one row per event (user, item, item attributes,
//! timestamp, label…) becomes one sample whose behaviour sequence is that user's events strictly
//! before it in (time, file order), most recent last, at most `max_len` — the construction the
//! ml-100k protocol uses (DATA.md §1).
//!
//! The output is a sample table with the event's own columns (skip columns dropped), then
//! `hist_<item>`, one `hist_<side>` per side column and `hist_time`, in (time, file order), with a
//! header; and its schema (`hist_time` linked to `hist_<item>`). Which events count as behaviours is
//! configurable: all, or those whose label is 1 (every event is still a sample).
//!
//! Memory: the whole log is held while it is sorted by time (a log already in time order still is);
//! the per-user histories are at most `max_len` each.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::batch::{Batch, ColumnData};
use super::schema::{ColumnKind, Schema};
use super::table::{BadRows, ReadOptions, TableReader};
use crate::checkpoint::write_atomically;
use crate::error::{Error, Result};

/// Which events become behaviours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviours {
    /// Every event.
    All,
    /// Events whose label column holds 1.
    Positive {
        /// The label column.
        label: String,
    },
}

/// What [`build_sequences`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceOptions {
    /// The user column (categorical).
    pub user: String,
    /// The item column (categorical).
    pub item: String,
    /// The event time column (timestamp).
    pub time: String,
    /// Item attribute columns carried into each behaviour (categorical, or multi_hot: its first
    /// id).
    pub side: Vec<String>,
    /// Which events are behaviours.
    pub behaviours: Behaviours,
    /// Longest history kept (the most recent).
    pub max_len: usize,
}

/// What [`build_sequences`] wrote.
#[derive(Debug)]
pub struct SequenceStats {
    /// Samples written.
    pub rows: u64,
    /// Distinct users.
    pub users: u64,
    /// Mean history length.
    pub mean_history: f64,
    /// Rows skipped under `skip_bad_rows`.
    pub bad_rows: BadRows,
}

fn config_error(file: &str, key: &str, message: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_string(),
        key: key.to_string(),
        message: message.into(),
    }
}

/// The schema column `name` for option `key`, of one of the `kinds` (type names).
fn column(schema: &Schema, file: &str, key: &str, name: &str, kinds: &[&str]) -> Result<usize> {
    let c = schema
        .index(name)
        .ok_or_else(|| config_error(file, key, format!("no column {name:?} in the schema")))?;
    let kind = schema.columns[c].kind.name();
    if !kinds.contains(&kind) {
        return Err(config_error(
            file,
            key,
            format!("column {name:?} is {kind}, not {}", kinds.join(" or ")),
        ));
    }
    Ok(c)
}

/// One behaviour: its item, side ids and time.
#[derive(Debug, Clone)]
struct Behaviour {
    item: String,
    side: Vec<String>,
    time: i64,
}

/// Reads the event log `events` (typed by `schema`, named `schema_file` in errors) and writes the
/// sample table `out` and its schema `schema_out` (see the module docs), each atomically. Options
/// that name no fitting column are [`Error::Config`] keyed by the command-line option (`--user`,
/// `--side 2`, …).
pub fn build_sequences(
    events: &Path,
    schema: &Schema,
    schema_file: &str,
    options: &SequenceOptions,
    read: ReadOptions,
    out: &Path,
    schema_out: &Path,
) -> Result<SequenceStats> {
    let user = column(
        schema,
        schema_file,
        "--user",
        &options.user,
        &["categorical"],
    )?;
    let item = column(
        schema,
        schema_file,
        "--item",
        &options.item,
        &["categorical"],
    )?;
    let time = column(schema, schema_file, "--time", &options.time, &["timestamp"])?;
    let sides = options
        .side
        .iter()
        .enumerate()
        .map(|(j, s)| {
            column(
                schema,
                schema_file,
                &format!("--side {}", j + 1),
                s,
                &["categorical", "multi_hot"],
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let label = match &options.behaviours {
        Behaviours::All => None,
        Behaviours::Positive { label } => {
            Some(column(schema, schema_file, "--label", label, &["label"])?)
        }
    };
    if options.max_len == 0 {
        return Err(config_error(
            schema_file,
            "max_len",
            "0: must be at least 1",
        ));
    }
    let kept: Vec<usize> = (0..schema.columns.len())
        .filter(|&c| schema.columns[c].kind != ColumnKind::Skip)
        .collect();
    let new_names: Vec<String> = std::iter::once(&options.item)
        .chain(&options.side)
        .map(|n| format!("hist_{n}"))
        .chain(["hist_time".to_string()])
        .collect();
    for (k, name) in new_names.iter().enumerate() {
        if schema.index(name).is_some() || new_names[..k].contains(name) {
            return Err(config_error(
                schema_file,
                "column",
                format!("the output column {name:?} is already a column"),
            ));
        }
    }
    let file = events.display().to_string();
    let mut reader = TableReader::open(events, schema, read)?;
    let mut batches: Vec<Batch> = Vec::new();
    for batch in reader.by_ref() {
        batches.push(batch?);
    }
    let bad_rows = reader.into_bad_rows();
    // (time, batch, row): a stable order by time, then file order.
    let mut order: Vec<(i64, u32, u32)> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let ColumnData::Timestamp(t) = &batch.columns[time] else {
            unreachable!("time column resolved")
        };
        order.extend(t.iter().enumerate().map(|(r, &t)| (t, b as u32, r as u32)));
    }
    order.sort_unstable();
    let mut histories: HashMap<String, VecDeque<Behaviour>> = HashMap::new();
    let mut text = String::new();
    let d = char::from(schema.delimiter);
    let header: Vec<String> = kept
        .iter()
        .map(|&c| quoted(schema, &schema.columns[c].name, &file, None, c))
        .collect::<Result<_>>()?;
    text.push_str(&header.join(&d.to_string()));
    for name in &new_names {
        text.push(d);
        text.push_str(name);
    }
    text.push('\n');
    let mut total_history = 0u64;
    let mut body: Vec<u8> = Vec::new();
    body.extend_from_slice(text.as_bytes());
    for &(t, b, r) in &order {
        let batch = &batches[b as usize];
        let r = r as usize;
        let line = batch.lines[r];
        let at = |c: usize, message: String| Error::Data {
            file: file.clone(),
            line: Some(line),
            column: Some(format!("{} {:?}", c + 1, schema.columns[c].name)),
            message,
        };
        text.clear();
        for (k, &c) in kept.iter().enumerate() {
            if k > 0 {
                text.push(d);
            }
            let field = format_field(&batch.columns[c], r);
            text.push_str(&quoted(schema, &field, &file, Some(line), c)?);
        }
        let user_id = token(&batch.columns[user], r);
        let history = histories.entry(user_id.to_string()).or_default();
        total_history += history.len() as u64;
        let mut columns: Vec<String> = vec![String::new(); new_names.len()];
        for (k, behaviour) in history.iter().enumerate() {
            let sep = if k > 0 { "|" } else { "" };
            columns[0].push_str(sep);
            columns[0].push_str(&behaviour.item);
            for (j, s) in behaviour.side.iter().enumerate() {
                columns[1 + j].push_str(sep);
                columns[1 + j].push_str(s);
            }
            let last = columns.len() - 1;
            let _ = write!(columns[last], "{sep}{}", behaviour.time);
        }
        for c in &columns {
            text.push(d);
            text.push_str(&quoted(schema, c, &file, Some(line), item)?);
        }
        text.push('\n');
        body.extend_from_slice(text.as_bytes());
        // This event joins the user's history for the events after it.
        let is_behaviour = match label {
            None => true,
            Some(c) => matches!(&batch.columns[c], ColumnData::Label(y) if y[r] == 1.0),
        };
        if is_behaviour {
            let id = |c: usize| -> Result<String> {
                let id = match &batch.columns[c] {
                    ColumnData::MultiHot(bags) => bags.row(r).next().unwrap_or("").to_string(),
                    other => token(other, r).to_string(),
                };
                if id.is_empty() {
                    return Err(at(c, "empty: a behaviour needs an id".into()));
                }
                if id.contains('|') {
                    return Err(at(
                        c,
                        format!("id {id:?} holds \"|\", the separator of the history columns"),
                    ));
                }
                Ok(id)
            };
            let behaviour = Behaviour {
                item: id(item)?,
                side: sides.iter().map(|&c| id(c)).collect::<Result<_>>()?,
                time: t,
            };
            let history = histories.get_mut(user_id).expect("inserted above");
            if history.len() == options.max_len {
                history.pop_front();
            }
            history.push_back(behaviour);
        }
    }
    write_atomically(out, |temporary| {
        let mut f = std::fs::File::create(temporary)
            .map_err(|e| Error::data(temporary.display(), format!("cannot create: {e}")))?;
        f.write_all(&body)
            .map_err(|e| Error::data(temporary.display(), format!("cannot write: {e}")))
    })?;
    let schema_text = output_schema(schema, &kept, &new_names);
    write_atomically(schema_out, |temporary| {
        std::fs::write(temporary, &schema_text)
            .map_err(|e| Error::data(temporary.display(), format!("cannot write: {e}")))
    })?;
    let rows = order.len() as u64;
    Ok(SequenceStats {
        rows,
        users: histories.len() as u64,
        mean_history: total_history as f64 / rows.max(1) as f64,
        bad_rows,
    })
}

fn token(column: &ColumnData, r: usize) -> &str {
    match column {
        ColumnData::Categorical(t) => t.get(r),
        other => unreachable!("a categorical column is {}", other.type_name()),
    }
}

/// A value written back as text (numbers in Rust's shortest round-trip form, missing as empty).
fn format_field(column: &ColumnData, r: usize) -> String {
    let join_tokens = |bags: &super::batch::Ragged<super::batch::Tokens>, sep: &str| {
        bags.row(r).collect::<Vec<_>>().join(sep)
    };
    match column {
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
fn quoted(schema: &Schema, field: &str, file: &str, line: Option<u64>, c: usize) -> Result<String> {
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
fn output_schema(schema: &Schema, kept: &[usize], new_names: &[String]) -> String {
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

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
