//! Rows as stored ↔ rows as the host sees them. The host's raw view of a row is f32 — its weights,
//! then its optimizer state, `raw_stride` floats — whatever the storage's element type; the stored
//! row is `stride4` units of `unit_bytes` each (see layout.rs). f32 storage is the identity (the
//! same bits). f16 storage packs weights two halves per u32, element 2i in the low 16 bits (what
//! WGSL's `pack2x16float` writes), and keeps the state as f32 bits: row-wise Adagrad's accumulator
//! in one unit `[acc, 0]` (the raw view's state vec4 is `[acc, 0, 0, 0]`), Adam's m and v as they
//! are. f16 → f32 is exact; f32 → f16 rounds to nearest, ties to even (`half`), and a weight beyond
//! ±65504 becomes ±inf.

use half::f16;

use super::layout::{SparseOptimizer, StorageLayout};

/// u32 words per stored row of table `t`.
pub(super) fn row_words(layout: &StorageLayout, t: usize) -> usize {
    layout.tables[t].stride4 as usize * (layout.unit_bytes() / 4) as usize
}

/// Stored words of whole rows of table `t` → their raw f32 rows.
pub(super) fn to_raw(layout: &StorageLayout, t: usize, words: &[u32]) -> Vec<f32> {
    let width4 = layout.tables[t].width4 as usize;
    if layout.element.bytes() == 4 {
        return words.iter().map(|&w| f32::from_bits(w)).collect();
    }
    let (stored, raw) = (row_words(layout, t), layout.raw_stride(t));
    let mut out = Vec::with_capacity(words.len() / stored.max(1) * raw);
    for row in words.chunks(stored) {
        let (weights, state) = row.split_at(2 * width4);
        for &w in weights {
            out.push(f16::from_bits(w as u16).to_f32());
            out.push(f16::from_bits((w >> 16) as u16).to_f32());
        }
        match layout.optimizer {
            SparseOptimizer::RowwiseAdagrad { .. } => {
                out.extend([f32::from_bits(state[0]), 0.0, 0.0, 0.0]);
            }
            _ => out.extend(state.iter().map(|&w| f32::from_bits(w))),
        }
    }
    out
}

/// Raw f32 rows of table `t` → their stored words (the inverse of [`to_raw`] on what it gives;
/// an f16 Adagrad row's state keeps only `.x`, the accumulator, which is all the kernel writes).
pub(super) fn from_raw(layout: &StorageLayout, t: usize, raw: &[f32]) -> Vec<u32> {
    let width = layout.tables[t].width4 as usize * 4;
    if layout.element.bytes() == 4 {
        return raw.iter().map(|v| v.to_bits()).collect();
    }
    let (stored, stride) = (row_words(layout, t), layout.raw_stride(t));
    let mut out = Vec::with_capacity(raw.len() / stride.max(1) * stored);
    for row in raw.chunks(stride) {
        let (weights, state) = row.split_at(width);
        for pair in weights.chunks(2) {
            let lo = f16::from_f32(pair[0]).to_bits() as u32;
            let hi = f16::from_f32(pair[1]).to_bits() as u32;
            out.push(lo | hi << 16);
        }
        match layout.optimizer {
            SparseOptimizer::RowwiseAdagrad { .. } => out.extend([state[0].to_bits(), 0]),
            _ => out.extend(state.iter().map(|v| v.to_bits())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::embedding::{Element, TableSpec};

    fn layout(optimizer: SparseOptimizer) -> StorageLayout {
        let tables = [TableSpec::whole(3, 8), TableSpec::whole(2, 4)];
        StorageLayout::with_element(&tables, optimizer, Element::F16, 1 << 20).expect("layout")
    }

    #[test]
    fn f16_units_are_8_bytes_with_f32_state() {
        let adam = SparseOptimizer::Adam {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
        };
        let l = layout(SparseOptimizer::RowwiseAdagrad { eps: 1e-8 });
        assert_eq!(l.unit_bytes(), 8);
        assert_eq!(
            (l.tables[0].width4, l.tables[0].stride4),
            (2, 3),
            "Adagrad: one unit"
        );
        assert_eq!(l.chunk_shift, 17, "2^20 bytes / 8-byte units");
        assert_eq!(l.raw_stride(0), 12, "the host still sees a state vec4");
        assert_eq!(row_words(&l, 0), 6);
        let a = layout(adam);
        assert_eq!(
            a.tables[0].stride4,
            2 + 8,
            "Adam: m and v, two units per vec4"
        );
        assert_eq!(a.tables[1].base4, 3 * 10);
        assert_eq!(a.total4, 3 * 10 + 2 * 5);
        let f32 = StorageLayout::with_element(
            &[TableSpec::whole(3, 8)],
            SparseOptimizer::RowwiseAdagrad { eps: 1e-8 },
            Element::F32,
            1 << 20,
        )
        .expect("f32");
        assert_eq!(
            (f32.unit_bytes(), f32.tables[0].stride4, f32.chunk_shift),
            (16, 3, 16)
        );
    }

    #[test]
    fn f16_rows_round_trip_and_round_to_nearest_even() {
        let adam = SparseOptimizer::Adam {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
        };
        for opt in [
            SparseOptimizer::Sgd,
            SparseOptimizer::RowwiseAdagrad { eps: 1e-8 },
            adam,
        ] {
            let l = layout(opt);
            let stride = l.raw_stride(0);
            let mut raw: Vec<f32> = (0..3 * stride).map(|i| i as f32 * 0.37 - 3.0).collect();
            if let SparseOptimizer::RowwiseAdagrad { .. } = opt {
                for row in raw.chunks_mut(stride) {
                    row[9..12].fill(0.0); // the kernel keeps only .x of Adagrad's state vec4
                }
            }
            let words = from_raw(&l, 0, &raw);
            assert_eq!(words.len(), 3 * row_words(&l, 0), "{opt:?}");
            let back = to_raw(&l, 0, &words);
            for (r, (a, b)) in raw.chunks(stride).zip(back.chunks(stride)).enumerate() {
                for c in 0..8 {
                    assert_eq!(
                        b[c],
                        f16::from_f32(a[c]).to_f32(),
                        "{opt:?} row {r} col {c}"
                    );
                }
                assert_eq!(a[8..], b[8..], "{opt:?} row {r}: f32 state is kept exactly");
            }
        }
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even gives 1.
        let l = layout(SparseOptimizer::Sgd);
        let tie = 1.0 + 2f32.powi(-11);
        let words = from_raw(&l, 1, &[tie, 1.0 + 3.0 * 2f32.powi(-11), -2.5, 0.0]);
        assert_eq!(
            to_raw(&l, 1, &words),
            vec![1.0, 1.0 + 2.0 * 2f32.powi(-10), -2.5, 0.0]
        );
    }
}
