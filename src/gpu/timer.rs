//! GPU timestamps around compute passes, where the adapter has `TIMESTAMP_QUERY`. Benches use them
//! to report device time beside wall time; the per-layer profiler (`graph::profile`) gives each
//! (layer, phase) of a training step its own pass and reads every pair back at once.
//!
//! Only pass-boundary timestamps (`ComputePassDescriptor::timestamp_writes`), never the
//! `TIMESTAMP_QUERY_INSIDE_*` features: those are missing on many adapters, and a pass boundary is
//! where a timestamp means "the work before it is done" on every backend.

use super::Gpu;
use crate::error::{Error, Result};

/// Most passes one timer holds: wgpu's limit of 4096 queries per query set, two per pass.
pub const MAX_TIMED_PASSES: u32 = 2048;

/// Begin/end timestamp pairs for `passes` compute passes: one query set of `2 · passes` entries,
/// one resolve, one read-back.
pub struct PassTimer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    passes: u32,
    period_ns: f64,
}

impl PassTimer {
    /// A timer for one pass, or `None` when the device cannot write timestamps.
    pub fn new(gpu: &Gpu) -> Option<Self> {
        Self::with_passes(gpu, 1).ok().flatten()
    }

    /// A timer for `passes` passes (1 to `MAX_TIMED_PASSES`), or `None` when the device cannot
    /// write timestamps.
    pub fn with_passes(gpu: &Gpu, passes: u32) -> Result<Option<Self>> {
        if !gpu.has_timestamps() {
            return Ok(None);
        }
        if passes == 0 || passes > MAX_TIMED_PASSES {
            return Err(Error::Gpu {
                context: "timing passes".into(),
                message: format!("{passes} passes: a timer holds 1 to {MAX_TIMED_PASSES}"),
            });
        }
        let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass timer"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * passes,
        });
        let resolve = gpu.buffer(
            "pass timer resolve",
            16 * passes as u64,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        );
        Ok(Some(PassTimer {
            queries,
            resolve,
            passes,
            period_ns: gpu.queue.get_timestamp_period() as f64,
        }))
    }

    /// The timestamp writes of the first pass, for a `ComputePassDescriptor`.
    pub fn writes(&self) -> wgpu::ComputePassTimestampWrites<'_> {
        self.writes_of(0, true, true)
    }

    /// The timestamp writes of pass `i`: its beginning (`begin`) and/or its end (`end`). A span
    /// that is not one pass (buffer copies between passes) takes the beginning of an empty pass
    /// before it and the end of one after it.
    pub fn writes_of(
        &self,
        i: u32,
        begin: bool,
        end: bool,
    ) -> wgpu::ComputePassTimestampWrites<'_> {
        debug_assert!(i < self.passes);
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: begin.then_some(2 * i),
            end_of_pass_write_index: end.then_some(2 * i + 1),
        }
    }

    /// Records the resolve of every timestamp; call after the last timed pass ends.
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.queries, 0..2 * self.passes, &self.resolve, 0);
    }

    /// Nanoseconds between the two timestamps of the first pass of the last submit.
    pub fn elapsed_ns(&self, gpu: &Gpu) -> Result<f64> {
        Ok(self.all_elapsed_ns(gpu)?[0])
    }

    /// Nanoseconds between each pass's two timestamps, in pass order (one read-back).
    pub fn all_elapsed_ns(&self, gpu: &Gpu) -> Result<Vec<f64>> {
        let ticks: Vec<u64> = gpu.read(&self.resolve, 0, 2 * self.passes as u64)?;
        Ok((ticks.chunks_exact(2))
            .map(|t| t[1].saturating_sub(t[0]) as f64 * self.period_ns)
            .collect())
    }
}
