//! The embedding storage of a graph: one [`EmbeddingStorage`] per slab of the plan (issue 19's
//! storage groups), and the host API of one storage by *global* table index — each call routed
//! to the parts that hold the rows it names, so checkpoints, initialisation and online resets do
//! not know how the tables were packed.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::embedding::{EmbeddingStorage, SparseOptimizer, TableSpec};
use crate::model::ModelPlan;

/// Rows `rows` of a table, held as table `local` of slab `slab`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    slab: usize,
    local: usize,
    rows: Range<u32>,
}

/// Every slab's storage and where each table's rows are (module docs).
pub struct Slabs {
    storages: Vec<EmbeddingStorage>,
    /// Per global table, its parts in row order.
    parts: Vec<Vec<Part>>,
    /// Per global table, host floats per row (weights then state, all f32).
    strides: Vec<usize>,
    /// Per global table, floats of weights per row.
    widths: Vec<usize>,
    optimizer: SparseOptimizer,
    /// Bytes written by `write_raw_rows` since the last flush.
    staged: AtomicUsize,
}

/// How [`Graph::compile_with`](super::Graph::compile_with) builds a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphOptions {
    /// Bytes per storage chunk instead of the device's binding limit (when smaller): tests pack
    /// a small model into several storage groups with it.
    pub chunk_bytes: Option<u64>,
}

/// The largest chunk buffer `gpu` binds, or `forced` when smaller: what every slab's storage and
/// the plan's packing use.
pub fn chunk_bytes(gpu: &Gpu, forced: Option<u64>) -> u64 {
    let device = (gpu.limits().max_storage_buffer_binding_size).min(gpu.limits().max_buffer_size);
    forced.unwrap_or(device).min(device)
}

/// Block writes are flushed ([`Gpu::flush_writes`]) whenever this many bytes have been staged
/// since the last flush: initialising or restoring a 3.2 GB table then holds at most about this
/// much in staging copies, not the whole table.
const FLUSH_BYTES: usize = 64 << 20;

impl Slabs {
    /// Allocates one zeroed storage per slab of `plan` with chunks of `chunk_bytes`.
    pub fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        optimizer: SparseOptimizer,
        chunk_bytes: u64,
    ) -> Result<Self> {
        let mut parts: Vec<Vec<Part>> = vec![Vec::new(); plan.tables.len()];
        let mut storages = Vec::with_capacity(plan.slabs.len());
        for (s, slab) in plan.slabs.iter().enumerate() {
            let specs: Vec<TableSpec> = (slab.parts.iter())
                .map(|p| TableSpec::whole(p.rows.len() as u32, plan.tables[p.table].width))
                .collect();
            let mut storage = EmbeddingStorage::with_element(
                gpu,
                &specs,
                optimizer,
                slab.element,
                Some(chunk_bytes),
            )?;
            for (local, p) in slab.parts.iter().enumerate() {
                let whole = plan.tables[p.table].rows;
                storage.layout.set_part(local, p.rows.start, whole)?;
                parts[p.table].push(Part {
                    slab: s,
                    local,
                    rows: p.rows.clone(),
                });
            }
            storages.push(storage);
        }
        let mut strides = Vec::with_capacity(parts.len());
        for (t, table_parts) in parts.iter_mut().enumerate() {
            table_parts.sort_by_key(|p| p.rows.start);
            let first = table_parts
                .first()
                .ok_or_else(|| Error::Layout(format!("table {t} is in no slab")))?;
            strides.push(storages[first.slab].layout.raw_stride(first.local));
        }
        let widths = plan.tables.iter().map(|t| t.width as usize).collect();
        Ok(Slabs {
            storages,
            parts,
            strides,
            widths,
            optimizer,
            staged: AtomicUsize::new(0),
        })
    }

    /// The storages, in slab order.
    pub fn storages(&self) -> &[EmbeddingStorage] {
        &self.storages
    }

    /// Slab `s`'s storage.
    pub fn slab(&self, s: usize) -> &EmbeddingStorage {
        &self.storages[s]
    }

    /// (slab, table index in it) of each part of global table `t`, in row order.
    pub fn parts_of(&self, t: usize) -> Vec<(usize, usize)> {
        (self.parts.get(t).into_iter().flatten())
            .map(|p| (p.slab, p.local))
            .collect()
    }

    /// The optimizer every slab uses.
    pub fn optimizer(&self) -> SparseOptimizer {
        self.optimizer
    }

    /// Host floats per row of table `t`: weights then optimizer state, all f32
    /// ([`StorageLayout::raw_stride`](crate::kernels::embedding::StorageLayout::raw_stride)).
    pub fn raw_stride(&self, t: usize) -> usize {
        self.strides[t]
    }

    /// Floats of weights per row of table `t`.
    pub fn width(&self, t: usize) -> usize {
        self.widths[t]
    }

    /// Rows of table `t` (0 for a table that does not exist: the readers and writers refuse it).
    pub fn rows(&self, t: usize) -> u32 {
        (self.parts.get(t).and_then(|p| p.last())).map_or(0, |p| p.rows.end)
    }

    fn table(&self, t: usize) -> Result<&[Part]> {
        (self.parts.get(t).map(Vec::as_slice))
            .ok_or_else(|| Error::Layout(format!("table {t} does not exist")))
    }

    /// Reads table `t` whole, rows with their optimizer state.
    pub fn read_raw(&self, gpu: &Gpu, t: usize) -> Result<Vec<f32>> {
        self.read_raw_rows(gpu, t, 0..self.rows(t))
    }

    /// Reads rows `rows` of table `t`, each with its optimizer state, from the parts that hold
    /// them.
    pub fn read_raw_rows(&self, gpu: &Gpu, t: usize, rows: Range<u32>) -> Result<Vec<f32>> {
        let parts = self.table(t)?;
        if rows.start > rows.end || rows.end > self.rows(t) {
            return Err(Error::Layout(format!(
                "table {t}: rows {}..{} of {}",
                rows.start,
                rows.end,
                self.rows(t)
            )));
        }
        let mut out = Vec::with_capacity(rows.len() * self.strides[t]);
        for p in parts {
            let (a, b) = (rows.start.max(p.rows.start), rows.end.min(p.rows.end));
            if a < b {
                let local = a - p.rows.start..b - p.rows.start;
                out.extend(self.storages[p.slab].read_raw_rows(gpu, p.local, local)?);
            }
        }
        Ok(out)
    }

    /// Writes table `t` whole, rows with their optimizer state.
    pub fn write_raw(&self, gpu: &Gpu, t: usize, data: &[f32]) -> Result<()> {
        let need = self.rows(t) as usize * self.strides.get(t).copied().unwrap_or(0);
        if data.len() != need {
            return Err(Error::Layout(format!(
                "table {t} holds {need} floats with state, {} given",
                data.len()
            )));
        }
        self.write_raw_rows(gpu, t, 0, data)
    }

    /// Writes rows `first_row..` of table `t` (as many as `data` holds, each with its state) into
    /// the parts that hold them.
    pub fn write_raw_rows(&self, gpu: &Gpu, t: usize, first_row: u32, data: &[f32]) -> Result<()> {
        let parts = self.table(t)?;
        let stride = self.strides[t];
        if !data.len().is_multiple_of(stride) {
            return Err(Error::Layout(format!(
                "table {t}: {} floats are not whole rows of {stride}",
                data.len()
            )));
        }
        let end = first_row as u64 + (data.len() / stride) as u64;
        if end > self.rows(t) as u64 {
            return Err(Error::Layout(format!(
                "table {t}: rows {first_row}..{end} of {}",
                self.rows(t)
            )));
        }
        for p in parts {
            let (a, b) = (first_row.max(p.rows.start), (end as u32).min(p.rows.end));
            if a < b {
                let at = (a - first_row) as usize * stride..(b - first_row) as usize * stride;
                let storage = &self.storages[p.slab];
                storage.write_raw_rows(gpu, p.local, a - p.rows.start, &data[at])?;
            }
        }
        let staged = self.staged.fetch_add(data.len() * 4, Ordering::Relaxed) + data.len() * 4;
        if staged >= FLUSH_BYTES {
            self.staged.store(0, Ordering::Relaxed);
            gpu.flush_writes()?;
        }
        Ok(())
    }

    /// Writes whole rows of table `t` (`(row, weights and state)`), each into its part.
    pub fn write_rows(&self, gpu: &Gpu, t: usize, rows: &[(u32, &[f32])]) -> Result<()> {
        let parts = self.table(t)?;
        if let Some((r, _)) = rows.iter().find(|(r, _)| *r >= self.rows(t)) {
            return Err(Error::Layout(format!(
                "table {t}: row {r} of {}",
                self.rows(t)
            )));
        }
        for p in parts {
            let local: Vec<(u32, &[f32])> = (rows.iter())
                .filter(|(r, _)| p.rows.contains(r))
                .map(|&(r, v)| (r - p.rows.start, v))
                .collect();
            self.storages[p.slab].write_rows(gpu, p.local, &local)?;
        }
        Ok(())
    }

    /// The weights of table `t`, `rows × width`, without optimizer state.
    pub fn read_weights(&self, gpu: &Gpu, t: usize) -> Result<Vec<f32>> {
        let raw = self.read_raw(gpu, t)?;
        let (w, s) = (self.widths[t], self.strides[t]);
        Ok(raw.chunks(s).flat_map(|row| &row[..w]).copied().collect())
    }

    /// Sets the weights of table `t` (`rows × width`) and zeroes its optimizer state.
    pub fn write_weights(&self, gpu: &Gpu, t: usize, weights: &[f32]) -> Result<()> {
        self.table(t)?;
        let (w, s) = (self.widths[t], self.strides[t]);
        if weights.len() != self.rows(t) as usize * w {
            return Err(Error::Layout(format!(
                "table {t} is {} × {w}, {} floats given",
                self.rows(t),
                weights.len()
            )));
        }
        let mut raw = vec![0f32; self.rows(t) as usize * s];
        for (dst, src) in raw.chunks_mut(s).zip(weights.chunks(w)) {
            dst[..w].copy_from_slice(src);
        }
        self.write_raw(gpu, t, &raw)
    }
}
