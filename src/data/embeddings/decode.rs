//! Little-endian element bytes, as safetensors and `.npy` store them, into f32 components and
//! decimal id text. The readers check the byte count first (`count × size`).

/// A vector dtype; every one is converted to f32 (F64 and the 16-bit floats by rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Float {
    F16,
    BF16,
    F32,
    F64,
}

/// An id dtype; each id becomes its decimal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Integer {
    I32,
    I64,
    U32,
    U64,
}

impl Float {
    /// Bytes per element.
    pub(super) fn size(self) -> usize {
        match self {
            Float::F16 | Float::BF16 => 2,
            Float::F32 => 4,
            Float::F64 => 8,
        }
    }
}

impl Integer {
    /// Bytes per element.
    pub(super) fn size(self) -> usize {
        match self {
            Integer::I32 | Integer::U32 => 4,
            Integer::I64 | Integer::U64 => 8,
        }
    }
}

/// `bytes` as `N` arrays of `S` bytes (a trailing partial element is ignored; callers check).
fn elements<const S: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; S]> + '_ {
    bytes
        .chunks_exact(S)
        .map(|c| c.try_into().expect("chunks_exact gives S bytes"))
}

/// The components, as f32.
pub(super) fn floats(kind: Float, bytes: &[u8]) -> Vec<f32> {
    match kind {
        Float::F16 => elements::<2>(bytes)
            .map(|b| half::f16::from_le_bytes(b).to_f32())
            .collect(),
        Float::BF16 => elements::<2>(bytes)
            .map(|b| half::bf16::from_le_bytes(b).to_f32())
            .collect(),
        Float::F32 => elements::<4>(bytes).map(f32::from_le_bytes).collect(),
        Float::F64 => elements::<8>(bytes)
            .map(|b| f64::from_le_bytes(b) as f32)
            .collect(),
    }
}

/// The ids, as decimal text.
pub(super) fn integer_ids(kind: Integer, bytes: &[u8]) -> Vec<String> {
    match kind {
        Integer::I32 => elements::<4>(bytes)
            .map(|b| i32::from_le_bytes(b).to_string())
            .collect(),
        Integer::I64 => elements::<8>(bytes)
            .map(|b| i64::from_le_bytes(b).to_string())
            .collect(),
        Integer::U32 => elements::<4>(bytes)
            .map(|b| u32::from_le_bytes(b).to_string())
            .collect(),
        Integer::U64 => elements::<8>(bytes)
            .map(|b| u64::from_le_bytes(b).to_string())
            .collect(),
    }
}
