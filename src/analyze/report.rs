//! `report.md` and `report.json`: the sections' numbers and figures, written into the report folder.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Report, Subject};
use crate::error::{Error, Result};

/// What was analysed.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectInfo {
    /// The run folder.
    pub run: PathBuf,
    /// The checkpoint whose weights were analysed.
    pub checkpoint: PathBuf,
    /// The data folder.
    pub data: PathBuf,
    /// `model.architecture`.
    pub architecture: String,
    /// Embedding tables (all sets).
    pub tables: usize,
    /// The model's outputs (tasks, or `task@scenario`).
    pub outputs: Vec<String>,
}

impl SubjectInfo {
    /// The facts of `subject`.
    pub fn of(subject: &Subject) -> Self {
        let config = subject.config();
        SubjectInfo {
            run: subject.run.clone(),
            checkpoint: subject.predictor.checkpoint().to_path_buf(),
            data: subject.data.clone(),
            architecture: config.model.architecture.name().to_string(),
            tables: config.table_count() as usize,
            outputs: subject.predictor.tasks(),
        }
    }
}

impl Report {
    /// `report.md`: a header naming the run, then each section present.
    pub fn markdown(&self) -> String {
        let s = &self.subject;
        let mut md = format!(
            "# wgrec analyze\n\nRun `{}`, checkpoint `{}`, data `{}`.\nArchitecture `{}`, {} embedding \
             table(s), outputs: {}.\n\n",
            s.run.display(),
            s.checkpoint.display(),
            s.data.display(),
            s.architecture,
            s.tables,
            s.outputs.join(", ")
        );
        md.push_str(&self.collapse.markdown());
        if let Some(tim) = &self.tim {
            md.push_str(&tim.markdown());
        }
        if let Some(e) = &self.entanglement {
            md.push_str(&e.markdown());
        }
        md.push_str(&self.gradients.markdown());
        md
    }

    /// Writes `report.md` and `report.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Output {
            file: dir.join("report.json"),
            message: e.to_string(),
        })?;
        for (name, text) in [("report.md", self.markdown()), ("report.json", json)] {
            let file = dir.join(name);
            std::fs::write(&file, text).map_err(|e| Error::Output {
                file,
                message: e.to_string(),
            })?;
        }
        Ok(())
    }
}
