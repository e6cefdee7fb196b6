//! Downloading a wheel with pip: the bundled datasets ship inside PyPI wheels (MovieLens-100K in
//! recbole's, the Open Bandit Dataset's sample in obp's), so `wgrec data fetch` needs pip and the
//! network and nothing else. pip is looked for as `python3 -m pip`, then `pip3`, then `pip`; the
//! error when none works names each one tried and why.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ways pip is looked for, in order.
const PIP_COMMANDS: [(&str, &[&str]); 3] =
    [("python3", &["-m", "pip"]), ("pip3", &[]), ("pip", &[])];

/// A wheel to download.
#[derive(Debug, Clone, Copy)]
pub struct Wheel<'a> {
    /// The pip requirement, e.g. `recbole==1.2.1`.
    pub requirement: &'a str,
    /// How the wheel's file name starts, e.g. `recbole-`.
    pub file_prefix: &'a str,
    /// What it is for, in the message when pip is missing.
    pub carries: &'a str,
}

/// Runs `pip download --no-deps --only-binary=:all: -d <scratch> <requirement>` and returns the
/// wheel's path; `path` replaces the search `PATH` (tests simulate a machine without pip). The
/// error is a message for the caller's own error kind.
pub fn download(wheel: Wheel<'_>, scratch: &Path, path: Option<&str>) -> Result<PathBuf, String> {
    let mut tried = Vec::new();
    for (program, prefix) in PIP_COMMANDS {
        let shown = [program]
            .iter()
            .chain(prefix)
            .copied()
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
            .arg(wheel.requirement)
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tried.push(format!("`{shown}` (not found)"));
                continue;
            }
            Err(e) => return Err(format!("cannot run `{shown}`: {e}")),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("No module named pip") {
            tried.push(format!("`{shown}` (no pip module)"));
            continue;
        }
        if !out.status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "`{shown} download {}` failed ({}; offline?):\n{}",
                wheel.requirement,
                out.status,
                tail.join("\n")
            ));
        }
        return find_wheel(wheel, scratch);
    }
    Err(format!(
        "pip is needed to download {} ({}) but none was found: tried {}. Install Python 3 with pip \
         (Debian: apt-get install python3-pip) and retry",
        wheel.requirement,
        wheel.carries,
        tried.join(", ")
    ))
}

fn find_wheel(wheel: Wheel<'_>, scratch: &Path) -> Result<PathBuf, String> {
    let entries =
        fs::read_dir(scratch).map_err(|e| format!("cannot list {}: {e}", scratch.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(wheel.file_prefix) && name.ends_with(".whl") {
            return Ok(entry.path());
        }
    }
    Err(format!(
        "pip reported success but left no {} wheel in {}",
        wheel.requirement,
        scratch.display()
    ))
}
