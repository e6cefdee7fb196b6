//! Reading buffers back to the host: copy into a mappable staging buffer, map, wait, cast.

use super::Gpu;
use crate::error::{Error, Result};

impl Gpu {
    /// Reads `len` elements of `T` starting at element `first` of `buffer` (which needs `COPY_SRC`).
    pub fn read<T: bytemuck::Pod>(
        &self,
        buffer: &wgpu::Buffer,
        first: u64,
        len: u64,
    ) -> Result<Vec<T>> {
        let size = std::mem::size_of::<T>() as u64;
        let (offset, bytes) = (first * size, len * size);
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let label = format!("{:?}", buffer);
        // copy_buffer_to_buffer needs 4-byte multiples; read the aligned cover and cut.
        let start = offset & !3;
        let end = (offset + bytes).next_multiple_of(4);
        let staging = self.buffer(
            "readback",
            end - start,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, start, &staging, 0, end - start);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(0..end - start);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.sync()?;
        let mapped = rx.recv().map_err(|e| Error::Readback {
            label: label.clone(),
            message: e.to_string(),
        })?;
        mapped.map_err(|e| Error::Readback {
            label: label.clone(),
            message: e.to_string(),
        })?;
        let view = slice.get_mapped_range().map_err(|e| Error::Readback {
            label: label.clone(),
            message: e.to_string(),
        })?;
        let skip = (offset - start) as usize;
        let out: Vec<T> = bytemuck::pod_collect_to_vec(&view[skip..skip + bytes as usize]);
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Reads a whole buffer as `T`s.
    pub fn read_all<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer) -> Result<Vec<T>> {
        self.read(buffer, 0, buffer.size() / std::mem::size_of::<T>() as u64)
    }
}
