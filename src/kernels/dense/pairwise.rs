//! Launchers of `pairwise.wgsl`: the pairwise interaction experts FM, FwFM, GwPFM and IPNN
//! (METHODS.md §2.2), forward and backward, all tables in one dispatch per entry point.
//!
//! Layouts (per table `t`, slab start `t · rows_cap · ld`):
//! - `x`: `[tables, rows_cap, x_ld]`; the expert reads `in_cols = F·G·K` columns from `x_offset`,
//!   field `i`'s sub-embedding `g` at `x_offset + (i·G + g)·K` (G = 1 except GwPFM);
//! - `out`: `[tables, rows_cap, out_ld]`, written at columns `out_offset .. out_offset + out_cols`
//!   (`out_cols = K`, or `F(F−1)/2` pairs in row-major order (0,1), (0,2), … for IPNN);
//! - `r`: `[tables, F, F]` for FwFM (entries `i < j` used), `[tables, G, G]` for GwPFM, none else;
//! - `dout` has `out`'s layout, `dx` has `x`'s, `dr` has `r`'s.
//!
//! Backward overwrites `dx` on the expert's columns of the first `rows` rows (other columns and rows
//! are not touched) and overwrites all of `dr` (FwFM entries `i ≥ j` are 0), reduced over the batch
//! in a fixed order (no atomics).

use std::sync::Arc;

use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{
    grid, rows_field, storage_usage, Access, Gpu, Grid, Kernel, Launch, Pipeline, Uniform,
};
use crate::shaders;

/// Invocations per workgroup of the row-parallel entries (the WGSL `WG` override).
pub const PAIRWISE_WG: u32 = 64;

/// Mirrors `PairwiseParams` in `pairwise.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PairwiseParams {
    /// Rows this step (≤ `rows_cap`).
    pub rows: u32,
    /// Rows per table slab.
    pub rows_cap: u32,
    /// Fields F.
    pub fields: u32,
    /// Embedding width K.
    pub dim: u32,
    /// Field blocks G (1 unless GwPFM).
    pub blocks: u32,
    /// Columns read per row: F·G·K.
    pub in_cols: u32,
    /// Columns written per row.
    pub out_cols: u32,
    /// Entries of `r` per table.
    pub r_len: u32,
    /// Row stride of `x` and `dx`.
    pub x_ld: u32,
    /// First column of the expert's slice of `x`.
    pub x_offset: u32,
    /// Row stride of `out` and `dout`.
    pub out_ld: u32,
    /// First output column.
    pub out_offset: u32,
}

rows_field!(PairwiseParams);

const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::Uniform,
];

/// `pairwise_forward`: one invocation per (row, output column).
pub const PAIRWISE_FORWARD: Kernel = Kernel::new(shaders::PAIRWISE, "pairwise_forward", BINDINGS);

/// `pairwise_backward_x`: one invocation per (row, k) (per (row, input column) for IPNN).
pub const PAIRWISE_BACKWARD_X: Kernel =
    Kernel::new(shaders::PAIRWISE, "pairwise_backward_x", BINDINGS);

/// `pairwise_backward_r`: one workgroup per (entry of `r`, table).
pub const PAIRWISE_BACKWARD_R: Kernel =
    Kernel::new(shaders::PAIRWISE, "pairwise_backward_r", BINDINGS);

/// Which interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairwiseKind {
    /// φ = Σ_{i<j} v_i ⊙ v_j ∈ R^K.
    Fm,
    /// φ = Σ_{i<j} r_ij v_i ⊙ v_j, `r` learnable `[F, F]` per table.
    FwFm,
    /// φ = Σ_{i<j} R_{P(i)P(j)} v_{i,P(j)} ⊙ v_{j,P(i)}, `R` learnable `[G, G]` per table.
    GwPfm {
        /// Number of field blocks G.
        blocks: u32,
        /// P: the block of each field (F entries, each < G), shared by all tables.
        partition: Vec<u32>,
    },
    /// p_ij = ⟨v_i, v_j⟩ for i < j, F(F−1)/2 outputs.
    Ipnn,
}

impl PairwiseKind {
    fn code(&self) -> f64 {
        match self {
            PairwiseKind::Fm => 0.0,
            PairwiseKind::FwFm => 1.0,
            PairwiseKind::GwPfm { .. } => 2.0,
            PairwiseKind::Ipnn => 3.0,
        }
    }
}

/// Shapes and layouts of one pairwise expert over `tables` tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairwiseSpec {
    /// The interaction.
    pub kind: PairwiseKind,
    /// Embedding tables M (one expert each).
    pub tables: u32,
    /// Rows the buffers hold per table.
    pub rows_cap: u32,
    /// Fields F.
    pub fields: u32,
    /// Embedding width K (of each sub-embedding for GwPFM).
    pub dim: u32,
    /// Row stride of `x`.
    pub x_ld: u32,
    /// First column of the expert's slice of `x`.
    pub x_offset: u32,
    /// Row stride of `out`.
    pub out_ld: u32,
    /// First output column.
    pub out_offset: u32,
    /// Fused ReLU on the output.
    pub relu: bool,
}

impl PairwiseSpec {
    /// Field blocks G: 1 except GwPFM.
    pub fn blocks(&self) -> u32 {
        match &self.kind {
            PairwiseKind::GwPfm { blocks, .. } => *blocks,
            _ => 1,
        }
    }

    /// Columns of `x` the expert reads: F·G·K.
    pub fn in_cols(&self) -> u64 {
        self.fields as u64 * self.blocks() as u64 * self.dim as u64
    }

    /// Columns of `out` the expert writes: K, or F(F−1)/2 for IPNN.
    pub fn out_cols(&self) -> u64 {
        match self.kind {
            PairwiseKind::Ipnn => self.fields as u64 * (self.fields as u64).saturating_sub(1) / 2,
            _ => self.dim as u64,
        }
    }

    /// Entries of the learnable `r` per table: F² (FwFM), G² (GwPFM), 0 (FM, IPNN).
    pub fn r_len(&self) -> u64 {
        match self.kind {
            PairwiseKind::FwFm => self.fields as u64 * self.fields as u64,
            PairwiseKind::GwPfm { blocks, .. } => blocks as u64 * blocks as u64,
            _ => 0,
        }
    }

    /// The weights' initial values, `[tables, r_len]`: all ones (METHODS.md §2.2 initialises GwPFM's R
    /// to 1; FwFM likewise starts as plain FM). Empty for FM and IPNN.
    pub fn initial_weights(&self) -> Vec<f32> {
        vec![1.0; (self.tables as u64 * self.r_len()) as usize]
    }

    /// f32s `x` (and `dx`) must hold.
    pub fn x_len(&self) -> u64 {
        self.tables as u64 * self.rows_cap as u64 * self.x_ld as u64
    }

    /// f32s `out` (and `dout`) must hold.
    pub fn out_len(&self) -> u64 {
        self.tables as u64 * self.rows_cap as u64 * self.out_ld as u64
    }

    fn validate(&self, kernel: &'static str) -> Result<()> {
        let fail = |msg: String| Err(Error::kernel(kernel, msg));
        if self.tables == 0 || self.fields == 0 || self.dim == 0 {
            return fail(format!(
                "tables {}, fields {}, dim {}: each must be at least 1",
                self.tables, self.fields, self.dim
            ));
        }
        if let PairwiseKind::GwPfm { blocks, partition } = &self.kind {
            if *blocks == 0 || partition.len() != self.fields as usize {
                return fail(format!(
                    "GwPFM with {blocks} blocks and a partition of {} entries for {} fields",
                    partition.len(),
                    self.fields
                ));
            }
            if let Some((i, g)) = partition.iter().enumerate().find(|(_, &g)| g >= *blocks) {
                return fail(format!("field {i} in block {g}, only {blocks} blocks"));
            }
        }
        if self.x_offset as u64 + self.in_cols() > self.x_ld as u64 {
            return fail(format!(
                "x columns {}..{} exceed x_ld {}",
                self.x_offset,
                self.x_offset as u64 + self.in_cols(),
                self.x_ld
            ));
        }
        if self.out_offset as u64 + self.out_cols() > self.out_ld as u64 {
            return fail(format!(
                "out columns {}..{} exceed out_ld {}",
                self.out_offset,
                self.out_offset as u64 + self.out_cols(),
                self.out_ld
            ));
        }
        // Indices are u32 in the shader, and so is the linear invocation id, which the (x, y) fold
        // of the grid can push past the thread count by up to one row of 65,536 workgroups.
        let largest = self.x_len().max(self.out_len());
        let threads = self.rows_cap as u64 * self.in_cols().max(self.out_cols());
        if largest >= 1 << 32 || threads + PAIRWISE_WG as u64 * 65_536 >= 1 << 32 {
            return fail(format!(
                "{largest} elements per tensor or {threads} invocations per table exceed u32"
            ));
        }
        Ok(())
    }

    fn params(&self) -> PairwiseParams {
        PairwiseParams {
            // A new op runs at capacity until `set_rows`, like every dense op.
            rows: self.rows_cap,
            rows_cap: self.rows_cap,
            fields: self.fields,
            dim: self.dim,
            blocks: self.blocks(),
            in_cols: self.in_cols() as u32,
            out_cols: self.out_cols() as u32,
            r_len: self.r_len() as u32,
            x_ld: self.x_ld,
            x_offset: self.x_offset,
            out_ld: self.out_ld,
            out_offset: self.out_offset,
        }
    }
}

/// What both directions share: the spec, the params uniform, the partition and placeholder buffers.
struct Prepared {
    spec: PairwiseSpec,
    state: PairwiseParams,
    params: Uniform<PairwiseParams>,
    partition: wgpu::Buffer,
}

impl Prepared {
    fn new(gpu: &Gpu, spec: &PairwiseSpec, kernel: &'static str) -> Result<Self> {
        spec.validate(kernel)?;
        let partition = match &spec.kind {
            PairwiseKind::GwPfm { blocks, partition } => {
                gpu.storage_from("pairwise partition", &partition_words(*blocks, partition))
            }
            _ => placeholder(gpu, "pairwise partition (unused)"),
        };
        let state = spec.params();
        Ok(Prepared {
            spec: spec.clone(),
            state,
            params: Uniform::new(gpu, "pairwise params", &state),
            partition,
        })
    }

    fn pipeline(&self, gpu: &Gpu, kernel: &Kernel) -> Result<Arc<Pipeline>> {
        let relu = if self.spec.relu { 1.0 } else { 0.0 };
        gpu.pipeline(
            kernel,
            &[
                ("WG", PAIRWISE_WG as f64),
                ("KIND", self.spec.kind.code()),
                ("RELU", relu),
            ],
        )
    }

    fn set_rows(&mut self, gpu: &Gpu, kernel: &'static str, rows: u32) -> Result<()> {
        let cap = self.spec.rows_cap;
        self.params
            .set_rows(gpu, kernel, &mut self.state, rows, cap)
    }

    /// The (x, y, tables) grid covering `cols` columns of every row this step.
    fn row_grid(&self, gpu: &Gpu, cols: u32) -> Grid {
        let workgroups = (self.state.rows as u64 * cols as u64).div_ceil(PAIRWISE_WG as u64) as u32;
        let (x, y) = grid(
            workgroups,
            gpu.limits().max_compute_workgroups_per_dimension,
        );
        Grid::Dims([x, y, self.spec.tables])
    }

    /// Invocations per row of `pairwise_backward_x`: one per input column for IPNN, one per k
    /// (writing every field's gradient of that column) otherwise.
    fn backward_cols(&self) -> u32 {
        match self.spec.kind {
            PairwiseKind::Ipnn => self.state.in_cols,
            _ => self.state.dim,
        }
    }

    fn check_r(&self, kernel: &'static str, what: &str, r: Option<&wgpu::Buffer>) -> Result<()> {
        match (self.spec.r_len(), r) {
            (0, None) => Ok(()),
            (0, Some(_)) => Err(Error::kernel(
                kernel,
                format!("{what} given to {:?}, which has no weights", self.spec.kind),
            )),
            (_, None) => Err(Error::kernel(kernel, format!("{what} missing"))),
            (len, Some(b)) => check_len(kernel, what, b, self.spec.tables as u64 * len),
        }
    }
}

/// P, then each block's first position in the list of fields ordered by block, then that list
/// (the shader's `part`).
fn partition_words(blocks: u32, partition: &[u32]) -> Vec<u32> {
    let mut words = partition.to_vec();
    let mut members: Vec<u32> = (0..partition.len() as u32).collect();
    members.sort_by_key(|&i| (partition[i as usize], i));
    words.extend((0..=blocks).map(|g| partition.iter().filter(|&&p| p < g).count() as u32));
    words.extend(members);
    words
}

fn placeholder(gpu: &Gpu, label: &str) -> wgpu::Buffer {
    gpu.buffer(label, 16, storage_usage())
}

/// A prepared forward of one pairwise expert over all tables: one dispatch.
pub struct PairwiseForward {
    prepared: Prepared,
    launch: Launch,
}

impl PairwiseForward {
    /// Validates `spec` and the buffers (`r` only for FwFM and GwPFM) and builds the bind group.
    pub fn new(
        gpu: &Gpu,
        spec: &PairwiseSpec,
        x: &wgpu::Buffer,
        r: Option<&wgpu::Buffer>,
        out: &wgpu::Buffer,
    ) -> Result<Self> {
        let name = PAIRWISE_FORWARD.entry;
        let prepared = Prepared::new(gpu, spec, name)?;
        check_len(name, "x", x, spec.x_len())?;
        prepared.check_r(name, "r", r)?;
        check_len(name, "out", out, spec.out_len())?;
        let pipeline = prepared.pipeline(gpu, &PAIRWISE_FORWARD)?;
        pipeline.check_grid(gpu, [1, 1, spec.tables])?;
        let unused_r = placeholder(gpu, "pairwise r (unused)");
        let dout = placeholder(gpu, "pairwise dout (unused)");
        let dx = placeholder(gpu, "pairwise dx (unused)");
        let dr = placeholder(gpu, "pairwise dr (unused)");
        let buffers = [
            x,
            r.unwrap_or(&unused_r),
            &prepared.partition,
            &dout,
            out,
            &dx,
            &dr,
            prepared.params.buffer(),
        ];
        let grid = prepared.row_grid(gpu, prepared.state.out_cols);
        let launch = Launch::new(gpu, &pipeline, &buffers, grid)?;
        Ok(PairwiseForward { prepared, launch })
    }

    /// Sets the rows of the next steps (≤ `rows_cap`).
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.prepared.set_rows(gpu, PAIRWISE_FORWARD.entry, rows)?;
        let grid = self.prepared.row_grid(gpu, self.prepared.state.out_cols);
        self.launch.set_grid(grid);
        Ok(())
    }

    /// Records the forward: one dispatch (none when there are no rows or no output columns).
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}

/// The buffers of a backward pass.
pub struct PairwiseGradients<'a> {
    /// The forward's input.
    pub x: &'a wgpu::Buffer,
    /// The learnable weights (FwFM, GwPFM only).
    pub r: Option<&'a wgpu::Buffer>,
    /// The forward's stored output (only with `relu`: its sign masks `dout`).
    pub out: Option<&'a wgpu::Buffer>,
    /// Gradient of the loss with respect to `out`, in `out`'s layout.
    pub dout: &'a wgpu::Buffer,
    /// Gradient with respect to `x`, in `x`'s layout (expert's columns overwritten).
    pub dx: &'a wgpu::Buffer,
    /// Gradient with respect to `r` (FwFM, GwPFM only), overwritten.
    pub dr: Option<&'a wgpu::Buffer>,
}

/// A prepared backward of one pairwise expert over all tables: one dispatch for `dx`, one for `dr`
/// (FwFM and GwPFM), whatever the number of tables.
pub struct PairwiseBackward {
    prepared: Prepared,
    dx: Launch,
    dr: Option<Launch>,
}

impl PairwiseBackward {
    /// Validates `spec` and the buffers and builds the bind group.
    pub fn new(gpu: &Gpu, spec: &PairwiseSpec, bufs: &PairwiseGradients<'_>) -> Result<Self> {
        let name = PAIRWISE_BACKWARD_X.entry;
        let prepared = Prepared::new(gpu, spec, name)?;
        check_len(name, "x", bufs.x, spec.x_len())?;
        check_len(name, "dx", bufs.dx, spec.x_len())?;
        check_len(name, "dout", bufs.dout, spec.out_len())?;
        prepared.check_r(name, "r", bufs.r)?;
        prepared.check_r(name, "dr", bufs.dr)?;
        let out_placeholder = placeholder(gpu, "pairwise out (unused)");
        let out = match (spec.relu, bufs.out) {
            (true, Some(out)) => {
                check_len(name, "out", out, spec.out_len())?;
                out
            }
            (true, None) => {
                return Err(Error::kernel(name, "relu needs the stored output"));
            }
            (false, _) => &out_placeholder,
        };
        let dx_pipeline = prepared.pipeline(gpu, &PAIRWISE_BACKWARD_X)?;
        dx_pipeline.check_grid(gpu, [1, 1, spec.tables])?;
        let dr_pipeline = match spec.r_len() {
            0 => None,
            len => {
                let p = prepared.pipeline(gpu, &PAIRWISE_BACKWARD_R)?;
                p.check_grid(gpu, [len as u32, 1, spec.tables])?;
                Some(p)
            }
        };
        let unused_r = placeholder(gpu, "pairwise r (unused)");
        let unused_dr = placeholder(gpu, "pairwise dr (unused)");
        let buffers = [
            bufs.x,
            bufs.r.unwrap_or(&unused_r),
            &prepared.partition,
            bufs.dout,
            out,
            bufs.dx,
            bufs.dr.unwrap_or(&unused_dr),
            prepared.params.buffer(),
        ];
        let grid = prepared.row_grid(gpu, prepared.backward_cols());
        let dx = Launch::new(gpu, &dx_pipeline, &buffers, grid)?;
        let dr_grid = Grid::Dims([prepared.state.r_len, 1, spec.tables]);
        let dr = dr_pipeline
            .map(|p| Launch::new(gpu, &p, &buffers, dr_grid))
            .transpose()?;
        Ok(PairwiseBackward { prepared, dx, dr })
    }

    /// Sets the rows of the next steps (≤ `rows_cap`).
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.prepared
            .set_rows(gpu, PAIRWISE_BACKWARD_X.entry, rows)?;
        let grid = self.prepared.row_grid(gpu, self.prepared.backward_cols());
        self.dx.set_grid(grid);
        Ok(())
    }

    /// Records the backward: `dx` (no dispatch when there are no rows), then `dr` (always, so that
    /// an empty batch writes `dr = 0`).
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.dx.record(gpu, pass);
        if let Some(dr) = &self.dr {
            dr.record(gpu, pass);
        }
    }
}
