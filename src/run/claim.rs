//! Taking a run folder for a `train`: the checks made before anything is written (a fresh run
//! replaces no run without `--overwrite`; a resume continues the run's own model), and
//! [`RunFolder::claim`], which takes the lock and makes them again under it, then clears what
//! the previous run or an interrupted write left.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{RunFolder, RunLock, BEST, CONFIG_FILE, CONFIG_KEY, ENCODER_DIR, LAST, TIMINGS};
use crate::checkpoint::{remove_leftover_temporaries, Checkpoint};
use crate::config::ModelConfig;
use crate::error::{Error, Result};

/// Files written atomically, whose temporaries a killed write may leave behind.
const ATOMIC_FILES: [&str; 3] = [BEST, LAST, TIMINGS];

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

impl RunFolder {
    /// Refuses to start a new run in a folder that holds one (a best or last checkpoint) unless
    /// `overwrite` is set. Reads only.
    pub fn check_fresh(&self, overwrite: bool) -> Result<()> {
        let held: Vec<&str> = [BEST, LAST]
            .into_iter()
            .filter(|f| self.dir().join(f).exists())
            .collect();
        if held.is_empty() || overwrite {
            return Ok(());
        }
        Err(Error::run_folder(
            self.dir(),
            format!(
                "holds a run ({}); pass --overwrite to replace it, --resume to continue it, or \
                 choose another --out",
                held.join(", ")
            ),
        ))
    }

    /// Reads the last checkpoint of the run for `--resume` and refuses a model file that is not
    /// the run's (compared as parsed, so comments and layout may differ). Reads only.
    pub fn read_resume(&self, config: &ModelConfig, config_file: &str) -> Result<Resume> {
        let last = self.last();
        let stamp = stamp(&last);
        if !last.is_file() {
            let message = "nothing to resume: no last checkpoint in the output folder";
            return Err(Error::checkpoint(&last, None, message));
        }
        let ckpt = Checkpoint::read(&last)?;
        let stored_file = format!("{} [{CONFIG_KEY}]", last.display());
        let stored = ModelConfig::parse(ckpt.metadata(CONFIG_KEY)?, &stored_file)?;
        if stored != *config {
            return Err(Error::run_folder(
                self.dir(),
                format!(
                    "--resume with {config_file}, which differs from the model the run was \
                     trained with (stored in {}); resume with the run's own {CONFIG_FILE} or \
                     train into another --out",
                    last.display()
                ),
            ));
        }
        Ok(Resume {
            checkpoint: ckpt,
            stamp,
        })
    }

    /// Takes the lock, removes what interrupted writes left, then checks again under the lock
    /// what was checked before it without writing: a resume's checkpoint is still the one read
    /// (no other run wrote it meanwhile); a fresh run still replaces nothing it must not, and
    /// clears the previous run's files when it may (`overwrite`). Returns the lock and the
    /// leftovers removed.
    pub fn claim(
        &self,
        resume: Option<&Resume>,
        overwrite: bool,
    ) -> Result<(RunLock, Vec<PathBuf>)> {
        let lock = RunLock::acquire(self.dir())?;
        let removed = self.remove_leftovers()?;
        match resume {
            Some(r) if stamp(&self.last()) != r.stamp => {
                let message = format!("{LAST} changed while this run was starting; start it again");
                return Err(Error::run_folder(self.dir(), message));
            }
            Some(_) => {}
            None => {
                self.check_fresh(overwrite)?;
                self.remove_previous_run()?;
            }
        }
        Ok((lock, removed))
    }

    /// Removes what interrupted atomic writes left and returns the files removed. Call it only
    /// while holding the lock.
    fn remove_leftovers(&self) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for name in ATOMIC_FILES {
            removed.extend(remove_leftover_temporaries(&self.dir().join(name))?);
        }
        Ok(removed)
    }

    /// Removes the previous run's checkpoints, timings and encoder (`--overwrite`), so that no
    /// file of the old model sits beside the new one's.
    fn remove_previous_run(&self) -> Result<()> {
        for name in [BEST, LAST, TIMINGS] {
            let p = self.dir().join(name);
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(self.write_error(&p, e))
                }
                _ => {}
            }
        }
        let encoder = self.dir().join(ENCODER_DIR);
        if encoder.is_dir() {
            fs::remove_dir_all(&encoder).map_err(|e| self.write_error(&encoder, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_holding_a_checkpoint_is_refused_without_overwrite() {
        let dir =
            std::env::temp_dir().join(format!("wgrec-run-folder-fresh-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let folder = RunFolder::new(&dir);
        folder
            .check_fresh(false)
            .expect("a missing folder is fresh");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(LAST), b"x").unwrap();
        let e = folder
            .check_fresh(false)
            .expect_err("holds a run")
            .to_string();
        assert!(e.contains("--overwrite") && e.contains(LAST), "{e}");
        folder.check_fresh(true).expect("overwrite allows it");
        let _ = fs::remove_dir_all(&dir);
    }
}
