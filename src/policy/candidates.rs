//! The candidate actions and the values of their own columns (the action id and the action's
//! features), which `wgrec policy` substitutes into every log row.
//!
//! Two sources: a candidates file (tab-separated, a header naming schema columns, the first of
//! them the action id; one line per action), or a file in the model's schema from which the first
//! row of each distinct action gives its values (`--actions-from`, e.g. the training split: the
//! OBD fetch joins `item_context.csv` into every row, so each item's features are there). A row
//! whose action repeats an earlier one with other feature values is an error, so the two sources
//! cannot silently disagree.

use std::collections::HashMap;
use std::path::Path;

use crate::data::Schema;
use crate::error::{Error, Result};
use crate::ope::files::sorted_actions;

use super::log::LogText;

/// The candidate actions, sorted (numerically when every id is an integer, else by bytes: the
/// order of `wgrec ope`'s positional rule), with the text of each action column.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    /// Schema indices of the substituted columns; the first is the action id.
    pub columns: Vec<usize>,
    /// The names of `columns`.
    pub names: Vec<String>,
    /// The action ids, sorted.
    pub actions: Vec<String>,
    /// Per action (in `actions`' order), the text of each of `columns`.
    pub values: Vec<Vec<String>>,
}

impl Candidates {
    /// Reads a candidates file (see the module docs) for a model with `schema`.
    pub fn read(path: &Path, schema: &Schema) -> Result<Self> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::data(&file, format!("cannot read: {e}")))?;
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.is_empty());
        let header: Vec<String> = match lines.next() {
            Some((_, h)) => h.split('\t').map(str::to_owned).collect(),
            None => {
                return Err(Error::data(
                    &file,
                    "empty: it needs a header and one line per action",
                ))
            }
        };
        let columns = schema_columns(&file, schema, &header)?;
        let mut rows = Vec::new();
        for (i, line) in lines {
            let fields: Vec<String> = line.split('\t').map(str::to_owned).collect();
            if fields.len() != header.len() {
                let message = format!("{} fields, the header has {}", fields.len(), header.len());
                return Err(Error::Data {
                    file,
                    line: Some(i as u64 + 1),
                    column: None,
                    message,
                });
            }
            rows.push((i as u64 + 1, fields));
        }
        Self::collect(&file, columns, header, rows)
    }

    /// The first row of each distinct action in `log` (a file in the model's schema), for the
    /// schema columns named `names` (the first is the action id).
    pub fn from_log(log: &LogText, schema: &Schema, names: &[String]) -> Result<Self> {
        let columns = schema_columns(&log.file, schema, names)?;
        let rows = log
            .rows
            .iter()
            .zip(&log.lines)
            .map(|(row, &line)| (line, columns.iter().map(|&c| row[c].clone()).collect()))
            .collect();
        Self::collect(&log.file, columns, names.to_vec(), rows)
    }

    /// One entry per distinct action; a repeat must carry the same values.
    fn collect(
        file: &str,
        columns: Vec<usize>,
        names: Vec<String>,
        rows: Vec<(u64, Vec<String>)>,
    ) -> Result<Self> {
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for (line, fields) in rows {
            let id = fields[0].trim().to_owned();
            if let Some(first) = seen.get(&id) {
                if let Some(k) = (1..fields.len()).find(|&k| first[k] != fields[k]) {
                    return Err(Error::Data {
                        file: file.into(),
                        line: Some(line),
                        column: Some(format!("{} {:?}", columns[k] + 1, names[k])),
                        message: format!(
                            "action {id:?} has {:?} here and {:?} on an earlier line",
                            fields[k], first[k]
                        ),
                    });
                }
            } else {
                seen.insert(id, fields);
            }
        }
        if seen.is_empty() {
            return Err(Error::data(file, "no candidate actions"));
        }
        let ids: Vec<String> = seen.keys().cloned().collect();
        let actions = sorted_actions(&ids);
        let values = actions.iter().map(|a| seen[a].clone()).collect();
        Ok(Candidates {
            columns,
            names,
            actions,
            values,
        })
    }

    /// The index of `action` among the candidates.
    pub fn position(&self, action: &str) -> Option<usize> {
        self.actions.iter().position(|a| a == action)
    }
}

/// The schema index of each name; an unknown name or a repeat is an error naming `file`.
fn schema_columns(file: &str, schema: &Schema, names: &[String]) -> Result<Vec<usize>> {
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let c = schema.index(name.trim()).ok_or_else(|| Error::Data {
            file: file.into(),
            line: None,
            column: None,
            message: format!("action column {name:?} is not a column of the model's schema"),
        })?;
        if columns.contains(&c) {
            return Err(Error::data(
                file,
                format!("action column {name:?} named twice"),
            ));
        }
        columns.push(c);
    }
    if columns.is_empty() {
        return Err(Error::data(file, "no action columns"));
    }
    Ok(columns)
}
