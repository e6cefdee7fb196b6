//! Crash-safe file replacement: write a temporary file beside the target, fsync it, rename it over
//! the target, fsync the directory. A reader of the target sees the old file or the new one, whole;
//! a crash at any point leaves at most a leftover temporary (named `.<target>.tmp-<pid>-<n>`), which
//! [`remove_leftover_temporaries`] clears.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Distinguishes temporaries of concurrent writes within one process.
static NEXT_TEMPORARY: AtomicU64 = AtomicU64::new(0);

fn io_error(file: &Path, doing: &str, e: io::Error) -> Error {
    Error::checkpoint(file, None, format!("{doing}: {e}"))
}

/// The target's directory (`.` for a bare file name) and its file name.
fn split(target: &Path) -> Result<(PathBuf, String)> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::checkpoint(target, None, "the path has no UTF-8 file name"))?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_owned()))
}

fn temporary_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Replaces `target` with what `write` puts in the temporary path it is given, atomically and
/// durably. If `write` fails, the temporary is removed and `target` is untouched.
pub fn write_atomically(target: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let (dir, name) = split(target)?;
    let serial = NEXT_TEMPORARY.fetch_add(1, Ordering::Relaxed);
    let temporary = dir.join(format!(
        "{}{}-{serial}",
        temporary_prefix(&name),
        std::process::id()
    ));
    let result = write(&temporary).and_then(|()| {
        // Reopened for writing: Windows refuses to flush a read-only handle.
        let file = File::options()
            .write(true)
            .open(&temporary)
            .map_err(|e| io_error(&temporary, "reopening the temporary file", e))?;
        file.sync_all()
            .map_err(|e| io_error(&temporary, "fsync of the temporary file", e))
    });
    if let Err(e) = result {
        let _ = fs::remove_file(&temporary);
        return Err(e);
    }
    fs::rename(&temporary, target).map_err(|e| {
        let _ = fs::remove_file(&temporary);
        io_error(target, "renaming the temporary file over it", e)
    })?;
    sync_directory(&dir)
}

/// Makes the rename durable: the directory entry itself must reach the disk.
fn sync_directory(dir: &Path) -> Result<()> {
    fsync_directory(dir).map_err(|e| io_error(dir, "fsync of the directory", e))
}

/// Fsyncs folder `dir` so that renames and new entries in it survive a crash (serving snapshots,
/// which rename whole folders, need it too). Windows has no directory handles to fsync; NTFS
/// journals the rename, so it is a no-op there.
pub(crate) fn fsync_directory(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Deletes temporaries that interrupted writes of `target` left behind and returns their paths.
/// Call it only while no other process is writing `target` (e.g. when a run starts).
pub fn remove_leftover_temporaries(target: &Path) -> Result<Vec<PathBuf>> {
    let (dir, name) = split(target)?;
    let prefix = temporary_prefix(&name);
    let entries = fs::read_dir(&dir).map_err(|e| io_error(&dir, "listing the directory", e))?;
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(&dir, "listing the directory", e))?;
        let leftover = entry.file_name().to_str().is_some_and(|n| {
            n.strip_prefix(&prefix).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            })
        });
        if leftover {
            let path = entry.path();
            fs::remove_file(&path)
                .map_err(|e| io_error(&path, "removing a leftover temporary", e))?;
            removed.push(path);
        }
    }
    Ok(removed)
}
