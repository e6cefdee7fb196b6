//! `wgrec analyze`: a trained run's diagnostics into a report folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use wgrec::analyze::{analyze as run_sections, Subject};

/// `wgrec analyze`. The report is built in a temporary folder beside `out` and renamed into place
/// when complete, so a failed analysis leaves a previous report as it was.
pub fn analyze(
    checkpoint: &Path,
    data: Option<&Path>,
    out: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let out = out.unwrap_or_else(|| default_out(checkpoint));
    check_out(&out)?;
    let gpu = super::tune::gpu()?;
    let mut subject = Subject::load(&gpu, checkpoint, data)?;
    let tmp = temporary(&out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let report = match run_sections(&gpu, &mut subject, &tmp).and_then(|r| r.write(&tmp).map(|_| r))
    {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.into());
        }
    };
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("replacing {}", out.display()))?;
    }
    std::fs::rename(&tmp, &out)
        .with_context(|| format!("moving the report to {}", out.display()))?;
    eprintln!(
        "report written to {} ({:.1} s, {})",
        out.join("report.md").display(),
        start.elapsed().as_secs_f64(),
        gpu.describe()
    );
    if json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// `<run>-analysis` beside the run folder: analysing never writes into a run folder.
fn default_out(checkpoint: &Path) -> PathBuf {
    let name = checkpoint
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    checkpoint.with_file_name(format!("{name}-analysis"))
}

/// Refuses an `out` that is a run folder or a non-empty folder holding something other than a
/// report.
fn check_out(out: &Path) -> anyhow::Result<()> {
    if wgrec::run::is_run_folder(out) {
        anyhow::bail!(
            "--out {}: that is a run folder; the report goes elsewhere",
            out.display()
        );
    }
    if out.is_file() {
        anyhow::bail!("--out {}: a file, not a folder", out.display());
    }
    if out.is_dir() {
        let empty = std::fs::read_dir(out)?.next().is_none();
        if !empty && !out.join("report.json").is_file() {
            anyhow::bail!(
                "--out {}: a non-empty folder that holds no report (report.json); pick another",
                out.display()
            );
        }
    }
    Ok(())
}

fn temporary(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "analysis".into());
    out.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
