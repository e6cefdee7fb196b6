//! wgrec trains and serves industrial ads-ranking models on any GPU: every hot path is a WGSL compute
//! shader run through wgpu (Vulkan, Metal, DX12, GL; lavapipe on machines without a GPU).
//!
//! Layers, bottom to top: [`gpu`] (device, launches, readback), [`shaders`] (the WGSL registry),
//! [`kernels`] (launchers), [`config`] (the model file), [`model`] (what a model is, planned from
//! its config with no GPU), [`graph`] (the plan compiled into recorded layers), [`train`] (the
//! trainer and its policy: optimizers and learning-rate schedule), [`run`] (a run folder's files,
//! shared by train, serve and the CLI), [`serve`] (the Predictor). Lower layers never import higher
//! ones. [`bench`] times the kernel suite against the device's ceilings (`wgrec bench`).
//! Host-side, GPU-free: [`data`] (schemas, streaming table readers, vocabularies), [`metrics`] (AUC,
//! GAUC, logloss, calibration) and [`checkpoint`] (atomic safetensors files).
#![warn(missing_docs)]

pub mod analyze;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod explore;
pub mod gpu;
pub mod graph;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod online;
pub mod ope;
pub mod policy;
pub mod pretrain;
pub mod rng;
pub mod run;
pub mod serve;
pub mod shaders;
pub mod simulate;
pub mod train;
pub mod tune;

pub use error::{Error, Result};
pub use gpu::Gpu;
