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

use super::{HalfTensor, Tensor, RESERVED};
use crate::{Error, Result};

/// One tensor's header entry, in safetensors' field order.
#[derive(Serialize)]
struct Entry<'a> {
    dtype: &'static str,
    shape: &'a [usize],
    data_offsets: [usize; 2],
}

/// One tensor's data, whatever its dtype.
#[derive(Clone, Copy)]
enum Data<'a> {
    F32(&'a [f32]),
    F16(&'a [u16]),
}

impl Data<'_> {
    fn dtype(self) -> &'static str {
        match self {
            Data::F32(_) => "F32",
            Data::F16(_) => "F16",
        }
    }

    fn bytes(self) -> usize {
        match self {
            Data::F32(d) => d.len() * 4,
            Data::F16(d) => d.len() * 2,
        }
    }

    fn write(self, out: &mut impl Write) -> std::io::Result<()> {
        match self {
            Data::F32(d) if cfg!(target_endian = "little") => {
                out.write_all(bytemuck::cast_slice(d))
            }
            Data::F16(d) if cfg!(target_endian = "little") => {
                out.write_all(bytemuck::cast_slice(d))
            }
            Data::F32(d) => d.iter().try_for_each(|v| out.write_all(&v.to_le_bytes())),
            Data::F16(d) => d.iter().try_for_each(|v| out.write_all(&v.to_le_bytes())),
        }
    }
}

/// Every tensor of both dtypes, in name order (the order of the header and of the data).
fn in_order<'a>(
    tensors: &'a BTreeMap<String, Tensor>,
    halves: &'a BTreeMap<String, HalfTensor>,
) -> Vec<(&'a String, &'a [usize], Data<'a>)> {
    let mut all: Vec<_> = (tensors.iter())
        .map(|(n, t)| (n, t.shape.as_slice(), Data::F32(&t.data)))
        .chain((halves.iter()).map(|(n, t)| (n, t.shape.as_slice(), Data::F16(&t.bits))))
        .collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    all
}

/// The header: `__metadata__` first, then every tensor in name order.
struct Header<'a> {
    tensors: &'a [(&'a String, &'a [usize], Data<'a>)],
    metadata: &'a BTreeMap<String, String>,
}

impl Serialize for Header<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.tensors.len() + 1))?;
        map.serialize_entry(RESERVED, self.metadata)?;
        let mut offset = 0;
        for &(name, shape, data) in self.tensors {
            let end = offset + data.bytes();
            let entry = Entry {
                dtype: data.dtype(),
                shape,
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
    tensors: &[(&String, &[usize], Data<'_>)],
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
    halves: &BTreeMap<String, HalfTensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let fail = |message: String| Error::checkpoint(path, None, message);
    let tensors = in_order(tensors, halves);
    let header = header_bytes(&tensors, metadata)
        .map_err(|e| fail(format!("cannot encode the header: {e}")))?;
    let io = |e: std::io::Error| fail(format!("writing failed: {e}"));
    let mut out = BufWriter::new(std::fs::File::create(path).map_err(io)?);
    out.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io)?;
    out.write_all(&header).map_err(io)?;
    for &(_, _, data) in &tensors {
        data.write(&mut out).map_err(io)?;
    }
    out.flush().map_err(io)
}
