//! `wgrec pretrain graphsage`: self-supervised GraphSAGE (Hamilton et al. 2017, unsupervised loss)
//! on the user–item click graph, writing an embedding per user and item node (METHODS.md §1.4:
//! the pre-trained embeddings whose cosine becomes the similarity feature).
//!
//! METHODS.md leaves depth, aggregator and loss open; the choices, each with its default:
//! - **Graph** ([`graph`], [`edges`]): one edge per training row (`positive`, the default: rows
//!   whose label — default the schema's first label column — is 1; `all`: every row), from
//!   `--data` and each `--extra` folder (same column names), deduplicated. Users and items are
//!   separate node spaces; the nodes are the ids that appear on an edge (a user with no click has
//!   no neighbourhood to embed). A seeded 10 % (`holdout`) of the edges is held out for
//!   link-prediction AUC and never trained on.
//! - **Model** ([`reference`]): learned input embeddings `x_v ∈ R^D`, two mean-aggregator layers
//!   `h¹ = ReLU(W¹ [x_v ‖ mean x_{S₁(v)}])`, `z = normalize(W² [h¹_v ‖ mean h¹_{S₂(v)}])`, no
//!   biases, hidden width D, ℓ2 normalisation with ε = 1e-12 under the root. Fan-outs
//!   (S₁, S₂) = (10, 5), uniform with replacement; a node with no neighbours aggregates zeros.
//!   Per batch each distinct layer-1 node is computed once with one S₁ draw (Hamilton's minibatch
//!   sets, [`sample`]). Init: `x ~ U(±0.1)`, W Glorot-uniform.
//! - **Loss**: per positive edge (u, i) with Q = 5 negatives drawn from item nodes by training
//!   degree^0.75 (word2vec's and GraphSAGE's unigram distortion),
//!   `ℓ = −log σ(z_uᵀz_i/τ) − Σ_q log σ(−z_uᵀz_{n_q}/τ)` (Hamilton's `Q·E_n` with Q samples),
//!   mean over the batch's edges; τ = 0.1 (the ℓ2-normalised scores lie in [−1, 1]; 1/τ lets σ
//!   reach near 0 and 1).
//! - **Optimisers**: Adam (β = 0.9, 0.999, ε = 1e-8, no decay) on W¹, W² and the embedding
//!   storage's sparse Adam on the touched rows of x, both at `lr` = 0.01; batches of 512 edges in a
//!   seeded shuffled order; 20 epochs (held-out AUC on MovieLens-100K still rises at 10, levels
//!   near 20; the whole run took 66 s on lavapipe with 2 shared cores).
//! - **Held-out AUC** ([`train`]): each held-out edge against one uniformly drawn unlinked item.
//! - **Output** ([`output`]): `z` of every node from a fresh seeded 2-hop sample after the last
//!   epoch, as `users` and `items` embedding files ([`crate::data::EmbeddingTable`]) and
//!   `pretrain.json`.
//!
//! The GPU path ([`gpu`]) runs the input gather and its sparse update through the table-batched
//! embedding kernels, the products through the GEMM, and the rest through `shaders/graphsage.wgsl`
//! ([`kernels`]); no float atomics and fixed summation orders, so a seed gives the same bits.

pub mod edges;
pub mod gpu;
pub mod graph;
pub mod kernels;
pub mod output;
pub mod reference;
pub mod sample;
pub mod synth;
#[cfg(test)]
mod tests;
pub mod train;

use crate::error::{Error, Result};

pub use edges::{EdgeColumns, EdgeList, EdgeRows, IdSpace};
pub use graph::Graph;
pub use sample::{Computation, Fanouts, Sampler};

/// Input-embedding lookups one batch may make (the buffers are sized by it: 2^24 lookups of
/// D = 32 are 2 GiB of gathered floats, past what a CPU driver holds comfortably).
pub const MAX_LOOKUPS: u64 = 1 << 24;

/// The hyper-parameters of a pre-training run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GraphSageConfig {
    /// Embedding width D (a multiple of 4: the embedding storage's rows are vec4s).
    pub dim: u32,
    /// Passes over the training edges.
    pub epochs: u32,
    /// S₁ (layer 1) and S₂ (layer 2).
    pub fanout_first: u32,
    /// S₂.
    pub fanout_second: u32,
    /// Negatives per edge (Q).
    pub negatives: u32,
    /// Edges per batch.
    pub batch: u32,
    /// Learning rate of both optimisers.
    pub lr: f32,
    /// Temperature τ of the scores.
    pub tau: f32,
    /// Seed of initialisation, split, sampling and order.
    pub seed: u64,
    /// Fraction of edges held out.
    pub holdout: f64,
}

impl Default for GraphSageConfig {
    fn default() -> Self {
        GraphSageConfig {
            dim: 32,
            epochs: 20,
            fanout_first: 10,
            fanout_second: 5,
            negatives: 5,
            batch: 512,
            lr: 0.01,
            tau: 0.1,
            seed: 1,
            holdout: 0.1,
        }
    }
}

impl GraphSageConfig {
    /// Checks every value; an error names the command-line flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| {
            Err(Error::Config {
                file: "wgrec pretrain graphsage".into(),
                key: key.into(),
                message,
            })
        };
        if self.dim == 0 || !self.dim.is_multiple_of(4) || self.dim > 1024 {
            return bad(
                "--dim",
                format!("{}: need a multiple of 4 in 4..=1024", self.dim),
            );
        }
        if self.epochs == 0 {
            return bad("--epochs", "need at least 1".into());
        }
        if !(1..=64).contains(&self.fanout_first) || !(1..=64).contains(&self.fanout_second) {
            return bad(
                "--fanouts",
                format!(
                    "{},{}: each in 1..=64",
                    self.fanout_first, self.fanout_second
                ),
            );
        }
        if self.negatives > 64 {
            return bad("--negatives", format!("{}: at most 64", self.negatives));
        }
        if !(1..=16384).contains(&self.batch) {
            return bad("--batch", format!("{}: need 1..=16384 edges", self.batch));
        }
        let lookups = self.batch as u64
            * (2 + self.negatives as u64)
            * (1 + self.fanout_second as u64)
            * (1 + self.fanout_first as u64);
        if lookups > MAX_LOOKUPS {
            return bad(
                "--batch",
                format!(
                    "{lookups} input lookups per batch (batch × (2 + negatives) × (1 + S₂) × (1 + S₁)); \
                     at most {MAX_LOOKUPS}: lower --batch, --negatives or --fanouts"
                ),
            );
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("--lr", format!("{}: need a finite value > 0", self.lr));
        }
        if !(self.tau.is_finite() && self.tau > 0.0) {
            return bad("--tau", format!("{}: need a finite value > 0", self.tau));
        }
        if !(0.0..1.0).contains(&self.holdout) {
            return bad(
                "--holdout",
                format!("{}: need a fraction in [0, 1)", self.holdout),
            );
        }
        Ok(())
    }

    /// The fan-outs.
    pub fn fanouts(&self) -> Fanouts {
        Fanouts {
            first: self.fanout_first,
            second: self.fanout_second,
        }
    }
}
