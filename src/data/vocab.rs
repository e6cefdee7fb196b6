//! Id vocabularies: the map from a raw id string to an embedding-table row.
//!
//! - **Counted** ([`Vocabulary::counted`]): built from the training split by a
//!   [`VocabularyCounter`]. Ids seen at least `min_count` times get rows 1, 2, … in order of
//!   descending count, ties broken by the id's bytes, so the rows depend only on the counts and
//!   never on reading order or threads; rarer ids and ids never seen share row 0
//!   ([`OOV_ROW`]).
//! - **Hashed** ([`Vocabulary::hashed`]): `rows` rows, id → `⌊stable_hash(id) · rows / 2^64⌋`
//!   with [`stable_hash`] = 64-bit FNV-1a of the UTF-8 bytes followed by the MurmurHash3 `fmix64`
//!   finaliser. Fixed constants, no key, no per-process randomness: the same id maps to the same
//!   row on every machine and run, which online learning needs as new ids keep arriving.
//! - **Dynamic** ([`Vocabulary::dynamic`]): an [`IdMap`] of `capacity` rows plus the OOV row; ids
//!   get rows while online training runs, collision-free (a categorical feature with
//!   `capacity`). Seeded from the counted vocabulary of the training split; [`Self::row`] is the
//!   read-only lookup and [`Self::id_map_mut`] is how the trainer records sightings.
//!
//! Saved as a small JSON file, written atomically:
//! `{"format": "wgrec-vocabulary", "version": 1, "kind": "counted", "min_count": 2,
//! "tokens": ["a", "b"], "counts": [9, 4]}` (token `i` is row `i + 1`) or
//! `{"format": "wgrec-vocabulary", "version": 1, "kind": "hashed", "rows": 1000,
//! "hash": "fnv1a64-fmix64"}` or `{"format": "wgrec-vocabulary", "version": 1, "kind": "dynamic",
//! "state": {…}}` with the map's full [`IdMapState`] (so a run's and a snapshot's `encoder/` carry
//! the map as it was when written).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::batch::ColumnData;
use super::idmap::{IdMap, IdMapState};
use crate::checkpoint::write_atomically;
use crate::error::{Error, Result};

/// The row shared by ids below the minimum count and ids never seen in training.
pub const OOV_ROW: u32 = 0;

const FORMAT: &str = "wgrec-vocabulary";
const HASH: &str = "fnv1a64-fmix64";

/// 64-bit FNV-1a of `token`'s bytes, then MurmurHash3's `fmix64` so that the high bits (which pick
/// the row) depend on every byte.
pub fn stable_hash(token: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in token.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Counts ids over the training split.
#[derive(Debug, Default, Clone)]
pub struct VocabularyCounter {
    counts: HashMap<String, u64>,
}

impl VocabularyCounter {
    /// An empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one occurrence of `token`.
    pub fn add(&mut self, token: &str) {
        match self.counts.get_mut(token) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(token.to_string(), 1);
            }
        }
    }

    /// Counts every id of a categorical, multi-hot or sequence column of a batch; other columns
    /// hold no ids and are an error naming their type.
    pub fn add_column(&mut self, column: &ColumnData) -> Result<()> {
        match column {
            ColumnData::Categorical(tokens) => tokens.iter().for_each(|t| self.add(t)),
            ColumnData::MultiHot(r) | ColumnData::Sequence(r) => {
                r.values.iter().for_each(|t| self.add(t))
            }
            other => {
                return Err(Error::data(
                    "vocabulary",
                    format!("a {} column holds no ids", other.type_name()),
                ))
            }
        }
        Ok(())
    }

    /// Distinct ids counted.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Counted {
        min_count: u64,
        tokens: Vec<String>,
        counts: Vec<u64>,
        rows: HashMap<String, u32>,
    },
    Hashed {
        rows: u32,
    },
    Dynamic(IdMap),
}

/// A map from id strings to table rows (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    kind: Kind,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedVocabulary {
    format: String,
    version: u32,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counts: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<IdMapState>,
}

impl Vocabulary {
    /// Ids counted at least `min_count` times get their own rows (1, 2, … by descending count,
    /// then by bytes); the rest share [`OOV_ROW`]. `min_count` 0 and 1 both keep every id seen.
    pub fn counted(counter: &VocabularyCounter, min_count: u64) -> Result<Self> {
        let min_count = min_count.max(1);
        let mut kept: Vec<(&String, u64)> = counter
            .counts
            .iter()
            .filter(|(_, &n)| n >= min_count)
            .map(|(t, &n)| (t, n))
            .collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let tokens = kept.iter().map(|(t, _)| (*t).clone()).collect();
        let counts = kept.iter().map(|(_, n)| *n).collect();
        Self::from_tokens(tokens, counts, min_count, "vocabulary")
    }

    fn from_tokens(
        tokens: Vec<String>,
        counts: Vec<u64>,
        min_count: u64,
        file: &str,
    ) -> Result<Self> {
        if tokens.len() >= u32::MAX as usize {
            return Err(Error::data(
                file,
                format!("{} ids do not fit u32 rows", tokens.len()),
            ));
        }
        let mut rows = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            if rows.insert(t.clone(), i as u32 + 1).is_some() {
                return Err(Error::data(file, format!("id {t:?} appears twice")));
            }
        }
        Ok(Vocabulary {
            kind: Kind::Counted {
                min_count,
                tokens,
                counts,
                rows,
            },
        })
    }

    /// Hashing into `rows` rows (1 ≤ rows ≤ 2^32 − 1); no out-of-vocabulary row.
    pub fn hashed(rows: u64) -> Result<Self> {
        if rows == 0 || rows > u64::from(u32::MAX) {
            return Err(Error::data(
                "vocabulary",
                format!("hash_rows = {rows} must be between 1 and {}", u32::MAX),
            ));
        }
        Ok(Vocabulary {
            kind: Kind::Hashed { rows: rows as u32 },
        })
    }

    /// A dynamic vocabulary: `map`'s rows, the OOV row included.
    pub fn dynamic(map: IdMap) -> Self {
        Vocabulary {
            kind: Kind::Dynamic(map),
        }
    }

    /// The tokens of a counted vocabulary, by row (row `i + 1` is token `i`; empty otherwise).
    pub fn tokens(&self) -> &[String] {
        match &self.kind {
            Kind::Counted { tokens, .. } => tokens,
            _ => &[],
        }
    }

    /// The id map of a dynamic vocabulary.
    pub fn id_map(&self) -> Option<&IdMap> {
        match &self.kind {
            Kind::Dynamic(map) => Some(map),
            _ => None,
        }
    }

    /// The id map of a dynamic vocabulary, to record sightings or restore a saved state.
    pub fn id_map_mut(&mut self) -> Option<&mut IdMap> {
        match &mut self.kind {
            Kind::Dynamic(map) => Some(map),
            _ => None,
        }
    }

    /// Rows of the embedding table this vocabulary indexes (the OOV row included).
    pub fn rows(&self) -> u32 {
        match &self.kind {
            Kind::Counted { tokens, .. } => tokens.len() as u32 + 1,
            Kind::Hashed { rows } => *rows,
            Kind::Dynamic(map) => map.table_rows(),
        }
    }

    /// Whether ids are hashed rather than looked up (false for a dynamic vocabulary).
    pub fn is_hashed(&self) -> bool {
        matches!(self.kind, Kind::Hashed { .. })
    }

    /// The row of `token`.
    pub fn row(&self, token: &str) -> u32 {
        match &self.kind {
            Kind::Counted { rows, .. } => rows.get(token).copied().unwrap_or(OOV_ROW),
            Kind::Hashed { rows } => {
                ((u128::from(stable_hash(token)) * u128::from(*rows)) >> 64) as u32
            }
            Kind::Dynamic(map) => map.row(token),
        }
    }

    /// The id that owns `row` in a counted or dynamic vocabulary (`None` for the OOV row, a free
    /// row, past the end, or when hashed).
    pub fn token(&self, row: u32) -> Option<&str> {
        match &self.kind {
            Kind::Counted { tokens, .. } if row != OOV_ROW => {
                tokens.get(row as usize - 1).map(String::as_str)
            }
            Kind::Dynamic(map) => map.owner(row),
            _ => None,
        }
    }

    /// Writes the vocabulary to `path` atomically (see the module docs for the format).
    pub fn save(&self, path: &Path) -> Result<()> {
        let none = SavedVocabulary {
            format: FORMAT.into(),
            version: 1,
            kind: String::new(),
            min_count: None,
            tokens: None,
            counts: None,
            rows: None,
            hash: None,
            state: None,
        };
        let saved = match &self.kind {
            Kind::Counted {
                min_count,
                tokens,
                counts,
                ..
            } => SavedVocabulary {
                kind: "counted".into(),
                min_count: Some(*min_count),
                tokens: Some(tokens.clone()),
                counts: Some(counts.clone()),
                ..none
            },
            Kind::Hashed { rows } => SavedVocabulary {
                kind: "hashed".into(),
                rows: Some(u64::from(*rows)),
                hash: Some(HASH.into()),
                ..none
            },
            Kind::Dynamic(map) => SavedVocabulary {
                kind: "dynamic".into(),
                state: Some(map.state()),
                ..none
            },
        };
        let name = path.display().to_string();
        let json = serde_json::to_vec(&saved).map_err(|e| Error::data(&name, e))?;
        write_atomically(path, |temporary| {
            std::fs::write(temporary, &json).map_err(|e| Error::data(temporary.display(), e))
        })
    }

    /// Reads a vocabulary written by [`Self::save`]; a missing file, another format or version,
    /// or inconsistent fields are errors naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let bad = |m: String| Error::data(&name, m);
        let text = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let s: SavedVocabulary =
            serde_json::from_slice(&text).map_err(|e| bad(format!("not a vocabulary: {e}")))?;
        if s.format != FORMAT || s.version != 1 {
            return Err(bad(format!(
                "format {:?} version {} (expected {FORMAT:?} version 1)",
                s.format, s.version
            )));
        }
        if s.kind == "dynamic" {
            return match (s.state, s.tokens, s.counts, s.min_count, s.rows, s.hash) {
                (Some(state), None, None, None, None, None) => {
                    Ok(Self::dynamic(IdMap::from_state(&state, path, "state")?))
                }
                _ => Err(bad(
                    "kind \"dynamic\" needs a state and no other field".into()
                )),
            };
        }
        if s.state.is_some() {
            return Err(bad(format!("kind {:?} with a state", s.kind)));
        }
        match (s.kind.as_str(), s.tokens, s.counts, s.min_count, s.rows) {
            ("counted", Some(tokens), Some(counts), Some(min_count), None) => {
                if counts.len() != tokens.len() {
                    return Err(bad(format!(
                        "{} counts for {} tokens",
                        counts.len(),
                        tokens.len()
                    )));
                }
                Self::from_tokens(tokens, counts, min_count, &name)
            }
            ("hashed", None, None, None, Some(rows)) => {
                if s.hash.as_deref() != Some(HASH) {
                    return Err(bad(format!("hash {:?} (expected {HASH:?})", s.hash)));
                }
                Self::hashed(rows).map_err(|e| bad(e.to_string()))
            }
            (kind, ..) => Err(bad(format!(
                "kind {kind:?} with missing or extra fields (counted: tokens, counts, \
                 min_count; hashed: rows, hash; dynamic: state)"
            ))),
        }
    }
}
