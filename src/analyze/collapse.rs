//! Dimensional collapse (METHODS.md §2.1). Placeholder until the collapse section lands.

use std::path::Path;

use serde::Serialize;

use super::Subject;
use crate::error::Result;
use crate::gpu::Gpu;

/// Spectra and information abundance per field and table.
#[derive(Debug, Clone, Serialize)]
pub struct Collapse {}

/// Measures `subject`'s embeddings, writing figures into `out`.
pub fn analyze(_gpu: &Gpu, _subject: &mut Subject, _out: &Path) -> Result<Collapse> {
    Ok(Collapse {})
}

impl Collapse {
    /// This section of `report.md`.
    pub fn markdown(&self) -> String {
        String::new()
    }
}
