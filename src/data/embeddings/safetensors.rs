//! The safetensors format: tensor `vectors` `[N, D]` (F32, F64, F16 or BF16) and tensor `ids`
//! `[N]` (I64, I32, U32 or U64); see the module docs. The `safetensors` crate validates the header
//! (offsets, sizes, the file's length); this file checks names, dtypes and shapes.

use std::io::{BufWriter, Write};
use std::path::Path;

use ::safetensors::tensor::TensorView;
use ::safetensors::{Dtype, SafeTensors};

use super::check::{self, Source};
use super::decode::{self, Float, Integer};
use super::{integer_id, EmbeddingTable};
use crate::checkpoint::write_atomically;
use crate::{Error, Result};

/// Reads a safetensors embedding file.
pub(super) fn read(path: &Path) -> Result<EmbeddingTable> {
    let file = path.display().to_string();
    let whole = Source::rows(&file, None);
    let bytes = std::fs::read(path).map_err(|e| whole.error(format!("cannot read: {e}")))?;
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|e| whole.error(format!("not a valid safetensors file: {e}")))?;
    let vectors_from = Source::rows(&file, Some("tensor `vectors`".to_owned()));
    let ids_from = Source::rows(&file, Some("tensor `ids`".to_owned()));
    let vectors = named(&tensors, &vectors_from, "vectors")?;
    let ids = named(&tensors, &ids_from, "ids")?;
    let &[n, dim] = vectors.shape() else {
        let message = format!("shape {:?}; expected [N, D] (rank 2)", vectors.shape());
        return Err(vectors_from.error(message));
    };
    if ids.shape() != [n] {
        let message = format!(
            "shape {:?}; expected [{n}], one id per row of `vectors` {:?}",
            ids.shape(),
            vectors.shape()
        );
        return Err(ids_from.error(message));
    }
    let id_kind = integer_kind(ids.dtype()).ok_or_else(|| {
        let message = format!("dtype {:?}; ids must be I64, I32, U32 or U64", ids.dtype());
        ids_from.error(message)
    })?;
    let float_kind = float_kind(vectors.dtype()).ok_or_else(|| {
        let message = format!(
            "dtype {:?}; vectors must be F32, F64, F16 or BF16",
            vectors.dtype()
        );
        vectors_from.error(message)
    })?;
    let id_text = decode::integer_ids(id_kind, ids.data());
    let values = decode::floats(float_kind, vectors.data());
    check::table(&ids_from, &vectors_from, id_text, dim, values)
}

/// Tensor `name`, which must be there; the error lists the tensors the file has.
fn named<'a>(tensors: &SafeTensors<'a>, from: &Source, name: &str) -> Result<TensorView<'a>> {
    tensors.tensor(name).map_err(|_| {
        let mut names = tensors.names();
        names.sort();
        let message = format!(
            "missing (the file has {names:?}); an embedding file holds `ids` [N] and `vectors` [N, D]"
        );
        from.error(message)
    })
}

fn float_kind(dtype: Dtype) -> Option<Float> {
    match dtype {
        Dtype::F16 => Some(Float::F16),
        Dtype::BF16 => Some(Float::BF16),
        Dtype::F32 => Some(Float::F32),
        Dtype::F64 => Some(Float::F64),
        _ => None,
    }
}

fn integer_kind(dtype: Dtype) -> Option<Integer> {
    match dtype {
        Dtype::I32 => Some(Integer::I32),
        Dtype::I64 => Some(Integer::I64),
        Dtype::U32 => Some(Integer::U32),
        Dtype::U64 => Some(Integer::U64),
        _ => None,
    }
}

/// The header: `ids` (I64) then `vectors` (F32), padded with spaces to 8 bytes as safetensors
/// pads it. Written by hand so the same table always gives the same bytes.
fn header(n: usize, dim: usize) -> Vec<u8> {
    let ids_end = n * 8;
    let vectors_end = ids_end + n * dim * 4;
    let mut bytes = format!(
        "{{\"ids\":{{\"dtype\":\"I64\",\"shape\":[{n}],\"data_offsets\":[0,{ids_end}]}},\
         \"vectors\":{{\"dtype\":\"F32\",\"shape\":[{n},{dim}],\"data_offsets\":[{ids_end},\
         {vectors_end}]}}}}"
    )
    .into_bytes();
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    bytes
}

/// Writes `table` as safetensors, atomically; every id must be a canonical i64.
pub(super) fn write(table: &EmbeddingTable, path: &Path) -> Result<()> {
    if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        let message = "the path must end in `.safetensors` (reading picks the format by extension)";
        return Err(Error::output(path, message));
    }
    let mut ids = Vec::with_capacity(table.len());
    for (row, id) in table.ids.iter().enumerate() {
        let value = integer_id(id).ok_or_else(|| {
            let message = format!(
                "id {id:?} of row {row} is not an integer in decimal (safetensors holds no \
                 strings); write the text format instead (EmbeddingTable::write_text)"
            );
            Error::output(path, message)
        })?;
        ids.push(value);
    }
    write_atomically(path, |temporary| {
        let io = |e: std::io::Error| Error::output(path, format!("writing failed: {e}"));
        let mut out = BufWriter::new(std::fs::File::create(temporary).map_err(io)?);
        let header = header(table.len(), table.dim);
        out.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(io)?;
        out.write_all(&header).map_err(io)?;
        for id in ids {
            out.write_all(&id.to_le_bytes()).map_err(io)?;
        }
        for v in &table.vectors {
            out.write_all(&v.to_le_bytes()).map_err(io)?;
        }
        out.flush().map_err(io)
    })
}
