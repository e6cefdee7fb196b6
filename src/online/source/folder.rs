//! A folder of time partitions: which data files there are, in which order they are read, and
//! which are done.
//!
//! The contract with producers: a partition appears whole. A producer writes it under a name that
//! is ignored (starting with `.`, or ending in `.tmp`) and renames it to its final name when it is
//! complete, so a visible data file (`*.tsv`, `*.csv`) never grows. Names order time: partitions
//! are read in byte-wise name order (`2026-12-06T05.tsv` before `2026-12-06T06.tsv`), each once,
//! each with its own header.
//!
//! A partition that appears while following, with a name that sorts *before* the one being read
//! (or already read), is a late partition: it is an error, not skipped. Skipping would drop its
//! rows silently, and reading it out of order would break the position, which holds one (file,
//! offset) pair and treats every name before it as done on resume. The operator decides: rename it
//! after the current one to have it read, or move it away.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The partitions of a folder, as far as they have been listed.
pub(crate) struct Partitions {
    dir: PathBuf,
    /// Every name listed so far.
    known: BTreeSet<String>,
    /// Names not read yet, in order.
    queue: VecDeque<String>,
    /// The partition read last (or being read).
    pub(crate) current: Option<String>,
}

/// Whether `name` is a data file rather than one being written or something else.
pub(crate) fn is_partition(name: &str) -> bool {
    !name.starts_with('.')
        && !name.ends_with(".tmp")
        && (name.ends_with(".tsv") || name.ends_with(".csv"))
}

fn list(dir: &Path) -> Result<Vec<String>> {
    let what = || format!("folder {}", dir.display());
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::data(what(), format!("cannot list: {e}")))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::data(what(), format!("cannot list: {e}")))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue; // not UTF-8: cannot be ordered by its name, and no producer writes one
        };
        if is_partition(&name) && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

impl Partitions {
    /// Lists `dir`; with `resume_at`, names before it are done and it is read next.
    pub(crate) fn open(dir: &Path, resume_at: Option<&str>) -> Result<Self> {
        let names = list(dir)?;
        if let Some(at) = resume_at {
            if !names.iter().any(|n| n == at) {
                return Err(Error::data(
                    dir.join(at).display(),
                    "the partition the stream stopped in is gone: restore it, or start afresh",
                ));
            }
        }
        Ok(Partitions {
            dir: dir.to_path_buf(),
            queue: names
                .iter()
                .filter(|n| resume_at.is_none_or(|at| n.as_str() >= at))
                .cloned()
                .collect(),
            known: names.into_iter().collect(),
            current: None,
        })
    }

    /// The folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Looks for new names; a new one before the current partition is a late partition.
    pub(crate) fn refresh(&mut self) -> Result<()> {
        for name in list(&self.dir)? {
            if self.known.contains(&name) {
                continue;
            }
            if let Some(current) = self.current.as_ref().filter(|c| name < **c) {
                return Err(Error::data(
                    self.dir.join(&name).display(),
                    format!(
                        "late partition: it sorts before {current:?}, which is already being read; \
                         rename it to sort after the partitions read, or move it away"
                    ),
                ));
            }
            self.queue.push_back(name.clone());
            self.known.insert(name);
        }
        self.queue.make_contiguous().sort();
        Ok(())
    }

    /// The next partition to read, made current.
    pub(crate) fn next(&mut self) -> Option<String> {
        let name = self.queue.pop_front()?;
        self.current = Some(name.clone());
        Some(name)
    }

    /// Whether any data file was seen at all.
    pub(crate) fn any(&self) -> bool {
        !self.known.is_empty()
    }
}
