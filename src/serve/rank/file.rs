//! `wgrec predict --policy`: a file's rows ranked as requests, with the policy's score, each
//! row's place in its request and, for a model with an uncertainty head, the belief's mean and
//! deviation (logits) beside the unchanged `p_<task>` columns.
//!
//! A request is a run of consecutive rows with the same text in `--request-column` (one row per
//! request without it): the unit one Thompson head or one ε coin is drawn for. One seeded
//! [`Ranker`] ranks the requests in file order (each request's outputs in turn), so a seed and a file give
//! the same output bit for bit. The file's scores are held in memory until it is ranked
//! (a request may straddle two GPU submissions): 4 bytes per row and output, and the belief's
//! values for a model with a head.

use std::io::Write;
use std::path::Path;

use super::{append_belief, rank_request, Ranked};
use crate::data::ReadOptions;
use crate::error::{Error, Result};
use crate::explore::{Belief, Policy, Ranker};
use crate::serve::Predictor;

/// How `wgrec predict` ranks.
#[derive(Debug, Clone)]
pub struct FileRanking {
    /// The policy.
    pub policy: Policy,
    /// The seed of its draws.
    pub seed: u64,
    /// The column whose runs of equal values are requests (`None`: each row is one).
    pub request_column: Option<String>,
    /// The column holding each row's bid (`None`: no bids; rank by the score alone).
    pub bid_column: Option<String>,
}

/// A scored file: probabilities `[rows, outputs]`, the belief, and each row's file line.
struct Scored {
    p: Vec<f32>,
    belief: Option<Belief>,
    lines: Vec<u64>,
}

impl Predictor {
    /// [`Self::predict_file`] with the rows ranked by `ranking` (see the module docs); the
    /// `p_<task>` columns are `predict_file`'s, bit for bit. Returns the rows scored and the bad
    /// rows skipped.
    pub fn predict_file_ranked(
        &mut self,
        gpu: &crate::gpu::Gpu,
        input: &Path,
        output: &Path,
        skip_bad_rows: bool,
        ranking: &FileRanking,
    ) -> Result<(u64, crate::data::BadRows)> {
        let run = self.checkpoint.parent().unwrap_or(Path::new("."));
        crate::serve::output::check_output(output, input, run)?;
        let head = self.config.uncertainty().is_some();
        if ranking.policy.needs_belief() && !head {
            return Err(Error::Config {
                file: self.checkpoint.display().to_string(),
                key: "--policy".into(),
                message: format!(
                    "{} needs a model with an uncertainty head ([[task]] uncertainty)",
                    ranking.policy
                ),
            });
        }
        let keys = (ranking.request_column.as_deref())
            .map(|c| column_texts(input, &self.schema, c, "--request-column"))
            .transpose()?;
        let bid_texts = (ranking.bid_column.as_deref())
            .map(|c| column_texts(input, &self.schema, c, "--bid-column"))
            .transpose()?;
        let options = ReadOptions {
            batch_rows: self.graph.max_batch() as usize,
            skip_bad_rows,
            ..ReadOptions::default()
        };
        let mut loader = self.loader(input, options)?;
        let scored = self.score_all(gpu, &mut loader, head)?;
        let bad = loader.finish()?;
        let requests = requests(&scored.lines, keys.as_deref());
        let bids = (bid_texts.as_deref())
            .map(|t| {
                bids(
                    input,
                    t,
                    &scored.lines,
                    ranking.bid_column.as_deref().unwrap_or(""),
                )
            })
            .transpose()?;
        let ranked = self.rank_file(&scored, &requests, ranking, bids.as_deref())?;
        crate::checkpoint::write_atomically(output, |tmp| {
            write_ranked(tmp, output, &self.tasks(), &scored, &ranked)
        })?;
        Ok((scored.lines.len() as u64, bad))
    }

    /// Every row of `loader` scored, with the belief when the model has a `head`.
    fn score_all(
        &mut self,
        gpu: &crate::gpu::Gpu,
        loader: &mut crate::data::loader::Loader<crate::graph::Prepared>,
        head: bool,
    ) -> Result<Scored> {
        let mut scored = Scored {
            p: Vec::new(),
            belief: None,
            lines: Vec::new(),
        };
        for prepared in loader.by_ref() {
            let prepared = prepared?;
            let (p, part) = if head {
                self.graph.predict_belief(gpu, &prepared)?
            } else {
                (self.graph.predict(gpu, &prepared)?, None)
            };
            scored.p.extend(p);
            append_belief(&mut scored.belief, part)?;
            scored.lines.extend(&prepared.lines);
        }
        Ok(scored)
    }

    /// Per output, the rankings of `requests` (row ranges), in file order.
    fn rank_file(
        &self,
        scored: &Scored,
        requests: &[std::ops::Range<usize>],
        ranking: &FileRanking,
        bids: Option<&[f32]>,
    ) -> Result<Vec<Vec<Ranked>>> {
        let outputs = self.config.outputs().len();
        let mut ranker = Ranker::new(ranking.policy, ranking.seed)?;
        let mut all = vec![Vec::with_capacity(requests.len()); outputs];
        for range in requests {
            let p = &scored.p[range.start * outputs..range.end * outputs];
            for (o, ranked) in all.iter_mut().enumerate() {
                let belief = scored.belief.as_ref().map(|b| (b, range.start));
                let bids = bids.map(|b| &b[range.clone()]);
                ranked.push(rank_request(&mut ranker, p, outputs, o, belief, bids)?);
            }
        }
        Ok(all)
    }
}

/// Each line's text in column `column` (by line number; rows are told apart by their first
/// line), read as the schema's delimiter splits it; `flag` names the option in errors.
fn column_texts(
    input: &Path,
    schema: &crate::data::Schema,
    column: &str,
    flag: &str,
) -> Result<Vec<String>> {
    let file = input.display().to_string();
    let c = schema.index(column).ok_or_else(|| Error::Config {
        file: file.clone(),
        key: flag.into(),
        message: format!("{column:?} is not a column of the model's schema"),
    })?;
    let text = std::fs::read_to_string(input)
        .map_err(|e| Error::data(&file, format!("cannot read: {e}")))?;
    let delimiter = char::from(schema.delimiter);
    Ok(text
        .lines()
        .map(|l| l.split(delimiter).nth(c).unwrap_or("").to_owned())
        .collect())
}

/// Each scored row's bid (rows by their file `lines`), parsed from the bid column's `texts`: a
/// finite number ≥ 0, else an error naming the file, line and column.
fn bids(input: &Path, texts: &[String], lines: &[u64], column: &str) -> Result<Vec<f32>> {
    lines
        .iter()
        .map(|&line| {
            let text = texts.get(line as usize - 1).map_or("", |t| t.trim());
            match text.parse::<f32>() {
                Ok(b) if b.is_finite() && b >= 0.0 => Ok(b),
                _ => Err(Error::Data {
                    file: input.display().to_string(),
                    line: Some(line),
                    column: Some(column.to_owned()),
                    message: format!("the bid {text:?} is not a finite number ≥ 0"),
                }),
            }
        })
        .collect()
}

/// Runs of consecutive rows with the same key (each row alone without keys).
fn requests(lines: &[u64], keys: Option<&[String]>) -> Vec<std::ops::Range<usize>> {
    let key = |r: usize| keys.and_then(|k| k.get(lines[r] as usize - 1));
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for r in 0..lines.len() {
        match out.last_mut() {
            Some(last) if keys.is_some() && key(last.start) == key(r) => last.end = r + 1,
            _ => out.push(r..r + 1),
        }
    }
    out
}

/// The columns: `p_<task>` as `predict_file` writes them, `score_<task>`, `rank_<task>` (the
/// row's place in its request, 0 first) and, for outputs with a head, `mean_<task>` and
/// `sd_<task>` (logits).
fn write_ranked(
    file: &Path,
    output: &Path,
    tasks: &[String],
    scored: &Scored,
    ranked: &[Vec<Ranked>],
) -> Result<()> {
    let io = |e: std::io::Error| Error::Output {
        file: output.to_path_buf(),
        message: e.to_string(),
    };
    let cells = row_cells(tasks, scored, ranked);
    let mut w = std::io::BufWriter::new(std::fs::File::create(file).map_err(io)?);
    writeln!(w, "{}", cells.header.join("\t")).map_err(io)?;
    for row in cells.rows {
        writeln!(w, "{}", row.join("\t")).map_err(io)?;
    }
    w.flush().map_err(io)?;
    w.get_ref().sync_all().map_err(io)
}

struct Cells {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// The header and every row's cells (see [`write_ranked`]).
fn row_cells(tasks: &[String], scored: &Scored, ranked: &[Vec<Ranked>]) -> Cells {
    let outputs = tasks.len();
    let mut header: Vec<String> = tasks.iter().map(|t| format!("p_{t}")).collect();
    let mut rows: Vec<Vec<String>> = (scored.p.chunks(outputs))
        .map(|r| r.iter().map(|v| v.to_string()).collect())
        .collect();
    for (o, task) in tasks.iter().enumerate() {
        let with_belief = ranked[o].first().is_some_and(|r| r.mean.is_some());
        header.extend([format!("score_{task}"), format!("rank_{task}")]);
        if with_belief {
            header.extend([format!("mean_{task}"), format!("sd_{task}")]);
        }
        let mut row = 0;
        for request in &ranked[o] {
            let mut place = vec![0; request.order.len()];
            request
                .order
                .iter()
                .enumerate()
                .for_each(|(k, &j)| place[j] = k);
            for j in 0..request.scores.len() {
                let cells = &mut rows[row + j];
                cells.extend([request.scores[j].to_string(), place[j].to_string()]);
                if let (Some(m), Some(s)) = (&request.mean, &request.sd) {
                    cells.extend([m[j].to_string(), s[j].to_string()]);
                }
            }
            row += request.scores.len();
        }
    }
    Cells { header, rows }
}
