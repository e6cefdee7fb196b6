//! Writing a checkpoint file byte for byte reproducibly. safetensors 0.7 takes the metadata as a
//! `HashMap` and serialises it in the map's iteration order, which is random per process, so two
//! identical runs gave files that differed in their headers. Here the header is built from sorted
//! maps instead: metadata keys sorted, then tensors sorted by name (the order safetensors itself
//! gives tensors of one dtype), padded with spaces to 8 bytes as safetensors pads it. The same
//! checkpoint therefore always gives the same bytes, and safetensors (or PyTorch) reads it as
//! its own.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{Tensor, RESERVED};
use crate::{Error, Result};

/// One tensor's header entry, in safetensors' field order.
#[derive(Serialize)]
struct Entry<'a> {
    dtype: &'static str,
    shape: &'a [usize],
    data_offsets: [usize; 2],
}

/// The header: `__metadata__` first, then every tensor in name order.
struct Header<'a> {
    tensors: &'a BTreeMap<String, Tensor>,
    metadata: &'a BTreeMap<String, String>,
}

impl Serialize for Header<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.tensors.len() + 1))?;
        map.serialize_entry(RESERVED, self.metadata)?;
        let mut offset = 0;
        for (name, t) in self.tensors {
            let end = offset + t.data.len() * 4;
            let entry = Entry {
                dtype: "F32",
                shape: &t.shape,
                data_offsets: [offset, end],
            };
            map.serialize_entry(name, &entry)?;
            offset = end;
        }
        map.end()
    }
}

/// The header bytes, padded with spaces to a multiple of 8 (safetensors' alignment).
fn header_bytes(
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> serde_json::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(&Header { tensors, metadata })?;
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    Ok(bytes)
}

/// Writes `tensors` and `metadata` as a safetensors file at `path` (a plain write; the caller
/// makes it atomic). Tensor data is streamed, not copied into one buffer.
pub(super) fn write_file(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let fail = |message: String| Error::checkpoint(path, None, message);
    let header = header_bytes(tensors, metadata)
        .map_err(|e| fail(format!("cannot encode the header: {e}")))?;
    let io = |e: std::io::Error| fail(format!("writing failed: {e}"));
    let mut out = BufWriter::new(std::fs::File::create(path).map_err(io)?);
    out.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io)?;
    out.write_all(&header).map_err(io)?;
    for t in tensors.values() {
        if cfg!(target_endian = "little") {
            out.write_all(bytemuck::cast_slice(&t.data)).map_err(io)?;
        } else {
            for v in &t.data {
                out.write_all(&v.to_le_bytes()).map_err(io)?;
            }
        }
    }
    out.flush().map_err(io)
}
