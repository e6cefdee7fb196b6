//! Task entanglement (METHODS.md §3). Placeholder until the entanglement section lands.

use std::path::Path;

use serde::Serialize;

use super::Subject;
use crate::error::Result;
use crate::gpu::Gpu;

/// Gate usage and comparable-sample AUCs.
#[derive(Debug, Clone, Serialize)]
pub struct Entanglement {}

/// Measures `subject`'s embeddings, writing figures into `out`.
pub fn analyze(_gpu: &Gpu, _subject: &mut Subject, _out: &Path) -> Result<Option<Entanglement>> {
    Ok(None)
}

impl Entanglement {
    /// This section of `report.md`.
    pub fn markdown(&self) -> String {
        String::new()
    }
}
