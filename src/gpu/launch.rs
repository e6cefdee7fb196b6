//! The launcher scaffolding every kernel in `src/kernels/` is built from, written once:
//!
//! - a [`Launch`] is what one dispatch needs: a compiled pipeline, the bind group over the caller's
//!   buffers, and the workgroup [`Grid`]; `record(gpu, pass)` records it;
//! - a [`Uniform<T>`] is a params uniform typed by the `#[repr(C)]` struct that mirrors the WGSL
//!   one, so a launcher cannot write the wrong struct into it;
//! - [`Uniform::set_rows`] is the per-step batch rewrite that every dense launcher shares (checked
//!   against the capacity the buffers were built for, then written), over params that say where
//!   their row count lives ([`Rows`]).
//!
//! Launchers keep their own validation and their own params; what is left in them is what differs
//! from kernel to kernel.

use std::marker::PhantomData;
use std::sync::Arc;

use super::{Gpu, Pipeline};
use crate::error::{Error, Result};

/// The workgroups of one dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grid {
    /// A count folded into (x, y) past the per-dimension limit (the shader rebuilds the linear
    /// index); see [`Pipeline::dispatch`].
    Folded(u32),
    /// An explicit 3-D grid, each dimension within the limit; see [`Pipeline::dispatch_3d`].
    Dims([u32; 3]),
}

/// One dispatch ready to record: pipeline, bind group and grid.
pub struct Launch {
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    grid: Grid,
}

impl Launch {
    /// Binds `buffers` (in binding order) to `pipeline`; the grid can change later with
    /// [`Launch::set_grid`] (a grid that follows the batch).
    pub fn new(
        gpu: &Gpu,
        pipeline: &Arc<Pipeline>,
        buffers: &[&wgpu::Buffer],
        grid: Grid,
    ) -> Result<Self> {
        Ok(Launch {
            bind_group: pipeline.bind(gpu, buffers)?,
            pipeline: Arc::clone(pipeline),
            grid,
        })
    }

    /// Replaces the grid (for example after a new batch size).
    pub fn set_grid(&mut self, grid: Grid) {
        self.grid = grid;
    }

    /// Records the dispatch; nothing when the grid is empty.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.record_grid(gpu, pass, self.grid);
    }

    /// Records the dispatch over `grid` instead of the stored one: for launchers whose grid follows
    /// a per-step value they keep themselves.
    pub fn record_grid(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, grid: Grid) {
        match grid {
            Grid::Folded(n) => self.pipeline.dispatch(gpu, pass, &self.bind_group, n),
            Grid::Dims(dims) => self.pipeline.dispatch_3d(gpu, pass, &self.bind_group, dims),
        }
    }
}

/// A params struct with a per-step row count (the batch), rewritten by [`Uniform::set_rows`].
pub trait Rows: bytemuck::Pod {
    /// The row count the shader reads.
    fn rows_mut(&mut self) -> &mut u32;
}

/// A uniform buffer holding one `T`, the `#[repr(C)]` mirror of a WGSL params struct.
pub struct Uniform<T: bytemuck::Pod> {
    buffer: wgpu::Buffer,
    _params: PhantomData<T>,
}

impl<T: bytemuck::Pod> Uniform<T> {
    /// A new uniform holding `value`.
    pub fn new(gpu: &Gpu, label: &str, value: &T) -> Self {
        Uniform {
            buffer: gpu.uniform_from(label, value),
            _params: PhantomData,
        }
    }

    /// Writes `value`; it takes effect at the next submission.
    pub fn write(&self, gpu: &Gpu, value: &T) {
        gpu.queue
            .write_buffer(&self.buffer, 0, bytemuck::bytes_of(value));
    }

    /// The buffer, to bind.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

impl<T: Rows> Uniform<T> {
    /// Sets this step's batch in `params` and writes them: `Err` naming `kernel` (nothing written)
    /// unless `rows ≤ rows_cap`, the rows the buffers were built for.
    pub fn set_rows(
        &self,
        gpu: &Gpu,
        kernel: &'static str,
        params: &mut T,
        rows: u32,
        rows_cap: u32,
    ) -> Result<()> {
        check_rows(kernel, rows, rows_cap)?;
        *params.rows_mut() = rows;
        self.write(gpu, params);
        Ok(())
    }
}

/// `Err` naming `kernel` unless `rows ≤ rows_cap`.
pub fn check_rows(kernel: &'static str, rows: u32, rows_cap: u32) -> Result<()> {
    if rows > rows_cap {
        return Err(Error::kernel(
            kernel,
            format!("{rows} rows exceed the {rows_cap} the buffers were built for"),
        ));
    }
    Ok(())
}

/// Implements [`Rows`] for params structs whose row count is the field `rows`.
macro_rules! rows_field {
    ($($params:ty),* $(,)?) => {
        $(impl $crate::gpu::Rows for $params {
            fn rows_mut(&mut self) -> &mut u32 {
                &mut self.rows
            }
        })*
    };
}
pub(crate) use rows_field;
