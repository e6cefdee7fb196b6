//! The memory check run before [`Graph::new`](super::Graph::new) allocates anything: the bytes of
//! every large buffer the graph will create, from the kernels' own size formulas
//! ([`StorageLayout::new`], [`ExpertSpec`], [`CrossSpec`], [`Bags::capacity_words`]), against the
//! device's limits (one binding, one buffer, the embedding storage's chunks) and the host's memory.
//! The bytes are the [`MemoryReport`]'s (`memory.rs`): the check is that statement compared with
//! the limits, so `wgrec plan` shows what was judged.
//!
//! Without it a model too large for the device failed deep inside wgpu (`tbe_forward: Validation
//! Error … binding 6 range … exceeds …`) or aborted on a host allocation; now it is one error that
//! names the config key to change, the bytes needed and the limit. A buffer that grows with the
//! batch is blamed on `train.batch_size` when one sample fits (with the largest batch that does),
//! otherwise on the width key that makes even one sample too large.

use super::memory::MemoryReport;
use super::sizes::Need;
use super::{FeatureShape, Optimizers};
use crate::config::{human_bytes, Expert as ExpertConfig, ModelConfig};
use crate::error::{Error, Result};
use crate::kernels::embedding::MAX_CHUNKS;

/// What the device and the host allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Largest storage binding (every kernel binds whole buffers).
    pub binding: u64,
    /// Largest buffer.
    pub buffer: u64,
    /// Host memory (`None` when unknown): it must hold every buffer when the device is the CPU
    /// (lavapipe), else the embedding tables, which the host stages for initialisation and
    /// checkpoints.
    pub host: Option<u64>,
    /// Whether the device's buffers live in host memory (a CPU adapter).
    pub buffers_on_host: bool,
}

impl MemoryLimits {
    /// The limits of `gpu`, and the host's physical memory where the OS says it.
    pub fn of(gpu: &crate::gpu::Gpu) -> Self {
        let l = gpu.limits();
        MemoryLimits {
            binding: l.max_storage_buffer_binding_size,
            buffer: l.max_buffer_size,
            host: host_memory(),
            buffers_on_host: gpu.info().device_type == wgpu::DeviceType::Cpu,
        }
    }

    /// The largest buffer a kernel binds whole: the binding and buffer limits' smaller.
    pub fn per_buffer(&self) -> u64 {
        self.binding.min(self.buffer)
    }
}

/// Physical memory from `/proc/meminfo` (Linux), else `None`.
fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses `config` when a buffer of its graph for `max_batch` samples, with `optimizers`' state,
/// exceeds `limits` (module docs). `shapes` are the data's table sizes, one per feature.
pub fn check_memory(
    config: &ModelConfig,
    shapes: &[FeatureShape],
    max_batch: u32,
    optimizers: &Optimizers,
    limits: &MemoryLimits,
) -> Result<()> {
    MemoryReport::new(config, shapes, max_batch, optimizers, limits.per_buffer()).check(limits)
}

impl MemoryReport {
    /// This statement compared with `limits`: the first limit it breaks, as an error naming the
    /// config key to change, the bytes needed and the limit (module docs).
    pub fn check(&self, limits: &MemoryLimits) -> Result<()> {
        self.check_storage()?;
        for n in &self.needs {
            if n.bytes > limits.per_buffer() {
                return Err(too_large(
                    n,
                    self.max_batch,
                    limits.per_buffer(),
                    "one buffer binding",
                ));
            }
        }
        let tables: u64 = self.tables.iter().map(|t| t.bytes()).sum();
        let device = self.buffers();
        let total = tables + if limits.buffers_on_host { device } else { 0 };
        if let Some(host) = limits.host.filter(|&h| total > h) {
            let n = self.needs.iter().max_by_key(|n| n.bytes * n.copies);
            let (key, what) = match n {
                Some(n) if limits.buffers_on_host && n.bytes * n.copies > tables => {
                    (n.key.clone(), n.what.clone())
                }
                _ => {
                    let t = self.largest_table();
                    let what = format!("the embedding tables, {:?}'s the largest", t.feature);
                    (t.key.clone(), what)
                }
            };
            return Err(Error::TooLarge {
                what: format!("the model's buffers together (the largest: {what})"),
                needed: human_bytes(total),
                limit: format!("{} of host memory", human_bytes(host)),
                hint: format!("lower {key}"),
                key,
            });
        }
        Ok(())
    }

    /// The largest table, the first of equals (the feature the user wrote first).
    fn largest_table(&self) -> &super::memory::TableMemory {
        (self.tables.iter().rev())
            .max_by_key(|t| t.bytes())
            .expect("a table")
    }

    /// Refuses tables the packing could not place (a TIM's matrices larger than one group: the
    /// packer's message names the sequence, the bytes and the limit), or a group past its chunks
    /// (a defect of the packer), naming the feature with the largest table.
    fn check_storage(&self) -> Result<()> {
        if let Some(refusal) = &self.refusal {
            return Err(Error::Graph(refusal.clone()));
        }
        let Some(group) = self.groups.iter().find(|g| !g.fits()) else {
            return Ok(());
        };
        let largest = self.largest_table();
        Err(Error::TooLarge {
            key: largest.key.clone(),
            what: format!(
                "the embedding tables with their optimizer state ({:?}: {} rows × {} floats in \
                 each of {} tables)",
                largest.feature, largest.rows, largest.width, self.model_tables
            ),
            needed: human_bytes(group.bytes),
            limit: format!(
                "{} ({MAX_CHUNKS} chunks of {} a kernel binds)",
                human_bytes(group.limit),
                human_bytes(group.chunk_bytes)
            ),
            hint: "fewer rows (hash_rows, min_count), a smaller model.dim or fewer model.tables"
                .into(),
        })
    }
}

fn too_large(n: &Need, batch: u32, limit: u64, what_limit: &str) -> Error {
    let fixed = n.bytes - n.per_sample * batch as u64;
    let one = fixed + n.per_sample;
    let (key, hint) = if n.per_sample > 0 && one <= limit {
        let fits = (limit - fixed) / n.per_sample;
        (
            "train.batch_size".to_string(),
            format!("lower it from {batch}: at most {fits} samples fit"),
        )
    } else {
        (n.key.clone(), format!("lower {}", n.key))
    };
    Error::TooLarge {
        key,
        what: n.what.clone(),
        needed: human_bytes(n.bytes),
        limit: format!("{} ({what_limit})", human_bytes(limit)),
        hint,
    }
}

/// Floats per row of table `m`: `dim`, times the groups of a GwPFM expert (as the graph builds it).
pub(super) fn table_width(config: &ModelConfig, m: u32) -> u32 {
    match config.expert(m) {
        ExpertConfig::Gwpfm { blocks } => config.dim_of(m) * blocks.len().max(1) as u32,
        _ => config.dim_of(m),
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
