//! Where `predict` may write. The output is a path the user typed, and a slip there used to
//! destroy data: `--output run/best.safetensors` replaced the model with TSV, `--output` equal
//! to `--input` replaced the rows being read. Paths are compared canonicalised, so `./f`,
//! `dir/../f` and symlinks name the same file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::run::is_run_folder;

/// Refuses an `output` that is `input` or lies inside a run folder (`run`, the one the model
/// came from, or any folder holding a run's checkpoint or model copy).
pub fn check_output(output: &Path, input: &Path, run: &Path) -> Result<()> {
    let refuse = |message: String| Error::Output {
        file: output.to_path_buf(),
        message,
    };
    let Some(target) = resolve(output) else {
        return Ok(()); // Its folder does not exist: the write reports that.
    };
    if std::fs::canonicalize(input).is_ok_and(|i| i == target) {
        return Err(refuse(format!(
            "is the input file {}; write the predictions to another file",
            input.display()
        )));
    }
    let run = std::fs::canonicalize(run).unwrap_or_else(|_| run.to_path_buf());
    // The target itself too: `--output <run dir>` names the folder.
    let inside = target
        .ancestors()
        .find(|dir| *dir == run || is_run_folder(dir));
    if let Some(dir) = inside {
        return Err(refuse(format!(
            "is inside the run folder {}, which holds only what training wrote; write the \
             predictions outside it",
            dir.display()
        )));
    }
    Ok(())
}

/// The canonical path `output` names (following symlinks), whether or not the file exists yet.
fn resolve(output: &Path) -> Option<PathBuf> {
    if let Ok(path) = std::fs::canonicalize(output) {
        return Some(path);
    }
    let name = output.file_name()?;
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(parent).ok()?.join(name))
}
