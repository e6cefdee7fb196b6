//! Serving snapshots: the folders a streaming trainer publishes for `wgrec serve` to pick up.
//!
//! A publish folder holds `snapshot-<version, 20 digits>/` folders, each a complete model as a
//! [`Predictor`](crate::serve::Predictor) reads it (`config.toml`, `schema.toml`, `encoder/` and
//! [`MODEL_FILE`]). The zero-padded version makes the names sort like the numbers.
//!
//! Why a folder rename: a snapshot is several files that must be read together (weights from one
//! version and vocabularies from another score garbage). [`publish`] writes them into a hidden
//! temporary folder, fsyncs every file, renames the folder into place and fsyncs the publish
//! folder, so a reader that lists the folder sees a snapshot whole or not at all. A crash leaves
//! at most a `.tmp-snapshot-*` folder, which [`latest`] ignores and the next [`publish`] of that
//! version removes. Old snapshots are removed after the new one is in place (keep the newest
//! `keep`); a reader that loses a snapshot under it gets "not found" and looks again.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The name prefix of a snapshot folder.
pub const SNAPSHOT_PREFIX: &str = "snapshot-";
/// The weights file of a snapshot (weights, BatchNorm statistics; no optimizer state).
pub const MODEL_FILE: &str = "model.safetensors";
/// The name prefix of a snapshot being written.
const TEMPORARY_PREFIX: &str = ".tmp-snapshot-";

fn io_error(path: &Path, doing: &str, e: std::io::Error) -> Error {
    Error::run_folder(path, format!("{doing}: {e}"))
}

/// The folder name of snapshot `version`.
fn snapshot_name(version: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{version:020}")
}

/// The version a folder name stands for (only the exact 20-digit form counts).
fn parse_version(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SNAPSHOT_PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Writes snapshot `<dir>/snapshot-<version, 20 digits>`: `write` fills a temporary folder
/// `<dir>/.tmp-snapshot-<version>` (a leftover one from a crash is removed first); every file in it
/// is fsynced, the folder is renamed into place and `dir` fsynced; then only the newest `keep`
/// (≥ 1) snapshots are kept (older ones removed; a removal that fails is reported, not fatal).
/// Returns the snapshot's path. A snapshot that exists already with this version is an error.
pub fn publish(
    dir: &Path,
    version: u64,
    keep: usize,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    if keep == 0 {
        return Err(Error::run_folder(dir, "keep must be at least 1 snapshot"));
    }
    let target = dir.join(snapshot_name(version));
    if target.exists() {
        return Err(Error::run_folder(
            dir,
            format!("snapshot {} exists already", target.display()),
        ));
    }
    fs::create_dir_all(dir).map_err(|e| io_error(dir, "creating the publish folder", e))?;
    let temporary = dir.join(format!("{TEMPORARY_PREFIX}{version:020}"));
    if temporary.exists() {
        fs::remove_dir_all(&temporary)
            .map_err(|e| io_error(&temporary, "removing a leftover temporary snapshot", e))?;
    }
    fs::create_dir(&temporary)
        .map_err(|e| io_error(&temporary, "creating the temporary snapshot", e))?;
    let filled = write(&temporary).and_then(|()| sync_tree(&temporary));
    if let Err(e) = filled {
        let _ = fs::remove_dir_all(&temporary);
        return Err(e);
    }
    fs::rename(&temporary, &target).map_err(|e| {
        let _ = fs::remove_dir_all(&temporary);
        io_error(&target, "renaming the temporary snapshot into place", e)
    })?;
    sync_dir(dir)?;
    for (path, e) in prune(dir, keep)? {
        eprintln!(
            "warning: could not remove old snapshot {}: {e}",
            path.display()
        );
    }
    Ok(target)
}

/// Fsyncs every file and folder under `root` (the folders too: their entries must reach disk).
fn sync_tree(root: &Path) -> Result<()> {
    let entries = fs::read_dir(root).map_err(|e| io_error(root, "listing", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(root, "listing", e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io_error(&path, "stat", e))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_error(&path, "fsync", e))?;
        }
    }
    sync_dir(root)
}

/// Fsyncs folder `dir` (see [`crate::checkpoint::fsync_directory`]).
fn sync_dir(dir: &Path) -> Result<()> {
    crate::checkpoint::fsync_directory(dir).map_err(|e| io_error(dir, "fsync of the folder", e))
}

/// The complete snapshots of `dir`, oldest first.
fn snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = fs::read_dir(dir).map_err(|e| io_error(dir, "listing the publish folder", e))?;
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let version = parse_version(e.file_name().to_str()?)?;
            Some((version, e.path()))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Removes all but the newest `keep` snapshots; returns the removals that failed.
fn prune(dir: &Path, keep: usize) -> Result<Vec<(PathBuf, std::io::Error)>> {
    let all = snapshots(dir)?;
    let old = all.len().saturating_sub(keep);
    Ok(all
        .into_iter()
        .take(old)
        .filter_map(|(_, path)| fs::remove_dir_all(&path).err().map(|e| (path, e)))
        .collect())
}

/// The newest complete snapshot (version, path) of a publish folder; temporaries and other names
/// are ignored.
pub fn latest(dir: &Path) -> Result<Option<(u64, PathBuf)>> {
    Ok(snapshots(dir)?.pop())
}

/// Whether `dir` holds snapshots (a publish folder) rather than being a run folder.
pub fn is_publish_folder(dir: &Path) -> bool {
    if super::is_run_folder(dir) {
        return false;
    }
    fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            parse_version(&name).is_some() || name.starts_with(TEMPORARY_PREFIX)
        })
    })
}

/// The version of a snapshot folder (`…/snapshot-<version>`), `None` for any other folder.
pub fn snapshot_version(dir: &Path) -> Option<u64> {
    parse_version(dir.file_name()?.to_str()?)
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
