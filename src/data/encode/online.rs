//! The [`Encoder`]'s side of online learning with new ids: the streaming trainer calls
//! [`Encoder::observe`] on each batch before encoding it, re-initialises the rows it returns,
//! reports [`Encoder::id_map_stats`], and keeps [`Encoder::online_state`] in its checkpoint so
//! that a resume continues the maps bit for bit ([`Encoder::restore_online_state`]).
//!
//! Only categorical features with `capacity` have a dynamic map; a bag keeps its frozen
//! vocabulary, and a sequence reads its item and side features' vocabularies at encode time, so
//! its behaviours follow the live map. Only a feature's own column is observed: ids that appear
//! only inside behaviour sequences do not count as sightings.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Encoder;
use crate::data::batch::Batch;
use crate::data::idmap::{IdMap, IdMapCounters, IdMapState};
use crate::error::{Error, Result};

const FORMAT: &str = "wgrec-id-maps";

// The serving process shares one encoder between threads and the trainer clones it for each
// snapshot: a map that broke either would fail to compile here rather than at the caller.
const _: fn() = || {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Encoder>();
};

/// Rows of one feature that got a new owner in [`Encoder::observe`] (re-initialise them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshRows {
    /// The config feature index.
    pub feature: usize,
    /// The rows, in admission order.
    pub rows: Vec<u32>,
}

/// What one feature's dynamic id map did so far ([`Encoder::id_map_stats`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdMapStats {
    /// The config feature index.
    pub feature: usize,
    /// The feature's name.
    pub name: String,
    /// Admissions, evictions, expiries, lookups.
    pub counters: IdMapCounters,
    /// Rows owned by ids.
    pub live: u32,
    /// Rows ids can own (the table has one more, the OOV row).
    pub capacity: u32,
    /// Ids counting sightings towards admission.
    pub pending: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedMaps {
    format: String,
    version: u32,
    maps: Vec<SavedMap>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedMap {
    feature: usize,
    name: String,
    state: IdMapState,
}

impl Encoder {
    /// The features with a dynamic id map: (config index, name, map).
    fn id_maps(&self) -> impl Iterator<Item = (usize, &str, &IdMap)> {
        let features = self.features().iter().enumerate();
        features.filter_map(|(i, f)| {
            let map = f.vocabulary()?.id_map()?;
            Some((i, self.names[i].as_str(), map))
        })
    }

    /// Whether any feature has a dynamic id map (`capacity`).
    pub fn has_dynamic_ids(&self) -> bool {
        self.id_maps().next().is_some()
    }

    /// Online learning: expires, then records every id of `batch` (rows in order) at `step` in
    /// each dynamic map, before the batch is encoded; returns the rows re-owned, per feature
    /// (features with none omitted, rows in admission order). Counts OOV lookups. `file` names
    /// the batch's source in errors (an unfitted encoder, a batch of another schema, a step
    /// before one already observed: then no map changed).
    pub fn observe(&mut self, batch: &Batch, file: &str, step: u64) -> Result<Vec<FreshRows>> {
        let all: Vec<usize> = (0..batch.rows).collect();
        self.observe_rows(batch, file, &all, step)
    }

    /// [`Self::observe`] for rows `rows` of `batch`, in that order: the rows that will be encoded
    /// (with `skip_bad_rows`, those [`Self::check_row`] accepts). A row past the batch is an error.
    pub fn observe_rows(
        &mut self,
        batch: &Batch,
        file: &str,
        rows: &[usize],
        step: u64,
    ) -> Result<Vec<FreshRows>> {
        if !self.is_fitted() {
            return Err(Error::data(file, "the encoder is not fitted"));
        }
        self.check_batch(batch, file, None)?;
        if let Some(&r) = rows.iter().find(|&&r| r >= batch.rows) {
            self.check_batch(batch, file, Some(r))?;
        }
        if let Some((_, name, map)) = self.id_maps().find(|(_, _, m)| m.step() > step) {
            return Err(Error::data(
                file,
                format!(
                    "step {step} is before step {} that feature {name:?}'s id map already saw",
                    map.step()
                ),
            ));
        }
        let mut fresh = Vec::new();
        for (feature, f) in self.features_mut().iter_mut().enumerate() {
            let re_owned = f.observe(batch, file, rows, step)?;
            if !re_owned.is_empty() {
                fresh.push(FreshRows {
                    feature,
                    rows: re_owned,
                });
            }
        }
        Ok(fresh)
    }

    /// Per dynamic feature: its name, counters, live rows and pending ids.
    pub fn id_map_stats(&self) -> Vec<IdMapStats> {
        (self.id_maps())
            .map(|(feature, name, map)| IdMapStats {
                feature,
                name: name.to_string(),
                counters: map.counters(),
                live: map.live(),
                capacity: map.options().capacity,
                pending: map.pending(),
            })
            .collect()
    }

    /// Every dynamic map's full state, as JSON (for a checkpoint's metadata):
    /// `{"format": "wgrec-id-maps", "version": 1, "maps": [{"feature", "name", "state"}]}`.
    pub fn online_state(&self) -> Result<String> {
        let maps = (self.id_maps())
            .map(|(feature, name, map)| SavedMap {
                feature,
                name: name.to_string(),
                state: map.state(),
            })
            .collect();
        let saved = SavedMaps {
            format: FORMAT.into(),
            version: 1,
            maps,
        };
        serde_json::to_string(&saved).map_err(|e| Error::data("id maps", e))
    }

    /// Restores what [`Self::online_state`] wrote (`file` names the checkpoint in errors): the
    /// same dynamic features with the same options, each state consistent. All or nothing: on
    /// error no map changed.
    pub fn restore_online_state(&mut self, json: &str, file: &Path) -> Result<()> {
        let bad = |key: &str, m: String| Error::checkpoint(file, Some(key), m);
        let saved: SavedMaps = serde_json::from_str(json)
            .map_err(|e| bad("id_maps", format!("not the id maps' state: {e}")))?;
        if saved.format != FORMAT || saved.version != 1 {
            let m = format!(
                "{:?} version {} (expected {FORMAT:?} version 1)",
                saved.format, saved.version
            );
            return Err(bad("id_maps.format", m));
        }
        let expected: Vec<(usize, String, IdMap)> = (self.id_maps())
            .map(|(i, n, m)| (i, n.to_string(), m.clone()))
            .collect();
        let found: Vec<(usize, &str)> = (saved.maps.iter())
            .map(|m| (m.feature, m.name.as_str()))
            .collect();
        let wanted: Vec<(usize, &str)> = (expected.iter())
            .map(|(i, n, _)| (*i, n.as_str()))
            .collect();
        if found != wanted {
            let m =
                format!("maps of features {found:?}, the model's dynamic features are {wanted:?}");
            return Err(bad("id_maps.maps", m));
        }
        let mut restored = Vec::with_capacity(expected.len());
        for (k, (s, (_, name, current))) in saved.maps.iter().zip(&expected).enumerate() {
            let key = format!("id_maps.maps[{k}].state");
            if s.state.options != current.options() {
                let m = format!(
                    "feature {name:?}: saved options {:?}, the model's {:?}",
                    s.state.options,
                    current.options()
                );
                return Err(bad(&format!("{key}.options"), m));
            }
            restored.push(IdMap::from_state(&s.state, file, &key)?);
        }
        for ((feature, ..), map) in expected.iter().zip(restored) {
            let slot = self.features_mut()[*feature].id_map_mut();
            *slot.expect("a feature with a dynamic id map") = map;
        }
        Ok(())
    }
}
