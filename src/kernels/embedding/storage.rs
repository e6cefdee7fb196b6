//! The GPU side of an embedding storage: its chunk buffers, and moving table rows and optimizer
//! state in and out of them.

use super::layout::{Element, SparseOptimizer, StorageLayout, TableSpec, MAX_CHUNKS};
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Gpu};

/// Embedding tables of one storage, resident on the GPU.
pub struct EmbeddingStorage {
    /// Where every row lives.
    pub layout: StorageLayout,
    /// `MAX_CHUNKS` buffers; those past `layout.chunks()` are 16-byte placeholders.
    pub(crate) chunks: Vec<wgpu::Buffer>,
}

impl EmbeddingStorage {
    /// Allocates `tables` (zeroed) with chunks as large as the device binds, or `chunk_bytes` when
    /// given (tests force tiny chunks to exercise rows that straddle them).
    pub fn new(
        gpu: &Gpu,
        tables: &[TableSpec],
        optimizer: SparseOptimizer,
        chunk_bytes: Option<u64>,
    ) -> Result<Self> {
        Self::with_element(gpu, tables, optimizer, Element::F32, chunk_bytes)
    }

    /// [`new`](Self::new) for rows stored as `element`.
    pub fn with_element(
        gpu: &Gpu,
        tables: &[TableSpec],
        optimizer: SparseOptimizer,
        element: Element,
        chunk_bytes: Option<u64>,
    ) -> Result<Self> {
        let device_max = gpu
            .limits()
            .max_storage_buffer_binding_size
            .min(gpu.limits().max_buffer_size);
        let chunk_bytes = chunk_bytes.unwrap_or(device_max).min(device_max);
        let layout = StorageLayout::with_element(tables, optimizer, element, chunk_bytes)?;
        let chunks = (0..MAX_CHUNKS)
            .map(|c| {
                let len4 = if c < layout.chunks() {
                    layout.chunk_len4(c)
                } else {
                    1
                };
                gpu.buffer(&format!("embedding chunk {c}"), len4 * 16, storage_usage())
            })
            .collect();
        Ok(EmbeddingStorage { layout, chunks })
    }

    fn table_range(&self, table: usize) -> Result<(u64, u64)> {
        let t = self
            .layout
            .tables
            .get(table)
            .ok_or_else(|| Error::Layout(format!("table {table} does not exist")))?;
        Ok((t.base4, t.base4 + t.rows as u64 * t.stride4 as u64))
    }

    /// The vec4 address range of rows `rows` of table `table`.
    fn rows_range(&self, table: usize, rows: std::ops::Range<u32>) -> Result<(u64, u64)> {
        let t = *self
            .layout
            .tables
            .get(table)
            .ok_or_else(|| Error::Layout(format!("table {table} does not exist")))?;
        if rows.start > rows.end || rows.end > t.rows {
            return Err(Error::Layout(format!(
                "table {table}: rows {}..{} of {}",
                rows.start, rows.end, t.rows
            )));
        }
        let at = |r: u32| t.base4 + r as u64 * t.stride4 as u64;
        Ok((at(rows.start), at(rows.end)))
    }

    /// Reads table `table` whole, rows with their optimizer state (`stride4 · 4` floats per row).
    pub fn read_raw(&self, gpu: &Gpu, table: usize) -> Result<Vec<f32>> {
        let (start, end) = self.table_range(table)?;
        self.read_span(gpu, start, end)
    }

    /// Reads rows `rows` of table `table`, each with its optimizer state: what a checkpoint of a
    /// table too large for one host copy reads block by block.
    pub fn read_raw_rows(
        &self,
        gpu: &Gpu,
        table: usize,
        rows: std::ops::Range<u32>,
    ) -> Result<Vec<f32>> {
        let (start, end) = self.rows_range(table, rows)?;
        self.read_span(gpu, start, end)
    }

    fn read_span(&self, gpu: &Gpu, start: u64, end: u64) -> Result<Vec<f32>> {
        let mut out = vec![0f32; ((end - start) * 4) as usize];
        for (chunk, at4, range) in self.layout.split(start, end) {
            let part: Vec<f32> = gpu.read(&self.chunks[chunk], at4 * 4, range.len() as u64 * 4)?;
            out[range.start * 4..range.end * 4].copy_from_slice(&part);
        }
        Ok(out)
    }

    /// Writes table `table` whole, rows with their optimizer state.
    pub fn write_raw(&self, gpu: &Gpu, table: usize, data: &[f32]) -> Result<()> {
        let (start, end) = self.table_range(table)?;
        self.write_span(gpu, table, start, end, data)
    }

    /// Writes rows `first_row..` of table `table` (as many as `data` holds, each row with its
    /// optimizer state): initialisation and restore of a table block by block.
    pub fn write_raw_rows(
        &self,
        gpu: &Gpu,
        table: usize,
        first_row: u32,
        data: &[f32],
    ) -> Result<()> {
        let stride = self
            .layout
            .tables
            .get(table)
            .map_or(1, |t| t.stride4 as usize * 4);
        let n = (data.len() / stride) as u32;
        let (start, end) = self.rows_range(table, first_row..first_row.saturating_add(n))?;
        self.write_span(gpu, table, start, end, data)
    }

    fn write_span(
        &self,
        gpu: &Gpu,
        table: usize,
        start: u64,
        end: u64,
        data: &[f32],
    ) -> Result<()> {
        if data.len() as u64 != (end - start) * 4 {
            return Err(Error::Layout(format!(
                "table {table} holds {} floats with state, {} given",
                (end - start) * 4,
                data.len()
            )));
        }
        for (chunk, at4, range) in self.layout.split(start, end) {
            let part = &data[range.start * 4..range.end * 4];
            gpu.queue
                .write_buffer(&self.chunks[chunk], at4 * 16, bytemuck::cast_slice(part));
        }
        Ok(())
    }

    /// Writes whole rows of table `table` (weights and optimizer state, `stride4 · 4` floats per
    /// row, rows given as `(row, values)`), leaving the other rows as they are: online learning
    /// re-initialises the rows a new id takes over (`Graph::reset_rows`). Queued before the next
    /// submission, so a step submitted after this call reads the new values.
    pub fn write_rows(&self, gpu: &Gpu, table: usize, rows: &[(u32, &[f32])]) -> Result<()> {
        let t = *self
            .layout
            .tables
            .get(table)
            .ok_or_else(|| Error::Layout(format!("table {table} does not exist")))?;
        let stride = t.stride4 as usize * 4;
        for &(row, values) in rows {
            if row >= t.rows || values.len() != stride {
                return Err(Error::Layout(format!(
                    "table {table}: row {row} of {} with {} floats, {stride} expected",
                    t.rows,
                    values.len()
                )));
            }
            let start = t.base4 + row as u64 * t.stride4 as u64;
            for (chunk, at4, range) in self.layout.split(start, start + t.stride4 as u64) {
                let part = &values[range.start * 4..range.end * 4];
                gpu.queue
                    .write_buffer(&self.chunks[chunk], at4 * 16, bytemuck::cast_slice(part));
            }
        }
        Ok(())
    }

    /// The weights of table `table`, `rows × width`, without optimizer state.
    pub fn read_weights(&self, gpu: &Gpu, table: usize) -> Result<Vec<f32>> {
        let raw = self.read_raw(gpu, table)?;
        let t = self.layout.tables[table];
        let (w, s) = (t.width4 as usize * 4, t.stride4 as usize * 4);
        Ok(raw.chunks(s).flat_map(|row| &row[..w]).copied().collect())
    }

    /// Sets the weights of table `table` (`rows × width`) and zeroes its optimizer state.
    pub fn write_weights(&self, gpu: &Gpu, table: usize, weights: &[f32]) -> Result<()> {
        let t = *self
            .layout
            .tables
            .get(table)
            .ok_or_else(|| Error::Layout(format!("table {table} does not exist")))?;
        let (w, s) = (t.width4 as usize * 4, t.stride4 as usize * 4);
        if weights.len() != t.rows as usize * w {
            return Err(Error::Layout(format!(
                "table {table} is {} × {w}, {} floats given",
                t.rows,
                weights.len()
            )));
        }
        let mut raw = vec![0f32; t.rows as usize * s];
        for (dst, src) in raw.chunks_mut(s).zip(weights.chunks(w)) {
            dst[..w].copy_from_slice(src);
        }
        self.write_raw(gpu, table, &raw)
    }

    /// The optimizer every table of the storage uses.
    pub fn optimizer(&self) -> SparseOptimizer {
        self.layout.optimizer
    }
}
