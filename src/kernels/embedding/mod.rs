//! Table-batched embedding kernels: the gather (`tbe_forward`, with pooling and MNS) and the fused
//! backward + sparse optimizer (`tbe_update`), over tables packed in chunked storage.
//!
//! Use: build an [`EmbeddingStorage`] for a set of tables, a [`FeatureSet`] naming which table each
//! feature reads and where its output goes, then a [`TbeForward`] and a [`TbeUpdate`]. Per batch:
//! `forward.upload(bags)`, record the forward; compute dL/d(output) into the gradient buffer;
//! `update.upload(SparseUpdatePlan::build(..))`, record the update.

mod bags;
mod convert;
mod features;
mod forward;
mod layout;
mod plan;
mod storage;
mod update;

pub use bags::Bags;
pub use features::{FeatureSet, FeatureSpec, MnsBase, Pooling};
pub use forward::{ForwardParams, TbeForward, FORWARD_WG, GATHER_VARIANTS, TBE_FORWARD};
pub use layout::{
    chunk_shift_of, row_stride4, storage_capacity4, Element, SparseOptimizer, StorageLayout,
    TablePlacement, TableSpec, MAX_CHUNKS, MAX_WIDTH, TABLE_WORDS,
};
pub use plan::SparseUpdatePlan;
pub use storage::EmbeddingStorage;
pub use update::{DecayMode, SparseStep, TbeUpdate, UpdateParams, TBE_UPDATE, UPDATE_VARIANTS};
