//! The `.npy` container (numpy's `format.py`, versions 1.0, 2.0 and 3.0): the magic `\x93NUMPY`,
//! a version, a little-endian header length (u16 in version 1, u32 in 2 and 3), then a Python
//! dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` and the raw data.
//! Only the three keys numpy writes are read; their order does not matter.

/// What the header says about the array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    /// The dtype string, e.g. `<f4`.
    pub descr: String,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Splits an `.npy` file into its header and its data bytes; the error says what is wrong.
pub(super) fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), String> {
    if !bytes.starts_with(MAGIC) || bytes.len() < 10 {
        return Err("not an .npy file (no \\x93NUMPY magic)".to_owned());
    }
    let (length_bytes, start) = match bytes[6] {
        1 => (2, 10),
        2 | 3 => (4, 12),
        major => return Err(format!("unsupported .npy version {major}.{}", bytes[7])),
    };
    let length = bytes
        .get(8..8 + length_bytes)
        .map(|b| b.iter().rev().fold(0usize, |n, &b| n << 8 | b as usize))
        .ok_or("truncated .npy header")?;
    let text = bytes
        .get(start..start + length)
        .ok_or_else(|| format!("the header length {length} runs past the end of the file"))?;
    let text = std::str::from_utf8(text).map_err(|_| "the .npy header is not text")?;
    let header = Header {
        descr: quoted(value(text, "descr")?)?,
        fortran_order: boolean(value(text, "fortran_order")?)?,
        shape: tuple(value(text, "shape")?)?,
    };
    Ok((header, &bytes[start + length..]))
}

/// The text of `key`'s value in the dict `text`, from its first character to the end of the
/// dict (the value parsers stop where the value ends).
fn value<'a>(text: &'a str, key: &str) -> Result<&'a str, String> {
    let at = [format!("'{key}'"), format!("\"{key}\"")]
        .iter()
        .find_map(|k| text.find(k.as_str()).map(|at| at + k.len()))
        .ok_or_else(|| format!("the .npy header has no {key:?}: {text:?}"))?;
    let rest = text[at..].trim_start();
    rest.strip_prefix(':')
        .map(str::trim_start)
        .ok_or_else(|| format!("the .npy header's {key:?} has no value: {text:?}"))
}

/// A quoted string at the start of `text`.
fn quoted(text: &str) -> Result<String, String> {
    let bad = || format!("the .npy header's dtype is not a quoted string: {text:?}");
    let quote = text.chars().next().filter(|&c| c == '\'' || c == '"');
    let quote = quote.ok_or_else(bad)?;
    let inner = &text[1..];
    let end = inner.find(quote).ok_or_else(bad)?;
    Ok(inner[..end].to_owned())
}

/// `True` or `False` at the start of `text`.
fn boolean(text: &str) -> Result<bool, String> {
    if text.starts_with("True") {
        Ok(true)
    } else if text.starts_with("False") {
        Ok(false)
    } else {
        Err(format!(
            "the .npy header's fortran_order is not True or False: {text:?}"
        ))
    }
}

/// A tuple of non-negative integers at the start of `text`: `()`, `(3,)`, `(3, 4)`.
fn tuple(text: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("the .npy header's shape is not a tuple of integers: {text:?}");
    let inner = text.strip_prefix('(').ok_or_else(bad)?;
    let inner = &inner[..inner.find(')').ok_or_else(bad)?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<usize>().map_err(|_| bad()))
        .collect()
}
