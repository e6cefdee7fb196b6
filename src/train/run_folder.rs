//! The run folder (`train --out`): the files a run owns, who may write them and when.
//!
//! A run folder is written by one process at a time, and only once everything that can fail
//! before training (model file, schema, encoder fit, graph build, resume checks) has succeeded:
//! a `train` that fails early leaves a finished run exactly as it was, so `eval` and `predict`
//! on it still work. The writer holds an exclusive lock (`flock`-style, through std's
//! `File::try_lock`) on the file `lock` for the run's life; the operating system releases it when
//! the process ends, however it ends, so a killed run never leaves a stale lock. The file holds
//! the holder's description (pid, host, start time) for the refusal message, and is removed when
//! the run ends normally.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::checkpoint::{remove_leftover_temporaries, Checkpoint};
use crate::config::ModelConfig;
use crate::data::encode::Encoder;
use crate::error::{Error, Result};

/// Copy of the model file.
pub const CONFIG_FILE: &str = "config.toml";
/// Copy of the data folder's schema.
pub const SCHEMA_FILE: &str = "schema.toml";
/// The fitted encoder (vocabularies, numeric fits).
pub const ENCODER_DIR: &str = "encoder";
/// The absolute path of the data folder the run trained on (read by `eval`).
pub const DATA_FILE: &str = "data-path.txt";
/// The checkpoint of the best validation AUC.
pub const BEST: &str = "best.safetensors";
/// The checkpoint of the last epoch (what `--resume` continues).
pub const LAST: &str = "last.safetensors";
/// Wall-clock timings per epoch (see [`super::timings`]); kept out of the checkpoints so that two
/// identical runs give identical checkpoint files.
pub const TIMINGS: &str = "timings.json";
/// The writer's lock, holding its description.
pub const LOCK: &str = "lock";

/// Files written atomically, whose temporaries a killed write may leave behind.
const ATOMIC_FILES: [&str; 3] = [BEST, LAST, TIMINGS];

/// Refuses to start a new run in a folder that holds one (a best or last checkpoint) unless
/// `overwrite` is set. Reads only.
pub fn check_fresh(dir: &Path, overwrite: bool) -> Result<()> {
    let held: Vec<&str> = [BEST, LAST]
        .into_iter()
        .filter(|f| dir.join(f).exists())
        .collect();
    if held.is_empty() || overwrite {
        return Ok(());
    }
    Err(Error::run_folder(
        dir,
        format!(
            "holds a run ({}); pass --overwrite to replace it, --resume to continue it, or \
             choose another --out",
            held.join(", ")
        ),
    ))
}

/// A file's length and modification time: enough to see that another process replaced it.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let meta = fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// The last checkpoint a resume continues, read before the folder is locked.
pub struct Resume {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Its file's stamp when read, checked again under the lock.
    stamp: Stamp,
}

/// Reads the last checkpoint of the run in `dir` for `--resume` and refuses a model file that is
/// not the run's (compared as parsed, so comments and layout may differ). Reads only.
pub fn read_resume(dir: &Path, config: &ModelConfig, config_file: &str) -> Result<Resume> {
    let last = dir.join(LAST);
    let stamp = stamp(&last);
    if !last.is_file() {
        let message = "nothing to resume: no last checkpoint in the output folder";
        return Err(Error::checkpoint(&last, None, message));
    }
    let ckpt = Checkpoint::read(&last)?;
    let stored_file = format!("{} [{}]", last.display(), super::CONFIG_KEY);
    let stored = ModelConfig::parse(ckpt.metadata(super::CONFIG_KEY)?, &stored_file)?;
    if stored != *config {
        return Err(Error::run_folder(
            dir,
            format!(
                "--resume with {config_file}, which differs from the model the run was trained \
                 with (stored in {}); resume with the run's own {CONFIG_FILE} or train into \
                 another --out",
                last.display()
            ),
        ));
    }
    Ok(Resume {
        checkpoint: ckpt,
        stamp,
    })
}

/// Takes the run folder's lock, removes what interrupted writes left, then checks again under
/// the lock what was checked before it without writing: a resume's checkpoint is still the one
/// read (no other run wrote it meanwhile); a fresh run still replaces nothing it must not, and
/// clears the previous run's files when it may (`overwrite`). Returns the lock and the leftovers
/// removed.
pub fn claim(
    dir: &Path,
    resume: Option<&Resume>,
    overwrite: bool,
) -> Result<(RunLock, Vec<PathBuf>)> {
    let lock = RunLock::acquire(dir)?;
    let removed = remove_leftovers(dir)?;
    match resume {
        Some(r) if stamp(&dir.join(LAST)) != r.stamp => {
            let message = format!("{LAST} changed while this run was starting; start it again");
            return Err(Error::run_folder(dir, message));
        }
        Some(_) => {}
        None => {
            check_fresh(dir, overwrite)?;
            remove_previous_run(dir)?;
        }
    }
    Ok((lock, removed))
}

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

/// Removes what interrupted atomic writes left in `dir` and returns the files removed. Call it
/// only while holding the lock.
pub fn remove_leftovers(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for name in ATOMIC_FILES {
        removed.extend(remove_leftover_temporaries(&dir.join(name))?);
    }
    Ok(removed)
}

/// Removes the previous run's checkpoints, timings and encoder (`--overwrite`), so that no file
/// of the old model sits beside the new one's.
pub fn remove_previous_run(dir: &Path) -> Result<()> {
    let fail =
        |p: &Path, e: std::io::Error| Error::run_folder(dir, format!("{}: {e}", p.display()));
    for name in [BEST, LAST, TIMINGS] {
        let p = dir.join(name);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(&p, e)),
            _ => {}
        }
    }
    let encoder = dir.join(ENCODER_DIR);
    if encoder.is_dir() {
        fs::remove_dir_all(&encoder).map_err(|e| fail(&encoder, e))?;
    }
    Ok(())
}

/// Writes what a fresh run reads back later: the model file's text, the schema, the fitted
/// encoder and where the data came from.
pub fn write_inputs(
    dir: &Path,
    config_text: &str,
    schema_path: &Path,
    encoder: &Encoder,
    data: &Path,
) -> Result<()> {
    let fail =
        |p: &Path, e: std::io::Error| Error::run_folder(dir, format!("{}: {e}", p.display()));
    let config = dir.join(CONFIG_FILE);
    fs::write(&config, config_text).map_err(|e| fail(&config, e))?;
    let schema = dir.join(SCHEMA_FILE);
    fs::copy(schema_path, &schema).map_err(|e| fail(&schema, e))?;
    encoder.save(&dir.join(ENCODER_DIR))?;
    write_data_path(dir, data)
}

/// Records the data folder (absolute when it can be resolved) for `eval`.
pub fn write_data_path(dir: &Path, data: &Path) -> Result<()> {
    let abs = fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    let file = dir.join(DATA_FILE);
    fs::write(&file, abs.display().to_string())
        .map_err(|e| Error::run_folder(dir, format!("{}: {e}", file.display())))
}

/// Whether `dir` is a run folder: it holds a run's model copy or a checkpoint.
pub fn is_run_folder(dir: &Path) -> bool {
    if dir.join(CONFIG_FILE).is_file() && dir.join(ENCODER_DIR).is_dir() {
        return true;
    }
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
    })
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

    #[test]
    fn a_folder_holding_a_checkpoint_is_refused_without_overwrite() {
        let dir = scratch("fresh");
        check_fresh(&dir, false).expect("a missing folder is fresh");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(LAST), b"x").unwrap();
        let e = check_fresh(&dir, false)
            .expect_err("holds a run")
            .to_string();
        assert!(e.contains("--overwrite") && e.contains(LAST), "{e}");
        check_fresh(&dir, true).expect("overwrite allows it");
        let _ = fs::remove_dir_all(&dir);
    }
}
