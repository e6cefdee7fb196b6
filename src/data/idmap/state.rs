//! An [`IdMap`]'s full state as plain data, for checkpoints and the saved encoder: the options,
//! the current step, every owned row's id and last sighting (in row order), every pending id's
//! sightings and last sighting (by id), and the counters. [`IdMap::state`] then
//! [`IdMap::from_state`] gives back the same map, bit for bit; the load checks the state (rows in
//! range and owned once, ids unique, sightings not after the step) and names the file and key of
//! what is wrong.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{IdMap, IdMapCounters, IdMapOptions, Pending, PENDING_PER_ROW};
use crate::error::{Error, Result};

/// One owned row of an [`IdMapState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnedRow {
    /// The row, `1..=capacity`.
    pub row: u32,
    /// Its id.
    pub id: String,
    /// The step of the id's last sighting.
    pub last_seen: u64,
}

/// One pending id of an [`IdMapState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingId {
    /// The id.
    pub id: String,
    /// Its sightings so far (≥ 1).
    pub count: u32,
    /// The step of its last sighting.
    pub last_seen: u64,
}

/// Everything an [`IdMap`] holds (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMapState {
    /// The map's options.
    pub options: IdMapOptions,
    /// The latest step the map saw.
    pub step: u64,
    /// Owned rows, by row.
    pub owned: Vec<OwnedRow>,
    /// Pending ids, by id.
    pub pending: Vec<PendingId>,
    /// The counters.
    pub counters: IdMapCounters,
}

impl IdMap {
    /// The map's full state (owned rows by row, pending ids by id).
    pub fn state(&self) -> IdMapState {
        let owned = (self.owners.iter().enumerate())
            .filter_map(|(i, o)| {
                let o = o.as_ref()?;
                Some(OwnedRow {
                    row: i as u32 + 1,
                    id: o.id.clone(),
                    last_seen: o.last_seen,
                })
            })
            .collect();
        let mut pending: Vec<PendingId> = (self.pending_recency.iter())
            .map(|(_, id)| PendingId {
                id: id.clone(),
                count: self.pending[id].count,
                last_seen: self.pending[id].last_seen,
            })
            .collect();
        pending.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        IdMapState {
            options: self.options,
            step: self.step,
            owned,
            pending,
            counters: self.counters,
        }
    }

    /// The map `state` describes; an inconsistent state is an [`Error::Checkpoint`] naming `file`
    /// and the key under `key` (`key.owned[3].row`, …).
    pub fn from_state(state: &IdMapState, file: &Path, key: &str) -> Result<IdMap> {
        let bad = |k: String, m: String| Error::checkpoint(file, Some(&format!("{key}.{k}")), m);
        let mut map =
            IdMap::new(state.options).map_err(|e| bad("options.capacity".into(), e.to_string()))?;
        map.step = state.step;
        let after_step = |last_seen: u64| {
            (last_seen > state.step).then(|| {
                format!(
                    "last seen at step {last_seen}, after the map's step {}",
                    state.step
                )
            })
        };
        for (i, o) in state.owned.iter().enumerate() {
            let k = |f: &str| format!("owned[{i}].{f}");
            if o.row == 0 || o.row > state.options.capacity {
                let m = format!("row {} outside 1..={}", o.row, state.options.capacity);
                return Err(bad(k("row"), m));
            }
            if let Some(m) = after_step(o.last_seen) {
                return Err(bad(k("last_seen"), m));
            }
            map.assign(o.id.clone(), o.row, o.last_seen)
                .map_err(|m| bad(k("id"), m))?;
        }
        let limit = PENDING_PER_ROW * state.options.capacity as usize;
        if state.pending.len() > limit {
            let m = format!("{} pending ids, at most {limit}", state.pending.len());
            return Err(bad("pending".into(), m));
        }
        for (i, p) in state.pending.iter().enumerate() {
            let k = |f: &str| format!("pending[{i}].{f}");
            let problem = if p.count == 0 {
                Some((k("count"), "0 sightings".to_string()))
            } else if map.rows.contains_key(&p.id) {
                Some((k("id"), format!("id {:?} owns a row and is pending", p.id)))
            } else if map.pending.contains_key(&p.id) {
                Some((k("id"), format!("id {:?} is pending twice", p.id)))
            } else {
                after_step(p.last_seen).map(|m| (k("last_seen"), m))
            };
            if let Some((k, m)) = problem {
                return Err(bad(k, m));
            }
            let pending = Pending {
                count: p.count,
                last_seen: p.last_seen,
            };
            map.pending.insert(p.id.clone(), pending);
            map.pending_recency.insert((p.last_seen, p.id.clone()));
        }
        map.counters = state.counters;
        Ok(map)
    }
}
