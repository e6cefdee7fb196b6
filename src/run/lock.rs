//! The run folder's lock: one writer per folder. The writer holds an exclusive lock
//! (`flock`-style, through std's `File::try_lock`) on the file `lock` for the run's life; the
//! operating system releases it when the process ends, however it ends, so a killed run never
//! leaves a stale lock. The file holds the holder's description (pid, host, start time) for the
//! refusal message, and is removed when the run ends normally.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::LOCK;
use crate::error::{Error, Result};

/// The exclusive right to write a run folder, released on drop (and by the OS if the process
/// dies).
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// Holds the lock while open.
    _file: File,
}

impl RunLock {
    /// Creates `dir` if needed and takes its lock, or fails naming the holder.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let fail = |what: &str, e: std::io::Error| Error::run_folder(dir, format!("{what}: {e}"));
        fs::create_dir_all(dir).map_err(|e| fail("cannot create it", e))?;
        let path = dir.join(LOCK);
        // A holder that ends removes the file it locked; a file opened just before that removal
        // is locked but no longer the folder's, so look again.
        for _ in 0..8 {
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| fail("cannot open its lock file", e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Err(held_by(dir, &mut file)),
                Err(fs::TryLockError::Error(e)) => return Err(fail("cannot lock it", e)),
            }
            if !still_linked(&file, &path) {
                continue;
            }
            describe_holder(&mut file).map_err(|e| fail("cannot write its lock file", e))?;
            return Ok(RunLock { path, _file: file });
        }
        Err(Error::run_folder(dir, "its lock file keeps being replaced"))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, so a waiting opener finds it unlinked and retries.
        let _ = fs::remove_file(&self.path);
    }
}

/// The refusal naming the process that holds the lock, as it described itself.
fn held_by(dir: &Path, file: &mut File) -> Error {
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    let holder = match holder.trim() {
        "" => "a process that is starting".to_string(),
        text => text.to_string(),
    };
    Error::run_folder(
        dir,
        format!(
            "in use by another training run ({holder}); wait for it to end or choose another --out"
        ),
    )
}

/// Whether `path` still names the locked `file` (not a removed and recreated one).
#[cfg(unix)]
fn still_linked(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Windows refuses to remove an open file, so the name cannot move under a holder.
#[cfg(not(unix))]
fn still_linked(_file: &File, _path: &Path) -> bool {
    true
}

fn describe_holder(file: &mut File) -> std::io::Result<()> {
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "an unknown host".into());
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = format!(
        "pid {} on {host}, started at unix time {since}\n",
        std::process::id()
    );
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wgrec-run-folder-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_lock_on_a_folder_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = scratch("lock");
        let first = RunLock::acquire(&dir).expect("a fresh folder locks");
        let e = RunLock::acquire(&dir).expect_err("held").to_string();
        let pid = format!("pid {}", std::process::id());
        assert!(
            e.contains("in use by another training run") && e.contains(&pid),
            "{e}"
        );
        drop(first);
        assert!(
            !dir.join(LOCK).exists(),
            "the lock file goes with its holder"
        );
        let again = RunLock::acquire(&dir).expect("free again");
        drop(again);
        let _ = fs::remove_dir_all(&dir);
    }
}
