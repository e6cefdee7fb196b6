//! Launcher of `column_sum` (in `shaders/gemm.wgsl`): the fixed-order bias gradient
//! `out[t, j] (= or +=) Σ_{i < rows} gate(X[t, i, j])`.
//!
//! Variants ([`Family::ColumnSum`], shape class `r{rows_cap}c{cols}` in power-of-two buckets):
//! `default`, one invocation per (column, table) walking the rows in order; `subgroup-64`,
//! `subgroup-128`, `subgroup-256` (`shaders/column_sum_subgroup.wgsl`), a workgroup of that many
//! invocations per (column, table) splitting the rows, reduced with subgroup shuffles, for GPUs
//! where `cols × tables` lanes leave the device idle. A subgroup variant is used only where its
//! workgroup size is a multiple of the adapter's largest subgroup size (its butterfly needs full
//! subgroups) and `cols` fits one grid dimension; otherwise the launcher takes the default.

use super::gemm::{gate_code, GateKind};
use super::matrix::{check_matrix, extent, fits};
use crate::error::{Error, Result};
use crate::gpu::{
    check_rows, size_class, storage_usage, Access, Family, Gpu, Grid, Kernel, Launch, Uniform,
    Variant,
};
use crate::shaders;

/// The column sum's variants ([`crate::gpu::variants`]); the first is the default path. The
/// subgroup ones set `WG`, the invocations sharing one column.
pub const VARIANTS: &[Variant] = &[
    Variant::DEFAULT,
    Variant {
        name: "subgroup-64",
        subgroups: true,
        constants: &[("WG", 64.0)],
    },
    Variant {
        name: "subgroup-128",
        subgroups: true,
        constants: &[("WG", 128.0)],
    },
    Variant {
        name: "subgroup-256",
        subgroups: true,
        constants: &[("WG", 256.0)],
    },
];

/// Invocations per workgroup of `column_sum`.
pub const COLUMN_SUM_WG: u32 = 64;

/// Mirrors `ColumnSumParams` in `gemm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ColumnSumParams {
    /// Rows summed (the current batch).
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Leading dimension of X.
    pub ld: u32,
    /// Per-table stride of X.
    pub stride: u32,
    /// Element offset of `out[0, 0]`.
    pub out_offset: u32,
    /// Elements between tables' rows of `out`.
    pub out_stride: u32,
    /// Element offset of `X[0, 0, 0]` (and of the gate's).
    pub in_offset: u32,
    /// Padding to 32 bytes.
    pub _pad: [u32; 1],
}

/// Where a column sum writes: `out[t, j]` at `offset + t · stride + j`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SumOutput {
    /// Element offset of `out[0, 0]`.
    pub offset: u64,
    /// Elements between tables (≥ cols).
    pub stride: u64,
}

/// The subgroup variants' kernel: one workgroup per (column, table); same bindings as
/// [`COLUMN_SUM`].
pub const COLUMN_SUM_SUBGROUP: Kernel = Kernel::new(
    shaders::COLUMN_SUM_SUBGROUP,
    "column_sum_subgroup",
    COLUMN_SUM_BINDINGS,
);

const COLUMN_SUM_BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::Uniform,
];

/// The column-sum kernel's description.
pub const COLUMN_SUM: Kernel = Kernel::new(shaders::GEMM, "column_sum", COLUMN_SUM_BINDINGS);

/// A prepared fixed-order column sum `out[t, j] (= or +=) Σ_{i < rows} gate(X[t, i, j])`: the bias
/// gradient. `X[t, i, j]` sits at `t · stride + i · ld + j`; the gate buffer has X's layout; `out`
/// is `[tables, cols]` contiguous. Rows are summed in ascending order by one invocation per
/// (column, table): the result's bits do not depend on the device's scheduling.
pub struct ColumnSum {
    launch: Launch,
    entry: &'static str,
    params: Uniform<ColumnSumParams>,
    base: ColumnSumParams,
    tables: u32,
    rows_cap: u32,
    x_size: u64,
    gate_size: Option<u64>,
    stride: u64,
}

impl ColumnSum {
    /// Validates the layout against the buffers at `rows_cap` and builds the pipeline. `gate_buf`
    /// is required iff `gate` is set. With `rows = 0` the sums are 0 (or `out` is left as it is when
    /// accumulating).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        tables: u32,
        rows_cap: u32,
        cols: u32,
        ld: u32,
        stride: u64,
        accumulate: bool,
        gate: Option<GateKind>,
        x: &wgpu::Buffer,
        gate_buf: Option<&wgpu::Buffer>,
        out: &wgpu::Buffer,
    ) -> Result<ColumnSum> {
        let out_layout = SumOutput {
            offset: 0,
            stride: cols as u64,
        };
        Self::new_at(
            gpu, tables, rows_cap, cols, ld, stride, accumulate, gate, x, gate_buf, out, out_layout,
        )
    }

    /// As [`ColumnSum::new`], writing `out[t, j]` at `out_layout.offset + t · out_layout.stride + j`
    /// (a bias gradient inside a model's flat gradient buffer, one layer of a stack).
    #[allow(clippy::too_many_arguments)]
    pub fn new_at(
        gpu: &Gpu,
        tables: u32,
        rows_cap: u32,
        cols: u32,
        ld: u32,
        stride: u64,
        accumulate: bool,
        gate: Option<GateKind>,
        x: &wgpu::Buffer,
        gate_buf: Option<&wgpu::Buffer>,
        out: &wgpu::Buffer,
        out_layout: SumOutput,
    ) -> Result<ColumnSum> {
        let name = COLUMN_SUM.entry;
        check_matrix(name, "X", x, 0, tables, stride, rows_cap, cols, ld)?;
        if tables > 1 && out_layout.stride < cols as u64 {
            return Err(Error::kernel(
                name,
                format!(
                    "out: per-table stride {} overlaps {cols} columns",
                    out_layout.stride
                ),
            ));
        }
        check_matrix(
            name,
            "out",
            out,
            out_layout.offset,
            tables,
            out_layout.stride,
            1,
            cols,
            cols,
        )?;
        if gate.is_some() != gate_buf.is_some() {
            return Err(Error::kernel(
                name,
                format!(
                    "gate {:?} but gate buffer given: {}",
                    gate,
                    gate_buf.is_some()
                ),
            ));
        }
        if let Some(g) = gate_buf {
            check_matrix(name, "gate", g, 0, tables, stride, rows_cap, cols, ld)?;
        }
        let (kernel, wg, grid) = kernel_for(gpu, tables, rows_cap, cols);
        let constants = [
            ("WG", wg as f64),
            ("ACCUMULATE", accumulate as u32 as f64),
            ("GATE", gate_code(gate)),
        ];
        let pipeline = gpu.pipeline(kernel, &constants)?;
        pipeline.check_grid(gpu, grid)?;
        let base = ColumnSumParams {
            rows: rows_cap,
            cols,
            ld,
            stride: fits(name, "stride", stride)?,
            out_offset: fits(name, "out offset", out_layout.offset)?,
            out_stride: fits(name, "out stride", out_layout.stride)?,
            in_offset: 0,
            _pad: [0; 1],
        };
        let params = Uniform::new(gpu, "column_sum params", &base);
        let dummy = gpu.buffer("column_sum unused gate", 16, storage_usage());
        let buffers = [x, gate_buf.unwrap_or(&dummy), out, params.buffer()];
        let launch = Launch::new(gpu, &pipeline, &buffers, Grid::Dims(grid))?;
        Ok(ColumnSum {
            launch,
            entry: kernel.entry,
            params,
            base,
            tables,
            rows_cap,
            x_size: x.size(),
            gate_size: gate_buf.map(|g| g.size()),
            stride,
        })
    }

    /// Reads X (and its gate) from element `offset` on: a group of tables inside a larger
    /// table-batched tensor. Checks that the buffers hold the shifted extent.
    pub fn with_input_offset(mut self, gpu: &Gpu, offset: u64) -> Result<Self> {
        let name = COLUMN_SUM.entry;
        let b = &self.base;
        let need = offset + extent(self.tables, self.stride, self.rows_cap, b.cols, b.ld);
        fits(name, "X extent", need)?;
        for (what, size) in [("X", Some(self.x_size)), ("gate", self.gate_size)] {
            if let Some(size) = size.filter(|&s| s < need * 4) {
                return Err(Error::kernel(
                    name,
                    format!(
                        "buffer {what} holds {size} bytes, {} needed from offset {offset}",
                        need * 4
                    ),
                ));
            }
        }
        self.base.in_offset = offset as u32;
        self.params.write(gpu, &self.base);
        Ok(self)
    }

    /// Sets the rows summed by the next runs (≤ `rows_cap`).
    pub fn set_rows(&self, gpu: &Gpu, rows: u32) -> Result<()> {
        check_rows(COLUMN_SUM.entry, rows, self.rows_cap)?;
        self.params
            .write(gpu, &ColumnSumParams { rows, ..self.base });
        Ok(())
    }

    /// The entry point it compiled: `column_sum`, or `column_sum_subgroup` for a subgroup variant
    /// that suits the device and shape.
    pub fn entry(&self) -> &'static str {
        self.entry
    }

    /// Records one dispatch over (columns, tables).
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}

/// The kernel, workgroup size and grid of the variant the device picks for this shape.
fn kernel_for(
    gpu: &Gpu,
    tables: u32,
    rows_cap: u32,
    cols: u32,
) -> (&'static Kernel, u32, [u32; 3]) {
    let class = format!("r{}c{}", size_class(rows_cap), size_class(cols));
    match subgroup_wg(gpu, gpu.variant(Family::ColumnSum, &class), cols) {
        Some(wg) => (&COLUMN_SUM_SUBGROUP, wg, [cols, tables, 1]),
        None => (
            &COLUMN_SUM,
            COLUMN_SUM_WG,
            [cols.div_ceil(COLUMN_SUM_WG), tables, 1],
        ),
    }
}

/// The workgroup size of `variant` if it is a subgroup variant that suits this device and shape:
/// its `WG` a multiple of the adapter's largest subgroup size (the butterfly needs full subgroups)
/// and one workgroup per column within a grid dimension. `None`: the default path.
fn subgroup_wg(gpu: &Gpu, variant: &Variant, cols: u32) -> Option<u32> {
    if !variant.subgroups {
        return None;
    }
    let wg = variant
        .constants
        .iter()
        .find(|(name, _)| *name == "WG")
        .map(|&(_, v)| v as u32)?;
    let largest = gpu.info().subgroup_max_size.max(1);
    (wg.is_multiple_of(largest) && cols <= gpu.limits().max_compute_workgroups_per_dimension)
        .then_some(wg)
}
