//! Loss gradients on negatives and positives (METHODS.md §4.1). Placeholder.

use std::path::Path;

use serde::Serialize;

use super::Subject;
use crate::error::Result;
use crate::gpu::Gpu;

/// Mean gradient magnitudes.
#[derive(Debug, Clone, Serialize)]
pub struct Gradients {}

/// Measures `subject`'s embeddings, writing figures into `out`.
pub fn analyze(_gpu: &Gpu, _subject: &mut Subject, _out: &Path) -> Result<Gradients> {
    Ok(Gradients {})
}

impl Gradients {
    /// This section of `report.md`.
    pub fn markdown(&self) -> String {
        String::new()
    }
}
