//! Ranking policies over a trained model, written as `wgrec ope`'s input files (docs/ope.md).
//!
//! Why: `wgrec ope` estimates a target policy's click rate from a bandit log given the policy's
//! probability of every action on every logged row. This module makes those probabilities from a
//! [`Predictor`]: for each log row it replaces the action's own columns (the action id and the
//! action's features, [`Candidates`]) by each candidate's, keeps the context columns, scores
//! every substituted row, and turns the scores into a policy row ([`Rule`]) and a reward-model row
//! (`q_<action>`, the model's probability, for the doubly robust estimate).
//!
//! Substituted rows go through the file reader's parsing and the predictor's compiled forward in
//! batches of up to its max batch, so a score is the one `wgrec predict` gives the same row in a
//! file, bit for bit. The UCB and Thompson rules (`explore.rs`) also read the uncertainty head's
//! belief over the same substituted rows. The bid multiplier of issue 18 (rank by bid·p) is not
//! here: the OBD log has no bid.

mod candidates;
mod explore;
mod log;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::Path;

pub use candidates::Candidates;
pub use explore::belief_table;
pub use log::LogText;

use crate::error::{Error, Result};
use crate::explore::Belief;
use crate::gpu::Gpu;
use crate::serve::rank::append_belief;
use crate::serve::request::{append_rows, empty_batch, RequestColumns, Shape};
use crate::serve::Predictor;

/// How scores become probabilities over the candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// All mass on the highest score; ties go to the first action in sorted order.
    Greedy,
    /// 1 − ε on the greedy action plus ε spread uniformly over all actions.
    Epsilon(f64),
}

impl Rule {
    /// ε-greedy with `epsilon` in [0, 1] (an error otherwise).
    pub fn epsilon(epsilon: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&epsilon) {
            return Err(Error::Config {
                file: "policy".into(),
                key: "epsilon".into(),
                message: format!("{epsilon} is not in [0, 1]"),
            });
        }
        Ok(Rule::Epsilon(epsilon))
    }

    /// Probabilities over the actions for one row of scores (`scores` must be finite and not
    /// empty; [`score_log`] checks both).
    pub fn probabilities(self, scores: &[f32]) -> Vec<f64> {
        let best = argmax(scores);
        let (rest, top) = match self {
            Rule::Greedy => (0.0, 1.0),
            Rule::Epsilon(e) => {
                let spread = e / scores.len() as f64;
                (spread, (1.0 - e) + spread)
            }
        };
        (0..scores.len())
            .map(|j| if j == best { top } else { rest })
            .collect()
    }
}

/// The index of the highest score, the lowest index among ties.
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (j, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = j;
        }
    }
    best
}

/// Checks that the log's own action on every row is a candidate (the policy file must name every
/// action the log shows); the error names the log's file, line and column.
pub fn check_actions(log: &LogText, candidates: &Candidates) -> Result<()> {
    let c = candidates.columns[0];
    for (row, &line) in log.rows.iter().zip(&log.lines) {
        let action = row[c].trim();
        if candidates.position(action).is_none() {
            return Err(Error::Data {
                file: log.file.clone(),
                line: Some(line),
                column: Some(format!("{} {:?}", c + 1, candidates.names[0])),
                message: format!(
                    "the logged action {action:?} is not among the {} candidates",
                    candidates.actions.len()
                ),
            });
        }
    }
    Ok(())
}

/// The model's probability for output `task` of every candidate on every log row, row-major
/// `[rows, actions]`. Rows go to the GPU in batches of the predictor's max batch.
pub fn score_log(
    gpu: &Gpu,
    predictor: &mut Predictor,
    log: &LogText,
    candidates: &Candidates,
    task: usize,
) -> Result<Vec<f32>> {
    Ok(score_log_belief(gpu, predictor, log, candidates, task, false)?.0)
}

/// [`score_log`] and, with `belief` (UCB and Thompson rules), the uncertainty head's belief over
/// the same `[rows × actions]` substituted rows ([`Predictor::predict_belief`]; `None` for a
/// model without a head). The probabilities are the same bits either way.
pub fn score_log_belief(
    gpu: &Gpu,
    predictor: &mut Predictor,
    log: &LogText,
    candidates: &Candidates,
    task: usize,
    belief: bool,
) -> Result<(Vec<f32>, Option<Belief>)> {
    let tasks = predictor.tasks().len();
    if task >= tasks {
        return Err(Error::Config {
            file: "policy".into(),
            key: "task".into(),
            message: format!("output {task} of a model with {tasks} outputs"),
        });
    }
    let columns = RequestColumns::new(predictor.config(), predictor.schema());
    let actions = candidates.actions.len();
    let total = log.rows.len() * actions;
    let chunk = predictor.max_batch() as usize;
    let (mut scores, mut beliefs) = (Vec::with_capacity(total), None);
    let mut start = 0;
    while start < total {
        let end = (start + chunk).min(total);
        let mut batch = empty_batch(predictor.schema());
        for k in start..end {
            let (i, j) = (k / actions, k % actions);
            let mut fields = log.rows[i].clone();
            for (&c, v) in candidates.columns.iter().zip(&candidates.values[j]) {
                fields[c].clone_from(v);
            }
            append_rows(
                &columns,
                std::slice::from_ref(&fields),
                Shape::Batch,
                &mut batch,
            )
            .map_err(|e| substitution_error(log, candidates, i, j, e))?;
        }
        let encoded = predictor.encoder().encode(&batch, &log.file)?;
        let p = if belief {
            let (p, part) = predictor.predict_belief(gpu, &encoded)?;
            append_belief(&mut beliefs, part)?;
            p
        } else {
            predictor.predict(gpu, &encoded)?
        };
        check_finite(log, candidates, &p, tasks, task, start)?;
        scores.extend(p.chunks(tasks).map(|row| row[task]));
        start = end;
    }
    Ok((scores, beliefs))
}

/// A non-finite score of substituted row `start + n` is an error naming its log line.
fn check_finite(
    log: &LogText,
    candidates: &Candidates,
    p: &[f32],
    tasks: usize,
    task: usize,
    start: usize,
) -> Result<()> {
    let actions = candidates.actions.len();
    match p.chunks(tasks).position(|row| !row[task].is_finite()) {
        None => Ok(()),
        Some(n) => {
            let (i, j) = ((start + n) / actions, (start + n) % actions);
            let v = p[n * tasks + task];
            Err(Error::Data {
                file: log.file.clone(),
                line: Some(log.lines[i]),
                column: None,
                message: format!("the model scores action {} as {v}", candidates.actions[j]),
            })
        }
    }
}

fn substitution_error(
    log: &LogText,
    candidates: &Candidates,
    i: usize,
    j: usize,
    e: crate::serve::request::RequestError,
) -> Error {
    let e = e.to_string();
    let reason = e.strip_prefix("row 0, ").unwrap_or(&e);
    Error::Data {
        file: log.file.clone(),
        line: Some(log.lines[i]),
        column: None,
        message: format!("with candidate action {}: {reason}", candidates.actions[j]),
    }
}

/// Writes a `wgrec ope` table atomically: a header `<prefix><action>…` and one line per row of
/// `values` (row-major, `actions.len()` per row), each value in the shortest form that reads
/// back as the same number.
pub fn write_table<T: std::fmt::Display>(
    path: &Path,
    prefix: &str,
    actions: &[String],
    values: &[T],
) -> Result<()> {
    let io = |e: std::io::Error| Error::Output {
        file: path.to_path_buf(),
        message: e.to_string(),
    };
    crate::checkpoint::write_atomically(path, |tmp| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(tmp).map_err(io)?);
        let header: Vec<String> = actions.iter().map(|a| format!("{prefix}{a}")).collect();
        writeln!(w, "{}", header.join("\t")).map_err(io)?;
        for row in values.chunks(actions.len().max(1)) {
            let line: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            writeln!(w, "{}", line.join("\t")).map_err(io)?;
        }
        w.flush().map_err(io)?;
        w.get_ref().sync_all().map_err(io)?;
        Ok(())
    })
}

/// The policy's probabilities for every row of `scores` (`[rows, actions]`), row-major.
pub fn policy_table(rule: Rule, scores: &[f32], actions: usize) -> Vec<f64> {
    scores
        .chunks(actions)
        .flat_map(|row| rule.probabilities(row))
        .collect()
}
