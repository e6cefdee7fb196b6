//! GPU timestamps around compute passes, where the adapter has `TIMESTAMP_QUERY`. Benches use them
//! to report device time beside wall time.

use super::Gpu;
use crate::error::Result;

/// A begin/end timestamp pair for one compute pass.
pub struct PassTimer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    period_ns: f64,
}

impl PassTimer {
    /// A timer, or `None` when the device cannot write timestamps.
    pub fn new(gpu: &Gpu) -> Option<Self> {
        if !gpu.has_timestamps() {
            return None;
        }
        let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass timer"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolve = gpu.buffer(
            "pass timer resolve",
            16,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        );
        Some(PassTimer {
            queries,
            resolve,
            period_ns: gpu.queue.get_timestamp_period() as f64,
        })
    }

    /// The timestamp writes to put in a `ComputePassDescriptor`.
    pub fn writes(&self) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }
    }

    /// Records the resolve of both timestamps; call after the pass ends.
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.queries, 0..2, &self.resolve, 0);
    }

    /// Nanoseconds between the two timestamps of the last submitted pass.
    pub fn elapsed_ns(&self, gpu: &Gpu) -> Result<f64> {
        let ticks: Vec<u64> = gpu.read(&self.resolve, 0, 2)?;
        Ok(ticks[1].saturating_sub(ticks[0]) as f64 * self.period_ns)
    }
}
