//! `wgrec eval` and `wgrec predict`: a trained run folder's model on files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Map, Value};
use wgrec::data::ReadOptions;
use wgrec::run::RunFolder;
use wgrec::serve::rank::FileRanking;
use wgrec::serve::Predictor;

use super::report::{metric_line, metrics_json};

/// `wgrec eval`.
pub fn eval(
    checkpoint: &Path,
    data: Option<PathBuf>,
    split: &str,
    json_out: bool,
    skip_bad_rows: bool,
) -> anyhow::Result<()> {
    let gpu = super::tune::gpu()?;
    let mut predictor = Predictor::load(&gpu, checkpoint)?;
    let file = eval_file(checkpoint, data, split)?;
    let tasks = predictor.metric_names();
    let options = ReadOptions {
        batch_rows: predictor.max_batch() as usize,
        skip_bad_rows,
        ..ReadOptions::default()
    };
    let (metrics, bad, spread) =
        predictor.evaluate_file_spread(&gpu, &file, options, SPREAD_BUCKETS)?;
    eprintln!(
        "{} ({}): {}",
        file.display(),
        predictor.checkpoint().display(),
        metric_line(&tasks, &metrics)
    );
    if bad > 0 {
        eprintln!("{bad} bad rows skipped");
    }
    for report in spread.iter().flatten() {
        eprint!("{}", spread_table(report));
    }
    if json_out {
        let mut out = Map::new();
        let prefix = metric_prefix(split, &file);
        metrics_json(prefix, &tasks, &metrics, &mut out);
        if let Some(spread) = &spread {
            out.insert(format!("{prefix}_uncertainty"), json!(spread));
        }
        out.insert("split".into(), json!(split));
        out.insert("adapter".into(), json!(gpu.describe()));
        out.insert("bad_rows".into(), json!(bad));
        println!("{}", Value::Object(out));
    }
    Ok(())
}

/// Buckets of the uncertainty heads' calibration table: quintiles of the spread.
const SPREAD_BUCKETS: usize = 5;

/// The calibration of an uncertainty head as a table: per spread bucket, the spread it predicted
/// and the gap it made (docs/explore.md says how to read it).
fn spread_table(report: &wgrec::metrics::SpreadReport) -> String {
    let mut t = format!(
        "uncertainty of {}: rows  sd(logit)  sd(p)     mean p    clicks    |gap|     se(gap)   rmse\n",
        report.output
    );
    for b in &report.buckets {
        t += &format!(
            "  {:>24} {:>9.4} {:>9.5} {:>9.5} {:>9.5} {:>9.5} {:>9.5} {:>9.5}\n",
            b.rows,
            b.mean_sd,
            b.mean_sd_probability,
            b.mean_p,
            b.positive_rate,
            b.error,
            b.standard_error,
            b.rmse
        );
    }
    t
}

/// The file `--split` names: a file path as given, or the split of `data` (by default the data
/// folder the run recorded).
fn eval_file(checkpoint: &Path, data: Option<PathBuf>, split: &str) -> anyhow::Result<PathBuf> {
    if Path::new(split).is_file() {
        return Ok(PathBuf::from(split));
    }
    match split {
        "train" | "valid" | "test" => {}
        other => {
            anyhow::bail!("--split {other:?}: train, valid, test or a file in the model's schema")
        }
    };
    let data = match data {
        Some(d) => d,
        None => {
            let recorded = RunFolder::new(checkpoint).data_path_file();
            PathBuf::from(std::fs::read_to_string(&recorded).with_context(|| {
                format!("no --data given and {} is unreadable", recorded.display())
            })?)
        }
    };
    Ok(wgrec::data::split_path(&data, split)?)
}

/// The prefix of `eval`'s JSON metrics: the split's name (`test_auc`, `valid_auc`,
/// `train_auc`), or `file` for a file given by path, whose role wgrec cannot know.
fn metric_prefix(split: &str, file: &Path) -> &'static str {
    match split {
        _ if Path::new(split) == file => "file",
        "train" => "train",
        "valid" => "valid",
        _ => "test",
    }
}

/// `wgrec predict` (ranked by a policy with `ranking`).
pub fn predict(
    checkpoint: &Path,
    input: &Path,
    output: &Path,
    skip_bad_rows: bool,
    ranking: Option<FileRanking>,
) -> anyhow::Result<()> {
    let gpu = super::tune::gpu()?;
    let mut predictor = Predictor::load(&gpu, checkpoint)?;
    let start = Instant::now();
    let (rows, bad) = match &ranking {
        None => predictor.predict_file(&gpu, input, output, skip_bad_rows)?,
        Some(r) => predictor.predict_file_ranked(&gpu, input, output, skip_bad_rows, r)?,
    };
    eprintln!(
        "{rows} rows scored into {} ({:.0} rows/s){}",
        output.display(),
        rows as f64 / start.elapsed().as_secs_f64().max(1e-9),
        if bad.count > 0 {
            format!("; {} bad rows skipped", bad.count)
        } else {
            String::new()
        }
    );
    Ok(())
}
