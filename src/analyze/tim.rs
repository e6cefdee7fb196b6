//! TIM correlation (METHODS.md §1.1). Placeholder until the TIM section lands.

use std::path::Path;

use serde::Serialize;

use super::Subject;
use crate::error::Result;
use crate::gpu::Gpu;

/// The data's MI map and the learned attention map.
#[derive(Debug, Clone, Serialize)]
pub struct TimCorrelation {}

/// Measures `subject`'s embeddings, writing figures into `out`.
pub fn analyze(_gpu: &Gpu, _subject: &mut Subject, _out: &Path) -> Result<Option<TimCorrelation>> {
    Ok(None)
}

impl TimCorrelation {
    /// This section of `report.md`.
    pub fn markdown(&self) -> String {
        String::new()
    }
}
