//! Batches encoded for the model (placeholder for the types; the encoder lands from its branch).

use crate::kernels::tim::TimBatch;

/// One batch encoded for the model: every id already a table row.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBatch {
    /// Rows.
    pub rows: usize,
    /// File line of each row.
    pub lines: Vec<u64>,
    /// One per config feature, config order.
    pub features: Vec<FeatureInput>,
    /// `[rows, tasks]` labels.
    pub labels: Vec<f32>,
    /// `[rows]` weights.
    pub weights: Option<Vec<f32>>,
    /// `[rows]` GAUC groups.
    pub groups: Option<Vec<u64>>,
}

/// One feature's inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureInput {
    /// CSR table rows (or MNS values) per sample.
    Ids {
        /// `rows + 1` offsets.
        offsets: Vec<u32>,
        /// Table rows.
        rows: Vec<u32>,
    },
    /// A sequence feature.
    Sequence(TimBatch),
}
