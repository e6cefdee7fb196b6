//! Reading the raw recbole files (`ml-100k.inter`, `.user`, `.item`): typed headers, tab-separated
//! rows, errors naming the file, line and column.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::err;
use crate::{Error, Result};

/// One rating event, as read.
#[derive(Debug, Clone)]
pub(super) struct Event {
    pub(super) user: String,
    pub(super) item: String,
    pub(super) rating: f64,
    pub(super) timestamp: i64,
}

/// A user's attributes from `ml-100k.user`.
#[derive(Debug, Clone)]
pub(super) struct User {
    pub(super) age: String,
    pub(super) gender: String,
    pub(super) occupation: String,
    pub(super) zip_first: String,
}

/// An item's attributes from `ml-100k.item`; `release_year` is empty when not a number.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) release_year: String,
    pub(super) genres: Vec<String>,
}

/// A tab-separated recbole file: header names (the part before `:type`) and rows, with line numbers.
struct Table {
    file: PathBuf,
    names: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    fn read(path: &Path) -> Result<Table> {
        let text = fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let mut lines = text.lines().enumerate();
        let (_, header) = lines
            .next()
            .ok_or_else(|| err(format!("{} is empty", path.display())))?;
        let names: Vec<String> = header
            .split('\t')
            .map(|h| h.split(':').next().unwrap_or(h).to_owned())
            .collect();
        let mut rows = Vec::new();
        for (i, line) in lines {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let fields: Vec<String> = line.split('\t').map(str::to_owned).collect();
            if fields.len() != names.len() {
                return Err(err(format!(
                    "{}:{}: {} fields, the header has {}",
                    path.display(),
                    i + 1,
                    fields.len(),
                    names.len()
                )));
            }
            rows.push((i + 1, fields));
        }
        Ok(Table {
            file: path.to_owned(),
            names,
            rows,
        })
    }

    fn column(&self, name: &str) -> Result<usize> {
        self.names.iter().position(|n| n == name).ok_or_else(|| {
            err(format!(
                "{}: no column {name:?} in the header",
                self.file.display()
            ))
        })
    }

    fn bad(&self, line: usize, column: &str, value: &str, what: &str) -> Error {
        err(format!(
            "{}:{line}: column {column}: {value:?} is not {what}",
            self.file.display()
        ))
    }
}

pub(super) fn read_events(path: &Path) -> Result<Vec<Event>> {
    let t = Table::read(path)?;
    let (u, i, r, ts) = (
        t.column("user_id")?,
        t.column("item_id")?,
        t.column("rating")?,
        t.column("timestamp")?,
    );
    t.rows
        .iter()
        .map(|(line, f)| {
            let rating = f[r]
                .parse::<f64>()
                .map_err(|_| t.bad(*line, "rating", &f[r], "a number"))?;
            let timestamp = f[ts]
                .parse::<i64>()
                .or_else(|_| f[ts].parse::<f64>().map(|x| x as i64))
                .map_err(|_| t.bad(*line, "timestamp", &f[ts], "a number"))?;
            Ok(Event {
                user: f[u].clone(),
                item: f[i].clone(),
                rating,
                timestamp,
            })
        })
        .collect()
}

pub(super) fn read_users(path: &Path) -> Result<HashMap<String, User>> {
    let t = Table::read(path)?;
    let (u, a, g, o, z) = (
        t.column("user_id")?,
        t.column("age")?,
        t.column("gender")?,
        t.column("occupation")?,
        t.column("zip_code")?,
    );
    let mut users = HashMap::new();
    for (line, f) in &t.rows {
        f[a].parse::<f64>()
            .map_err(|_| t.bad(*line, "age", &f[a], "a number"))?;
        let user = User {
            age: f[a].clone(),
            gender: f[g].clone(),
            occupation: f[o].clone(),
            zip_first: f[z].chars().next().map(String::from).unwrap_or_default(),
        };
        users.insert(f[u].clone(), user);
    }
    Ok(users)
}

pub(super) fn read_items(path: &Path) -> Result<HashMap<String, Item>> {
    let t = Table::read(path)?;
    let (i, y, c) = (
        t.column("item_id")?,
        t.column("release_year")?,
        t.column("class")?,
    );
    let mut items = HashMap::new();
    for (_, f) in &t.rows {
        // Two items carry "unkonwn" and "V" as the year: missing, written empty.
        let release_year = if f[y].parse::<u32>().is_ok() {
            f[y].clone()
        } else {
            String::new()
        };
        let genres = f[c]
            .split(' ')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        items.insert(
            f[i].clone(),
            Item {
                release_year,
                genres,
            },
        );
    }
    Ok(items)
}
