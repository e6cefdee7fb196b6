//! The download half of `wgrec data fetch obd`: pip fetches obp 0.4.1's wheel into a scratch
//! folder (the only network access; never run by the tests), which [`super::convert`] then reads.

use super::{err, OBP};
use crate::Result;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ways pip is looked for, in order.
const PIP_COMMANDS: [(&str, &[&str]); 3] =
    [("python3", &["-m", "pip"]), ("pip3", &[]), ("pip", &[])];

/// Runs `pip download --no-deps --only-binary=:all: -d <scratch> obp==0.4.1` and returns the wheel;
/// `path` replaces the search `PATH` (tests simulate a machine without pip).
pub fn pip_download(scratch: &Path, path: Option<&str>) -> Result<PathBuf> {
    let mut tried = Vec::new();
    for (program, prefix) in PIP_COMMANDS {
        let shown = std::iter::once(program)
            .chain(prefix.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = Command::new(program);
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let out = command
            .args(prefix)
            .args(["download", "--no-deps", "--only-binary=:all:", "-d"])
            .arg(scratch)
            .arg(OBP)
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tried.push(format!("`{shown}` (not found)"));
                continue;
            }
            Err(e) => return Err(err(format!("cannot run `{shown}`: {e}"))),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("No module named pip") {
            tried.push(format!("`{shown}` (no pip module)"));
            continue;
        }
        if !out.status.success() {
            let tail: Vec<&str> = stderr
                .lines()
                .rev()
                .take(6)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(err(format!(
                "`{shown} download {OBP}` failed ({}; offline?):\n{}",
                out.status,
                tail.join("\n")
            )));
        }
        return find_wheel(scratch);
    }
    Err(err(format!(
        "pip is needed to download {OBP} (the wheel that ships the Open Bandit Dataset sample) but \
         none was found: tried {}. Install Python 3 with pip (Debian: apt-get install python3-pip) and retry",
        tried.join(", ")
    )))
}

fn find_wheel(scratch: &Path) -> Result<PathBuf> {
    let entries = fs::read_dir(scratch)
        .map_err(|e| err(format!("cannot list {}: {e}", scratch.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("obp-") && name.ends_with(".whl") {
            return Ok(entry.path());
        }
    }
    Err(err(format!(
        "pip reported success but left no obp wheel in {}",
        scratch.display()
    )))
}
