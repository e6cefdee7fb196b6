//! Features over one embedding storage: which table each reads, how its bag is pooled, whether
//! its values are MNS-encoded, and where its output goes. Packed once into the kernels' meta buffer.

use super::layout::StorageLayout;
use crate::error::{Error, Result};

/// Words per feature in the meta buffer (`FEATURE_WORDS` in the embedding shaders).
const FEATURE_WORDS: usize = 8;

/// How a bag of lookups becomes an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// One output row per lookup.
    None = 0,
    /// Weighted sum of the bag's rows.
    Sum = 1,
    /// Weighted sum divided by the bag length (an empty bag gives zeros).
    Mean = 2,
}

/// One base of an MNS encoding (METHODS.md §1.2): `digits` digits in base `radix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MnsBase {
    /// The base, at least 2.
    pub radix: u32,
    /// Digits kept; values must be below `radix^digits`.
    pub digits: u32,
}

impl MnsBase {
    /// Rows a feature with these bases needs: one block of `radix · digits` rows per base.
    pub fn rows(bases: &[MnsBase]) -> u32 {
        bases.iter().map(|b| b.radix * b.digits).sum()
    }

    /// Values representable in every base (the exclusive upper bound on raw values).
    pub fn limit(bases: &[MnsBase]) -> u64 {
        bases
            .iter()
            .map(|b| (b.radix as u64).saturating_pow(b.digits))
            .min()
            .unwrap_or(0)
    }

    /// The rows value `v` selects, in kernel order (base by base, least significant digit first).
    pub fn digit_rows(bases: &[MnsBase], v: u32) -> impl Iterator<Item = u32> + '_ {
        let mut row0 = 0u32;
        bases.iter().flat_map(move |b| {
            let start = row0;
            row0 += b.radix * b.digits;
            let mut rest = v;
            (0..b.digits).map(move |k| {
                let digit = rest % b.radix;
                rest /= b.radix;
                start + b.radix * k + digit
            })
        })
    }
}

/// One feature: a bag per sample of lookups into one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Table index in the embedding storage (tables may be shared by features).
    pub table: usize,
    /// Pooling of the bag.
    pub pooling: Pooling,
    /// Empty for id lookups; otherwise raw values are MNS-encoded in these bases.
    pub mns: Vec<MnsBase>,
    /// Output float offset of sample 0 (or lookup 0 for pooling none); a multiple of 4.
    pub out_offset: u32,
    /// Floats between consecutive output rows; a multiple of 4, at least the width.
    pub out_stride: u32,
    /// For pooling none: output rows reserved (lookups per batch at most).
    pub max_lookups: u32,
}

/// The validated feature list of one embedding storage and its packed metadata.
#[derive(Debug, Clone)]
pub struct FeatureSet {
    /// Features in bag order (feature-major: bag = feature · B + sample).
    pub features: Vec<FeatureSpec>,
    /// Widths (floats) of each feature's table.
    pub widths: Vec<u32>,
    /// Samples per batch at most.
    pub max_batch: u32,
    /// Floats the output buffer needs.
    pub out_len: u64,
    /// Per feature: the rows of the whole table its storage's part holds (all of them for a whole
    /// table); the update plan keeps only touches inside them.
    pub parts: Vec<std::ops::Range<u32>>,
    pub(crate) meta: Vec<u32>,
    pub(crate) features_at: u32,
    pub(crate) colmap_at: u32,
    pub(crate) mns_at: u32,
    pub(crate) cols4: u32,
}

impl FeatureSet {
    /// Features whose pooled outputs are concatenated as `[B, Σ width]` in order, and whose
    /// unpooled outputs follow as `[max_lookups, width]` blocks.
    pub fn concatenated(
        layout: &StorageLayout,
        features: &[(usize, Pooling, Vec<MnsBase>)],
        max_batch: u32,
        max_lookups: u32,
    ) -> Result<Self> {
        let width = |t: usize| layout.tables.get(t).map(|p| p.width4 * 4).unwrap_or(0);
        let pooled_width: u32 = features
            .iter()
            .filter(|f| f.1 != Pooling::None)
            .map(|f| width(f.0))
            .sum();
        let (mut col, mut block) = (0u32, pooled_width as u64 * max_batch as u64);
        let mut specs = Vec::with_capacity(features.len());
        for (table, pooling, mns) in features {
            let w = width(*table);
            let (out_offset, out_stride) = if *pooling == Pooling::None {
                let at = block;
                block += w as u64 * max_lookups as u64;
                (at, w)
            } else {
                col += w;
                ((col - w) as u64, pooled_width)
            };
            let out_offset = u32::try_from(out_offset)
                .map_err(|_| Error::Layout("output past 2^32 floats".into()))?;
            specs.push(FeatureSpec {
                table: *table,
                pooling: *pooling,
                mns: mns.clone(),
                out_offset,
                out_stride,
                max_lookups,
            });
        }
        Self::new(layout, specs, max_batch)
    }

    /// Validates `features` against `layout` and packs the meta buffer.
    pub fn new(layout: &StorageLayout, features: Vec<FeatureSpec>, max_batch: u32) -> Result<Self> {
        let mut meta = layout.table_words();
        let features_at = meta.len() as u32;
        let (mut colmap, mut mns_words, mut widths) = (Vec::new(), Vec::new(), Vec::new());
        let mut parts = Vec::with_capacity(features.len());
        let mut out_len = 0u64;
        for (f, spec) in features.iter().enumerate() {
            let placed = layout.tables.get(spec.table).ok_or_else(|| {
                Error::Layout(format!(
                    "feature {f}: table {} does not exist ({} tables)",
                    spec.table,
                    layout.tables.len()
                ))
            })?;
            let width = placed.width4 * 4;
            if !spec.out_offset.is_multiple_of(4)
                || !spec.out_stride.is_multiple_of(4)
                || spec.out_stride < width
            {
                return Err(Error::Layout(format!(
                    "feature {f}: output offset {} and stride {} must be multiples of 4, stride at \
                     least the width {width}",
                    spec.out_offset, spec.out_stride
                )));
            }
            if !spec.mns.is_empty() {
                check_mns(f, &spec.mns, placed.whole_rows)?;
            }
            let rows_out = if spec.pooling == Pooling::None {
                spec.max_lookups
            } else {
                max_batch
            };
            if rows_out > 0 {
                let end = spec.out_offset as u64 + (rows_out as u64 - 1) * spec.out_stride as u64;
                out_len = out_len.max(end + width as u64);
            }
            meta.extend([
                spec.table as u32,
                spec.pooling as u32,
                spec.out_offset / 4,
                spec.out_stride / 4,
                (mns_words.len() / 3) as u32,
                spec.mns.len() as u32,
                colmap.len() as u32,
                0,
            ]);
            let mut row0 = 0;
            for base in &spec.mns {
                mns_words.extend([base.radix, base.digits, row0]);
                row0 += base.radix * base.digits;
            }
            colmap.extend(std::iter::repeat_n(f as u32, placed.width4 as usize));
            widths.push(width);
            parts.push(placed.first_row..placed.first_row + placed.rows);
        }
        if out_len > u32::MAX as u64 * 4 {
            return Err(Error::Layout(format!(
                "output of {out_len} floats is past 2^32 vec4s"
            )));
        }
        let colmap_at = meta.len() as u32;
        let cols4 = colmap.len() as u32;
        meta.extend(colmap);
        let mns_at = meta.len() as u32;
        meta.extend(mns_words);
        Ok(FeatureSet {
            features,
            widths,
            max_batch,
            out_len,
            parts,
            meta,
            features_at,
            colmap_at,
            mns_at,
            cols4,
        })
    }

    /// Marks the features of `accumulate` (indices) as adding to their output instead of
    /// writing it: the later gathers of a feature whose table is split over several storages
    /// (the first writes). Words only: no validation to redo.
    pub fn accumulate(mut self, accumulate: &[usize]) -> Result<Self> {
        for &f in accumulate {
            if f >= self.features.len() {
                return Err(Error::Layout(format!(
                    "feature {f} to accumulate does not exist ({} features)",
                    self.features.len()
                )));
            }
            self.meta[(self.features_at as usize) + f * FEATURE_WORDS + 7] = 1;
        }
        Ok(self)
    }

    /// Number of features (bags per sample).
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Whether there are no features.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }
}

fn check_mns(f: usize, bases: &[MnsBase], rows: u32) -> Result<()> {
    if let Some(b) = bases.iter().find(|b| b.radix < 2 || b.digits == 0) {
        return Err(Error::Layout(format!(
            "feature {f}: MNS base {} with {} digits (base ≥ 2, digits ≥ 1)",
            b.radix, b.digits
        )));
    }
    let need = bases
        .iter()
        .map(|b| b.radix as u64 * b.digits as u64)
        .sum::<u64>();
    if need > rows as u64 {
        return Err(Error::Layout(format!(
            "feature {f}: MNS bases need {need} rows, its table has {rows}"
        )));
    }
    Ok(())
}
