//! User–item edges read from a data folder's training split (`schema.toml` + `train.tsv`) through
//! the crate's streaming [`TableReader`]: one edge per row (`positive`: rows whose label is 1;
//! `all`: every row). Ids are kept as strings in first-seen order, users and items apart.

use std::collections::HashMap;
use std::path::Path;

use crate::data::batch::ColumnData;
use crate::data::schema::{ColumnKind, Schema};
use crate::data::splits::split_path;
use crate::data::table::{ReadOptions, TableReader};
use crate::error::{Error, Result};

/// Which rows become edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EdgeRows {
    /// Rows whose label column is 1 (the default).
    #[default]
    Positive,
    /// Every row.
    All,
}

/// The columns an edge is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeColumns {
    /// The user id column (categorical).
    pub user: String,
    /// The item id column (categorical).
    pub item: String,
    /// The label column; `None`: the schema's first label column.
    pub label: Option<String>,
    /// Which rows count.
    pub rows: EdgeRows,
}

/// One id space: strings in first-seen order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdSpace {
    /// The ids; id `k` is node `k` of its side.
    pub names: Vec<String>,
    index: HashMap<String, u32>,
}

impl IdSpace {
    /// The index of `name`, added if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&k) = self.index.get(name) {
            return k;
        }
        let k = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), k);
        k
    }

    /// How many ids.
    pub fn len(&self) -> u32 {
        self.names.len() as u32
    }

    /// No ids.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Users, items and the (possibly repeated) edges read so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeList {
    /// User ids.
    pub users: IdSpace,
    /// Item ids.
    pub items: IdSpace,
    /// `(user, item)` per edge row, repeats included.
    pub edges: Vec<(u32, u32)>,
}

/// Where each needed column sits in the schema, checked against its type.
fn locate(
    schema: &Schema,
    file: &str,
    columns: &EdgeColumns,
) -> Result<(usize, usize, Option<usize>)> {
    let find = |name: &str, flag: &str, want: &str| -> Result<usize> {
        let c = schema.index(name).ok_or_else(|| {
            let known: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
            Error::data(
                file,
                format!("{flag} {name:?}: no such column ({})", known.join(", ")),
            )
        })?;
        let ok = match want {
            "label" => schema.columns[c].kind == ColumnKind::Label,
            _ => schema.columns[c].kind == ColumnKind::Categorical,
        };
        if !ok {
            return Err(Error::data(
                file,
                format!("{flag} {name:?}: the column is not of type {want} (0/1 for a label)"),
            ));
        }
        Ok(c)
    };
    let user = find(&columns.user, "--user", "categorical")?;
    let item = find(&columns.item, "--item", "categorical")?;
    let label = match (&columns.label, columns.rows) {
        (Some(name), _) => Some(find(name, "--label", "label")?),
        (None, EdgeRows::All) => None,
        (None, EdgeRows::Positive) => Some(
            schema
                .columns
                .iter()
                .position(|c| c.kind == ColumnKind::Label)
                .ok_or_else(|| {
                    Error::data(
                        file,
                        "no label column for --edges positive: pass --label or --edges all",
                    )
                })?,
        ),
    };
    Ok((user, item, label))
}

impl EdgeList {
    /// Adds the edges of `dir`'s training split.
    pub fn read_folder(&mut self, dir: &Path, columns: &EdgeColumns) -> Result<()> {
        let schema_path = dir.join("schema.toml");
        let schema = Schema::load(&schema_path)?;
        let (user, item, label) = locate(&schema, &schema_path.display().to_string(), columns)?;
        let path = split_path(dir, "train")?;
        let mut reader = TableReader::open(&path, &schema, ReadOptions::default())?;
        while let Some(batch) = reader.next_batch()? {
            let labels = match label.map(|c| &batch.columns[c]) {
                Some(ColumnData::Label(v)) => Some(v),
                _ => None,
            };
            let (ColumnData::Categorical(us), ColumnData::Categorical(is)) =
                (&batch.columns[user], &batch.columns[item])
            else {
                return Err(Error::data(
                    path.display(),
                    "user and item columns must be categorical",
                ));
            };
            for r in 0..batch.rows {
                let keep = match (columns.rows, labels) {
                    (EdgeRows::Positive, Some(l)) => l[r] == 1.0,
                    _ => true,
                };
                if !keep {
                    continue;
                }
                let (u, i) = (us.get(r), is.get(r));
                if u.is_empty() || i.is_empty() {
                    let (c, what) = if u.is_empty() {
                        (user, "user")
                    } else {
                        (item, "item")
                    };
                    return Err(Error::Data {
                        file: path.display().to_string(),
                        line: batch.lines.get(r).copied(),
                        column: Some(format!("{} {:?}", c + 1, schema.columns[c].name)),
                        message: format!("empty {what} id"),
                    });
                }
                let edge = (self.users.intern(u), self.items.intern(i));
                self.edges.push(edge);
            }
        }
        Ok(())
    }
}
