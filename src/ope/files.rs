//! The files `wgrec ope` reads: the bandit log, a sample table under a wgrec schema, and the dense
//! per-round tables of the target policy (`p_…` columns) and of a reward model (`q_…` columns).
//!
//! A table file is tab-separated with a header and one line per log row, in the log's order: the
//! header names the columns `p_<x>` (or `q_<x>`); line i + 2 holds round i's values. The columns
//! are mapped to actions in one of two ways, the first that applies:
//! 1. named: every action id of the log is some `<x>` — column `p_<x>` is action `<x>` (the file
//!    may hold actions the log never shows);
//! 2. positional: as many columns as the log has distinct action ids — the j-th column is the j-th
//!    id in sorted order (numerically when every id is an integer, else by bytes).
//!
//! Anything else is an error. A reward model's header must name the same actions in the same
//! order as the policy's. Every error names the file, the line and the column.

use super::{ActionTable, BanditLog, PROBABILITY_SUM_TOLERANCE};
use crate::data::{Batch, ColumnData, ColumnKind, ReadOptions, Schema, TableReader};
use crate::{Error, Result};
use std::path::Path;

/// The log's column names.
#[derive(Debug, Clone, PartialEq)]
pub struct LogColumns {
    /// The logged action (categorical). Conventionally `item_id`.
    pub action: String,
    /// The position the action was shown at (categorical). Conventionally `position`.
    pub position: String,
    /// The reward (label). Conventionally `click`.
    pub reward: String,
    /// The logging propensity (numeric). Conventionally `propensity`.
    pub propensity: String,
}

impl Default for LogColumns {
    fn default() -> Self {
        LogColumns {
            action: "item_id".into(),
            position: "position".into(),
            reward: "click".into(),
            propensity: "propensity".into(),
        }
    }
}

/// A log as read from its file, the action ids still as text.
#[derive(Debug, Clone, Default)]
pub struct LogRows {
    /// Action id per round.
    pub actions: Vec<String>,
    /// Position per round.
    pub positions: Vec<String>,
    /// Reward per round.
    pub rewards: Vec<f64>,
    /// Logging propensity per round.
    pub propensities: Vec<f64>,
}

/// Everything `wgrec ope` evaluates.
#[derive(Debug, Clone)]
pub struct OpeInput {
    /// The log with actions as column indices.
    pub log: BanditLog,
    /// The action id of each column.
    pub action_ids: Vec<String>,
    /// Distinct positions in the log.
    pub positions: usize,
    /// The target policy.
    pub policy: ActionTable,
    /// The reward model, if given.
    pub model: Option<ActionTable>,
}

/// Reads the log, the policy file and the optional reward-model file, and maps actions.
pub fn load(
    log: &Path,
    schema: &Path,
    columns: &LogColumns,
    policy: &Path,
    model: Option<&Path>,
) -> Result<OpeInput> {
    let rows = read_log(
        log,
        &Schema::load(schema)?,
        &schema.display().to_string(),
        columns,
    )?;
    let (action_ids, policy) = read_table(policy, "p_", &rows.actions, None)?;
    let model = match model {
        Some(path) => Some(read_table(path, "q_", &rows.actions, Some(&action_ids))?.1),
        None => None,
    };
    let index: std::collections::HashMap<&str, usize> = action_ids
        .iter()
        .enumerate()
        .map(|(j, a)| (a.as_str(), j))
        .collect();
    let actions = rows.actions.iter().map(|a| index[a.as_str()]).collect();
    let mut positions = rows.positions.clone();
    positions.sort();
    positions.dedup();
    Ok(OpeInput {
        log: BanditLog {
            actions,
            rewards: rows.rewards,
            propensities: rows.propensities,
        },
        action_ids,
        positions: positions.len(),
        policy,
        model,
    })
}

fn column_index(
    schema: &Schema,
    schema_name: &str,
    name: &str,
    role: &str,
    flag: &str,
) -> Result<usize> {
    schema.index(name).ok_or_else(|| Error::Config {
        file: schema_name.into(),
        key: "column".into(),
        message: format!("no column {name:?} (the log's {role}; name it with --{flag})"),
    })
}

fn bad_value(file: &str, line: u64, column: (usize, &str), message: String) -> Error {
    Error::Data {
        file: file.into(),
        line: Some(line),
        column: Some(format!("{} {:?}", column.0 + 1, column.1)),
        message,
    }
}

/// Reads the four columns of the log; propensities must be in (0, 1] and rewards 0 or 1.
pub fn read_log(
    path: &Path,
    schema: &Schema,
    schema_name: &str,
    c: &LogColumns,
) -> Result<LogRows> {
    let roles = [
        (&c.action, "action", ColumnKind::Categorical),
        (&c.position, "position", ColumnKind::Categorical),
        (&c.reward, "reward", ColumnKind::Label),
        (&c.propensity, "propensity", ColumnKind::Numeric),
    ];
    let mut idx = [0; 4];
    for (k, (name, role, kind)) in roles.iter().enumerate() {
        idx[k] = column_index(schema, schema_name, name, role, role)?;
        if schema.columns[idx[k]].kind != *kind {
            return Err(Error::Config {
                file: schema_name.into(),
                key: format!("column[{}].type", idx[k]),
                message: format!("{name:?} is not {kind:?}, which the log's {role} must be"),
            });
        }
    }
    let file = path.display().to_string();
    let mut reader = TableReader::open(path, schema, ReadOptions::default())?;
    let mut rows = LogRows::default();
    while let Some(batch) = reader.next_batch()? {
        append(&batch, &idx, schema, &file, &mut rows)?;
    }
    Ok(rows)
}

/// Appends a batch's rounds; the column types were checked against the schema.
fn append(
    batch: &Batch,
    idx: &[usize; 4],
    schema: &Schema,
    file: &str,
    rows: &mut LogRows,
) -> Result<()> {
    let col = |k: usize| (idx[k], schema.columns[idx[k]].name.as_str());
    let (
        ColumnData::Categorical(actions),
        ColumnData::Categorical(positions),
        ColumnData::Label(rewards),
        ColumnData::Numeric(propensities),
    ) = (
        &batch.columns[idx[0]],
        &batch.columns[idx[1]],
        &batch.columns[idx[2]],
        &batch.columns[idx[3]],
    )
    else {
        return Err(Error::data(
            file,
            "the batch's column types differ from the schema's",
        ));
    };
    for r in 0..batch.rows {
        let line = batch.lines[r];
        let p = propensities[r];
        if !(p.is_finite() && p > 0.0 && p <= 1.0) {
            return Err(bad_value(
                file,
                line,
                col(3),
                format!("propensity {p} is not in (0, 1]"),
            ));
        }
        if rewards[r] < 0.0 {
            return Err(bad_value(
                file,
                line,
                col(2),
                "the reward is missing".into(),
            ));
        }
        rows.actions.push(actions.get(r).to_owned());
        rows.positions.push(positions.get(r).to_owned());
        rows.rewards.push(f64::from(rewards[r]));
        rows.propensities.push(p);
    }
    Ok(())
}

/// The sorted distinct ids: numerically when all are integers, else by bytes.
pub fn sorted_actions(ids: &[String]) -> Vec<String> {
    let mut distinct: Vec<String> = ids.to_vec();
    distinct.sort();
    distinct.dedup();
    if distinct.iter().all(|a| a.parse::<i64>().is_ok()) {
        distinct.sort_by_key(|a| a.parse::<i64>().expect("checked just above"));
    }
    distinct
}

/// The action id of each header column, by the module's two rules.
fn map_header(
    file: &str,
    header: &[&str],
    prefix: &str,
    log_actions: &[String],
) -> Result<Vec<String>> {
    let mut suffixes = Vec::with_capacity(header.len());
    for (j, name) in header.iter().enumerate() {
        let Some(s) = name.strip_prefix(prefix) else {
            return Err(bad_value(
                file,
                1,
                (j, name),
                format!("a column name must start with {prefix:?}"),
            ));
        };
        suffixes.push(s.to_owned());
    }
    let named: std::collections::HashSet<&str> = suffixes.iter().map(String::as_str).collect();
    if named.len() == suffixes.len() && log_actions.iter().all(|a| named.contains(a.as_str())) {
        return Ok(suffixes);
    }
    let sorted = sorted_actions(log_actions);
    if sorted.len() == header.len() {
        return Ok(sorted);
    }
    Err(Error::Data {
        file: file.into(),
        line: Some(1),
        column: None,
        message: format!(
            "{} columns neither name every action of the log ({prefix}<action id>) nor match its {} distinct actions in number",
            header.len(),
            sorted.len()
        ),
    })
}

/// Reads a policy (`p_`) or reward-model (`q_`) table with one line per log round; `same_as`
/// is the policy's action ids, which a reward model must repeat.
pub fn read_table(
    path: &Path,
    prefix: &str,
    log_actions: &[String],
    same_as: Option<&[String]>,
) -> Result<(Vec<String>, ActionTable)> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::data(&file, format!("cannot read: {e}")))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let ids = map_header(&file, &header, prefix, log_actions)?;
    if let Some(policy) = same_as.filter(|p| *p != ids.as_slice()) {
        return Err(Error::Data {
            file,
            line: Some(1),
            column: None,
            message: format!(
                "its actions {:?}… differ from the policy file's {:?}…",
                &ids[..ids.len().min(3)],
                &policy[..policy.len().min(3)]
            ),
        });
    }
    let mut values = Vec::with_capacity(log_actions.len() * ids.len());
    let mut rounds = 0;
    for (i, line) in lines.enumerate() {
        let number = i as u64 + 2;
        if rounds == log_actions.len() {
            return Err(Error::Data {
                file,
                line: Some(number),
                column: None,
                message: format!("more rows than the log's {} rounds", log_actions.len()),
            });
        }
        read_row(&file, number, line, &header, prefix == "p_", &mut values)?;
        rounds += 1;
    }
    if rounds != log_actions.len() {
        return Err(Error::data(
            &file,
            format!(
                "{rounds} rows, the log has {} rounds (one row per round)",
                log_actions.len()
            ),
        ));
    }
    Ok((
        ids,
        ActionTable {
            actions: header.len(),
            values,
        },
    ))
}

fn read_row(
    file: &str,
    number: u64,
    line: &str,
    header: &[&str],
    sums_to_one: bool,
    out: &mut Vec<f64>,
) -> Result<()> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() != header.len() {
        let message = format!("{} fields, the header has {}", fields.len(), header.len());
        return Err(Error::Data {
            file: file.into(),
            line: Some(number),
            column: None,
            message,
        });
    }
    let start = out.len();
    for (j, f) in fields.iter().enumerate() {
        match f.trim().parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => out.push(v),
            _ => {
                return Err(bad_value(
                    file,
                    number,
                    (j, header[j]),
                    format!("{f:?} is not a probability in [0, 1]"),
                ))
            }
        }
    }
    let total = super::exact_sum(out[start..].iter().copied());
    if sums_to_one && (total - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
        let message = format!(
            "the probabilities sum to {total}, not 1 (tolerance {PROBABILITY_SUM_TOLERANCE})"
        );
        return Err(Error::Data {
            file: file.into(),
            line: Some(number),
            column: None,
            message,
        });
    }
    Ok(())
}
