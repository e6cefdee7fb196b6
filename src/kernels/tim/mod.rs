//! TIM, the temporal interest module (METHODS.md §1.1): target-aware softmax attention over a
//! user's behaviour sequence, fused with the embedding gather, forward and backward.
//!
//! Use: describe the M table sets in a [`TimSpec`] (each: semantic tables such as item and
//! category, plus a temporal table whose row 0 is the target's bucket), all in one
//! [`EmbeddingStorage`](crate::kernels::embedding::EmbeddingStorage). Build a [`Tim`] over the
//! caller's `u` and `dL/du` buffers (`[M, max_batch, D]`) and a
//! [`TbeUpdate`](crate::kernels::embedding::TbeUpdate) over `tim.gather()` and `tim.row_grads()`.
//! Per batch: temporal ids from [`TemporalBuckets`]; `bags = tim.upload(batch)`; record the forward;
//! after dL/du is written, record the backward; upload `SparseUpdatePlan::build(tim.features(),
//! &bags)` and record the update. The behaviour rows are read in place, never copied to a
//! `[B, L, D]` buffer. docs/tim.md has the layouts.
//!
//! Sets without a temporal table (`TimSet::temporal = None`) make the TIM ablation instead,
//! [`TimPooling::Mean`]: u = (1/n) Σ_i Σ_k T_k[id_k(i)] over the semantic rows, no attention and no
//! target, through the same bags, gradient rows and update (docs/tim.md, "Mean pooling").

mod batch;
mod buckets;
mod launch;

pub use batch::{TimBatch, TimPooling, TimSet, TimSpec, MAX_DIM, MAX_FEATURES, MAX_LEN};
pub use buckets::TemporalBuckets;
pub use launch::{
    Tim, TimParams, TIM_BACKWARD, TIM_FORWARD, TIM_MEAN_BACKWARD, TIM_MEAN_FORWARD, TIM_WG,
    VARIANTS,
};
