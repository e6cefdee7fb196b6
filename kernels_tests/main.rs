//! The kernel test binary (DESIGN.md §Testing): every kernel against a plain CPU reference with f64
//! accumulation, on seeded random inputs, with outputs poisoned (NaN) before each run.
//!
//! A missing GPU adapter fails these tests; nothing is skipped. On machines without a GPU install
//! lavapipe (`apt-get install mesa-vulkan-drivers`), as `.ci/run` does.

// The references index arrays the way the formulas in METHODS.md do; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

mod analyze_collapse;
mod analyze_gradients;
mod common;
mod content_simhash;
mod content_similarity;
mod dense_column_sum;
mod dense_combine;
mod dense_cross;
mod dense_dropout;
mod dense_elementwise;
mod dense_expert;
mod dense_gate;
mod dense_gemm;
mod dense_gemm_tiled;
mod dense_layernorm;
mod dense_mix;
mod dense_mix_reference;
mod dense_mlp;
mod dense_norm;
mod dense_optim;
mod dense_pairwise;
mod device;
mod embedding_f16;
mod embedding_forward;
mod embedding_parts;
mod embedding_props;
mod embedding_reference;
mod embedding_update;
mod embedding_variants;
mod fixtures;
mod graph;
mod graph_f16;
mod graph_gates;
mod graph_gradcheck;
mod graph_gradcheck_multitask;
mod graph_groups;
mod graph_memory;
mod graph_multitask;
mod graph_profile;
mod graph_reset;
mod graph_trajectory;
mod graph_trajectory_stem;
mod graph_uncertainty;
mod graph_variants;
mod graphsage;
mod loss;
mod loss_flag;
mod loss_missing;
mod loss_subgroup;
mod registry;
mod tim;
mod tim_mean;
mod tim_mean_reference;
mod tim_reference;
mod tim_subgroup;
mod train;
mod train_monitor;
mod train_multitask;
mod uncertainty;
