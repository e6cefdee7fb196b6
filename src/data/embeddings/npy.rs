//! The `.npy` pair: `X.npy` holds the vectors `[N, D]` (`<f4` or `<f8`, C order), `X.ids.npy`
//! (`[N]`, `<i8`, `<i4`, `<u4` or `<u8`) or `X.ids.txt` (one id per line) the ids; see the module
//! docs. The container is parsed in `npy_header.rs`.

use std::path::{Path, PathBuf};

use super::check::{self, Source};
use super::decode::{self, Float, Integer};
use super::npy_header::{self, Header};
use super::EmbeddingTable;
use crate::Result;

/// Reads `X.npy` and the ids beside it.
pub(super) fn read(path: &Path) -> Result<EmbeddingTable> {
    let file = path.display().to_string();
    let vectors_from = Source::rows(&file, None);
    let bytes = std::fs::read(path).map_err(|e| vectors_from.error(format!("cannot read: {e}")))?;
    let (header, data) = npy_header::parse(&bytes).map_err(|m| vectors_from.error(m))?;
    let kind = match header.descr.as_str() {
        "<f4" => Float::F32,
        "<f8" => Float::F64,
        other => {
            let message = format!(
                "dtype {other:?}; the vectors must be little-endian float32 or float64 ('<f4' \
                 or '<f8'; numpy: a.astype('<f4'))"
            );
            return Err(vectors_from.error(message));
        }
    };
    let &[n, dim] = header.shape.as_slice() else {
        let message = format!("shape {:?}; expected (N, D) (rank 2)", header.shape);
        return Err(vectors_from.error(message));
    };
    check_layout(&vectors_from, &header, data.len(), kind.size())?;
    let values = decode::floats(kind, data);
    let (ids, ids_from) = read_ids(path, n)?;
    check::table(&ids_from, &vectors_from, ids, dim, values)
}

/// C order, and exactly as many data bytes as the shape and dtype need.
fn check_layout(from: &Source, header: &Header, data: usize, size: usize) -> Result<()> {
    if header.fortran_order {
        let message = "Fortran order; save a C-ordered array (numpy.ascontiguousarray(a))";
        return Err(from.error(message));
    }
    let needed = header.shape.iter().try_fold(size, |n, &d| n.checked_mul(d));
    if needed != Some(data) {
        let message = format!(
            "{data} bytes of data where shape {:?} of {:?} needs {}; truncated?",
            header.shape,
            header.descr,
            needed.map_or("more than fits in memory".to_owned(), |n| n.to_string())
        );
        return Err(from.error(message));
    }
    Ok(())
}

/// `X.ids.npy` and `X.ids.txt` for `X.npy`.
fn id_paths(vectors: &Path) -> (PathBuf, PathBuf) {
    (
        vectors.with_extension("ids.npy"),
        vectors.with_extension("ids.txt"),
    )
}

/// The `n` ids of `X.npy`, from whichever of its two id files exists, and their source.
fn read_ids(vectors: &Path, n: usize) -> Result<(Vec<String>, Source)> {
    let (npy, txt) = id_paths(vectors);
    let vectors_from = Source::rows(vectors.display().to_string(), None);
    match (npy.exists(), txt.exists()) {
        (true, false) => npy_ids(&npy, vectors, n),
        (false, true) => text_ids(&txt, vectors, n),
        (true, true) => Err(vectors_from.error(format!(
            "both {} and {} exist; keep the one that holds the ids",
            npy.display(),
            txt.display()
        ))),
        (false, false) => Err(vectors_from.error(format!(
            "no ids: expected {} (integer ids) or {} (one id per line) beside it",
            npy.display(),
            txt.display()
        ))),
    }
}

/// Integer ids from `X.ids.npy`, `[n]`.
fn npy_ids(path: &Path, vectors: &Path, n: usize) -> Result<(Vec<String>, Source)> {
    let from = Source::rows(path.display().to_string(), None);
    let bytes = std::fs::read(path).map_err(|e| from.error(format!("cannot read: {e}")))?;
    let (header, data) = npy_header::parse(&bytes).map_err(|m| from.error(m))?;
    let kind = match header.descr.as_str() {
        "<i8" => Integer::I64,
        "<i4" => Integer::I32,
        "<u4" => Integer::U32,
        "<u8" => Integer::U64,
        other => {
            let message = format!(
                "dtype {other:?}; ids must be little-endian integers ('<i8', '<i4', '<u4' or \
                 '<u8'), or strings in a .ids.txt file"
            );
            return Err(from.error(message));
        }
    };
    if header.shape != [n] {
        let message = format!(
            "shape {:?}; expected ({n},), one id per row of {}",
            header.shape,
            vectors.display()
        );
        return Err(from.error(message));
    }
    check_layout(&from, &header, data.len(), kind.size())?;
    Ok((decode::integer_ids(kind, data), from))
}

/// String ids from `X.ids.txt`, one per line (a final line break is optional).
fn text_ids(path: &Path, vectors: &Path, n: usize) -> Result<(Vec<String>, Source)> {
    let file = path.display().to_string();
    let whole = Source::rows(&file, None);
    let text = std::fs::read(path).map_err(|e| whole.error(format!("cannot read: {e}")))?;
    let text = String::from_utf8(text).map_err(|e| {
        let line = 1 + text_before(&e).iter().filter(|&&b| b == b'\n').count();
        whole.error(format!("line {line}: not valid UTF-8"))
    })?;
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let ids: Vec<String> = if body.is_empty() {
        Vec::new()
    } else {
        body.split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
            .collect()
    };
    if ids.len() != n {
        let message = format!(
            "{} ids (lines) where {} has {n} rows",
            ids.len(),
            vectors.display()
        );
        return Err(whole.error(message));
    }
    let lines = (1..=n as u64).collect();
    Ok((ids, Source::lines(file, lines)))
}

/// The bytes before the first invalid UTF-8 sequence.
fn text_before(e: &std::string::FromUtf8Error) -> &[u8] {
    &e.as_bytes()[..e.utf8_error().valid_up_to()]
}
