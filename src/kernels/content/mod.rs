//! Content features on the GPU (METHODS.md §1.3, §1.4), both in `shaders/content.wgsl`:
//!
//! - [`simhash`]: HashID codes — random-hyperplane SimHash of content embeddings, `bits` sign bits
//!   of `w_jᵀx` packed into a `u32`, so that similar items get codes at a small Hamming distance.
//!   A one-off pass over an embedding file (upload, dispatch in chunks, read back), not a training
//!   step.
//! - [`similarity`]: the embedding-similarity feature — cosine (or dot) of a user's and an item's
//!   pre-trained vectors, bucketed by ascending boundaries into an MNS value, written straight into
//!   the embedding gather's batch words so it needs no host round trip in a step.
//!
//! Each kernel has a plain CPU reference with f64 accumulation beside its launcher
//! ([`simhash_reference`], [`similarity_reference`]); `kernels_tests/content_*.rs` hold the
//! comparisons and the rounding bands within which the f32 kernel may legitimately disagree.

pub mod simhash;
pub mod similarity;

pub use simhash::{hyperplanes, simhash_reference, SimHash, SimHashParams, SIMHASH};
pub use similarity::{
    bucket_of, similarity_reference, similarity_value_f64, Measure, SimilarityOp, SimilarityParams,
    SIMILARITY,
};

/// A row id with no vector (an id absent from the embedding file): the similarity kernel gives such
/// a sample the value 0.
pub const MISSING: u32 = u32::MAX;

/// Invocations per workgroup of both content kernels (the shader's `WG` override).
pub const CONTENT_WG: u32 = 64;

/// `Err` naming `kernel` unless `values` holds whole rows of `dim` finite numbers (`what` names the
/// input in the message, with the row and column of the first bad value).
pub(crate) fn check_rows_of(
    kernel: &'static str,
    what: &str,
    values: &[f32],
    dim: usize,
) -> crate::error::Result<usize> {
    use crate::error::Error;
    if dim == 0 {
        return Err(Error::kernel(kernel, format!("{what}: dim must be ≥ 1")));
    }
    if !values.len().is_multiple_of(dim) {
        return Err(Error::kernel(
            kernel,
            format!(
                "{what}: {} values are not whole rows of {dim}",
                values.len()
            ),
        ));
    }
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::kernel(
            kernel,
            format!(
                "{what}: row {} column {} is {} (values must be finite)",
                at / dim,
                at % dim,
                values[at]
            ),
        ));
    }
    Ok(values.len() / dim)
}
