//! Where a data folder keeps its splits: `train.*`, `valid.*` and `test.*` beside `schema.toml`,
//! each named `.tsv` or `.csv` (the extension says nothing about the delimiter, which is the
//! schema's; it only lets a user keep the name their tools gave a CSV export).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The splits of a data folder, in the order training reads them.
pub const SPLIT_NAMES: [&str; 3] = ["train", "valid", "test"];

/// The extensions a split file may have.
pub const SPLIT_EXTENSIONS: [&str; 2] = ["tsv", "csv"];

/// The rows of one split as a run read them: every row read, and those skipped as malformed
/// (with `skip_bad_rows`); the rest were used (trained on, or scored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SplitRows {
    /// Rows read, bad ones included.
    pub read: u64,
    /// Rows skipped as malformed.
    pub skipped: u64,
}

impl SplitRows {
    /// Rows used: read and not skipped.
    pub fn used(&self) -> u64 {
        self.read.saturating_sub(self.skipped)
    }

    /// Counts a pass over the file; a file read every epoch counts once (the largest pass), so
    /// its rows are not multiplied by the epochs.
    pub fn count_pass(&mut self, bad: &super::BadRows) {
        self.read = self.read.max(bad.rows_read);
        self.skipped = self.skipped.max(bad.count);
    }
}

/// The file of split `split` (`"train"`, `"valid"` or `"test"`) in `dir`: exactly one of
/// `split.tsv` and `split.csv` must exist; none or both is an [`Error::Dataset`] naming them.
pub fn split_path(dir: &Path, split: &str) -> Result<PathBuf> {
    let found: Vec<PathBuf> = SPLIT_EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{split}.{ext}")))
        .filter(|p| p.is_file())
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::Dataset(format!(
            "{}: missing {split}.tsv or {split}.csv (a data folder holds schema.toml, \
             train, valid and test as .tsv or .csv)",
            dir.display()
        ))),
        _ => Err(Error::Dataset(format!(
            "{}: both {split}.tsv and {split}.csv: keep one",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, files: &[&str]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wgrec-splits-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for f in files {
            std::fs::write(d.join(f), "").unwrap();
        }
        d
    }

    #[test]
    fn a_csv_split_is_found_beside_tsv_ones() {
        let d = folder("mixed", &["train.csv", "valid.tsv"]);
        assert_eq!(split_path(&d, "train").unwrap(), d.join("train.csv"));
        assert_eq!(split_path(&d, "valid").unwrap(), d.join("valid.tsv"));
        let e = split_path(&d, "test").unwrap_err().to_string();
        assert!(e.contains("missing test.tsv or test.csv"), "{e}");
    }

    #[test]
    fn a_split_with_both_extensions_is_ambiguous() {
        let d = folder("both", &["train.csv", "train.tsv"]);
        let e = split_path(&d, "train").unwrap_err().to_string();
        assert!(e.contains("both train.tsv and train.csv: keep one"), "{e}");
    }
}
