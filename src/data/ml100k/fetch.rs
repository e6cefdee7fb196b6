//! Fetching the raw files: pip downloads recbole's wheel into a scratch folder, and the three
//! files are extracted from it into `<dir>/raw/`.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{err, RAW_FILES, RECBOLE, WHEEL_DIR};
use crate::Result;

/// Downloads the recbole wheel with pip into a scratch folder and extracts the three raw files into
/// `<dir>/raw/`, which it returns. Files already there are kept (the download happens once).
pub fn fetch(dir: &Path) -> Result<PathBuf> {
    let raw = dir.join("raw");
    if RAW_FILES.iter().all(|f| raw.join(f).is_file()) {
        return Ok(raw);
    }
    let scratch = dir.join(".download");
    fs::create_dir_all(&scratch)
        .map_err(|e| err(format!("cannot create {}: {e}", scratch.display())))?;
    let result = pip_download(&scratch).and_then(|wheel| extract(&wheel, &raw));
    let _ = fs::remove_dir_all(&scratch);
    result.map(|()| raw)
}

/// The ways pip is looked for, in order.
const PIP_COMMANDS: [(&str, &[&str]); 3] =
    [("python3", &["-m", "pip"]), ("pip3", &[]), ("pip", &[])];

/// Runs `pip download --no-deps --only-binary=:all: -d <scratch> recbole==1.2.1` and returns the wheel.
fn pip_download(scratch: &Path) -> Result<PathBuf> {
    pip_download_with_path(scratch, None)
}

/// [`pip_download`] with the search `PATH` for pip replaced (tests simulate a machine without pip).
pub(super) fn pip_download_with_path<'a>(
    scratch: &Path,
    path: impl Into<Option<&'a str>>,
) -> Result<PathBuf> {
    let path = path.into();
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
            .arg(RECBOLE)
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
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(err(format!(
                "`{shown} download {RECBOLE}` failed ({}):\n{}",
                out.status,
                tail.join("\n")
            )));
        }
        return find_wheel(scratch);
    }
    Err(err(format!(
        "pip is needed to download {RECBOLE} (the wheel that ships the dataset) but none was found: \
         tried {}. Install Python 3 with pip (Debian: apt-get install python3-pip) and retry",
        tried.join(", ")
    )))
}

fn find_wheel(scratch: &Path) -> Result<PathBuf> {
    let entries = fs::read_dir(scratch)
        .map_err(|e| err(format!("cannot list {}: {e}", scratch.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("recbole-") && name.ends_with(".whl") {
            return Ok(entry.path());
        }
    }
    Err(err(format!(
        "pip reported success but left no recbole wheel in {}",
        scratch.display()
    )))
}

/// Extracts [`RAW_FILES`] from the wheel (a zip) into `raw`.
fn extract(wheel: &Path, raw: &Path) -> Result<()> {
    let file =
        File::open(wheel).map_err(|e| err(format!("cannot open {}: {e}", wheel.display())))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| err(format!("{} is not a zip: {e}", wheel.display())))?;
    fs::create_dir_all(raw).map_err(|e| err(format!("cannot create {}: {e}", raw.display())))?;
    for name in RAW_FILES {
        let inner = format!("{WHEEL_DIR}{name}");
        let mut entry = zip
            .by_name(&inner)
            .map_err(|e| err(format!("{} has no {inner}: {e}", wheel.display())))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("cannot read {inner} from {}: {e}", wheel.display())))?;
        write_atomically(&raw.join(name), &bytes)?;
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| err(format!("cannot write {}: {e}", path.display())))
}
