//! A categorical feature's dynamic id map keys (`capacity`, `admit_after`, `expire_after`): the
//! options they make ([`crate::data::IdMap`]) and their checks against each other and
//! `hash_rows`.

use super::FeatureKind;
use crate::config::bad;
use crate::data::idmap::IdMapOptions;
use crate::error::Result;

impl FeatureKind {
    /// The id map options of a categorical feature with `capacity` (`None` otherwise).
    pub fn id_map_options(&self) -> Option<IdMapOptions> {
        match self {
            FeatureKind::Categorical {
                capacity: Some(capacity),
                admit_after,
                expire_after,
                ..
            } => Some(IdMapOptions {
                capacity: *capacity,
                admit_after: admit_after.unwrap_or(1),
                expire_after: expire_after.unwrap_or(0),
            }),
            _ => None,
        }
    }
}

/// A categorical feature hashes or has a dynamic id map, not both; the map's keys need
/// `capacity`, which needs at least one row.
pub(super) fn validate_categorical(file: &str, i: usize, kind: &FeatureKind) -> Result<()> {
    let FeatureKind::Categorical {
        hash_rows,
        capacity,
        admit_after,
        expire_after,
        ..
    } = kind
    else {
        // Only `Feature::validate`'s categorical arm calls this.
        return Ok(());
    };
    let key = |k: &str| format!("feature[{i}].{k}");
    if *hash_rows == Some(0) {
        return Err(bad(file, key("hash_rows"), "0: needs at least one row"));
    }
    match *capacity {
        Some(_) if hash_rows.is_some() => Err(bad(
            file,
            key("capacity"),
            "a dynamic id map (capacity) and hashing (hash_rows) are two ways to give new ids \
             rows: set one",
        )),
        Some(0) => Err(bad(file, key("capacity"), "0: needs at least one row")),
        Some(c) if c >= MAX_CAPACITY => Err(bad(
            file,
            key("capacity"),
            format!("{c}: at most {} (row ids are 32-bit)", MAX_CAPACITY - 1),
        )),
        None if admit_after.is_some() || expire_after.is_some() => {
            let k = if admit_after.is_some() {
                "admit_after"
            } else {
                "expire_after"
            };
            Err(bad(
                file,
                key(k),
                "only means something with a dynamic id map: set capacity too",
            ))
        }
        _ => Ok(()),
    }
}

/// One more than the largest `capacity`: the table's `capacity + 1` rows must stay within
/// `MAX_HASH_ROWS`, the most rows one table may have.
const MAX_CAPACITY: u32 = crate::config::limits::MAX_HASH_ROWS as u32;
