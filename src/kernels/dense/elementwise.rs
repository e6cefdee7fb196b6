//! Launchers of `elementwise.wgsl`: the glue between the graph's ops. [`Relu`] applies a ReLU in
//! place on a table-batched tensor and masks its gradient in place (the per-table projection's
//! `ReLU(BN(·))`, where BatchNorm has no fused activation); [`CopyColumns`] moves a
//! `[tables, rows, cols]` block between two strided layouts (TIM's output into its field of the
//! experts' input, and the field's gradient back). One dispatch each, all tables at once.

use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{rows_field, storage_usage, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup (the WGSL `WG` override).
pub const ELEMENTWISE_WG: u32 = 64;

/// Mirrors `ElementwiseParams` in `elementwise.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ElementwiseParams {
    /// Tables.
    pub tables: u32,
    /// Rows of this step.
    pub rows: u32,
    /// Columns per row.
    pub cols: u32,
    /// Floats between rows of the source.
    pub src_ld: u32,
    /// First float of the source block.
    pub src_at: u32,
    /// Floats between tables of the source.
    pub src_stride: u32,
    /// Floats between rows of the destination.
    pub dst_ld: u32,
    /// First float of the destination block.
    pub dst_at: u32,
    /// Floats between tables of the destination.
    pub dst_stride: u32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 3],
}

rows_field!(ElementwiseParams);

const BINDINGS: &[Access] = &[Access::Read, Access::ReadWrite, Access::Uniform];

/// `y = max(y, 0)` in place.
pub const RELU_INPLACE: Kernel = Kernel::new(shaders::ELEMENTWISE, "relu_inplace", BINDINGS);
/// `g = g · (y > 0)` in place.
pub const RELU_GRAD_INPLACE: Kernel =
    Kernel::new(shaders::ELEMENTWISE, "relu_grad_inplace", BINDINGS);
/// A strided block copy.
pub const COPY_COLUMNS: Kernel = Kernel::new(shaders::ELEMENTWISE, "copy_columns", BINDINGS);

/// A strided `[tables, rows, cols]` block: element `(t, r, j)` at `at + t·stride + r·ld + j`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// First float.
    pub at: u64,
    /// Floats between rows (≥ cols).
    pub ld: u64,
    /// Floats between tables.
    pub stride: u64,
}

impl Block {
    /// The contiguous `[tables, rows_cap, cols]` layout.
    pub fn dense(rows_cap: u32, cols: u32) -> Self {
        Block {
            at: 0,
            ld: cols as u64,
            stride: rows_cap as u64 * cols as u64,
        }
    }

    fn extent(&self, tables: u32, rows: u32, cols: u32) -> u64 {
        if tables == 0 || rows == 0 || cols == 0 {
            return self.at;
        }
        self.at + (tables as u64 - 1) * self.stride + (rows as u64 - 1) * self.ld + cols as u64
    }
}

fn u32_of(kernel: &'static str, what: &str, v: u64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::kernel(kernel, format!("{what} = {v} exceeds u32")))
}

/// One prepared elementwise op; rows change per step with [`set_rows`](Self::set_rows).
struct Elementwise {
    launch: Launch,
    uniform: Uniform<ElementwiseParams>,
    params: ElementwiseParams,
    rows_cap: u32,
    kernel: &'static str,
}

impl Elementwise {
    #[allow(clippy::too_many_arguments)]
    fn new(
        gpu: &Gpu,
        k: &Kernel,
        tables: u32,
        rows_cap: u32,
        cols: u32,
        a: Option<(&wgpu::Buffer, Block)>,
        b: (&wgpu::Buffer, Block),
    ) -> Result<Self> {
        let name = k.entry;
        // relu_inplace reads nothing from `a`: a placeholder keeps the bind group layout.
        let placeholder;
        let a = match a {
            Some(a) => a,
            None => {
                placeholder = gpu.buffer("elementwise unused", 16, storage_usage());
                (&placeholder, Block::dense(rows_cap, cols))
            }
        };
        let checked: &[(&str, (&wgpu::Buffer, Block))] = if k.entry == RELU_INPLACE.entry {
            &[("destination", b)]
        } else {
            &[("source", a), ("destination", b)]
        };
        for &(what, (buf, block)) in checked {
            if block.ld < cols as u64 || (tables > 1 && block.stride < block.ld * rows_cap as u64) {
                return Err(Error::kernel(
                    name,
                    format!(
                        "{what}: rows of {} floats and tables {} apart overlap a {rows_cap}×{cols} block",
                        block.ld, block.stride
                    ),
                ));
            }
            let need = block.extent(tables, rows_cap, cols);
            u32_of(name, &format!("{what} extent"), need)?;
            check_len(name, what, buf, need)?;
        }
        let elems = tables as u64 * rows_cap as u64 * cols as u64;
        u32_of(name, "tables × rows × cols", elems)?;
        let params = ElementwiseParams {
            tables,
            rows: rows_cap,
            cols,
            src_ld: a.1.ld as u32,
            src_at: a.1.at as u32,
            src_stride: a.1.stride as u32,
            dst_ld: b.1.ld as u32,
            dst_at: b.1.at as u32,
            dst_stride: b.1.stride as u32,
            _pad: [0; 3],
        };
        let uniform = Uniform::new(gpu, "elementwise params", &params);
        let pipeline = gpu.pipeline(k, &[("WG", ELEMENTWISE_WG as f64)])?;
        let grid = workgroups(&params);
        let launch = Launch::new(gpu, &pipeline, &[a.0, b.0, uniform.buffer()], grid)?;
        Ok(Elementwise {
            launch,
            uniform,
            params,
            rows_cap,
            kernel: name,
        })
    }

    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.uniform
            .set_rows(gpu, self.kernel, &mut self.params, rows, self.rows_cap)?;
        self.launch.set_grid(workgroups(&self.params));
        Ok(())
    }

    fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}

/// The grid over this step's elements: at least one workgroup, so the dispatch count does not
/// depend on the batch.
fn workgroups(p: &ElementwiseParams) -> Grid {
    let elems = p.tables as u64 * p.rows as u64 * p.cols as u64;
    Grid::Folded(elems.div_ceil(ELEMENTWISE_WG as u64).max(1) as u32)
}

/// ReLU in place over a dense `[tables, rows_cap, cols]` tensor, and its backward in place over the
/// gradient (masked by the ReLU's own output).
pub struct Relu {
    forward: Elementwise,
    backward: Elementwise,
}

impl Relu {
    /// `y` is the tensor activated in place, `grad` its gradient (masked in place).
    pub fn new(
        gpu: &Gpu,
        tables: u32,
        rows_cap: u32,
        cols: u32,
        y: &wgpu::Buffer,
        grad: &wgpu::Buffer,
    ) -> Result<Self> {
        let dense = Block::dense(rows_cap, cols);
        let forward =
            Elementwise::new(gpu, &RELU_INPLACE, tables, rows_cap, cols, None, (y, dense))?;
        let backward = Elementwise::new(
            gpu,
            &RELU_GRAD_INPLACE,
            tables,
            rows_cap,
            cols,
            Some((y, dense)),
            (grad, dense),
        )?;
        Ok(Relu { forward, backward })
    }

    /// Sets the rows of the next runs (≤ rows_cap).
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.forward.set_rows(gpu, rows)?;
        self.backward.set_rows(gpu, rows)
    }

    /// Records `y = max(y, 0)`.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.forward.record(gpu, pass);
    }

    /// Records `grad = grad · (y > 0)`.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.backward.record(gpu, pass);
    }
}

/// A prepared strided block copy `dst[block] = src[block]`.
pub struct CopyColumns {
    launch: Elementwise,
}

impl CopyColumns {
    /// Copies `[tables, rows, cols]` from `src` laid out as `from` to `dst` laid out as `to`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        tables: u32,
        rows_cap: u32,
        cols: u32,
        src: &wgpu::Buffer,
        from: Block,
        dst: &wgpu::Buffer,
        to: Block,
    ) -> Result<Self> {
        Ok(CopyColumns {
            launch: Elementwise::new(
                gpu,
                &COPY_COLUMNS,
                tables,
                rows_cap,
                cols,
                Some((src, from)),
                (dst, to),
            )?,
        })
    }

    /// Sets the rows of the next runs (≤ rows_cap).
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.launch.set_rows(gpu, rows)
    }

    /// Records the copy.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}
