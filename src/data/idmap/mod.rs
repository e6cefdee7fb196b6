//! The dynamic id → row map of one categorical feature with `capacity` (online learning): new
//! ids get rows while training runs, without rebuilding the table.
//!
//! The table has `capacity + 1` rows. Row 0 is [`OOV_ROW`], shared by every id without a row;
//! rows `1..=capacity` are each owned by at most one id, so two ids never share a row (unlike
//! hashing). The map lives on the host and is part of the checkpoint ([`IdMapState`]).
//!
//! - **Admission** ([`IdMap::observe`]): an id without a row counts its sightings (it is
//!   *pending* and reads the OOV row); at `admit_after` sightings (0 and 1 both mean the first) it
//!   takes the lowest-numbered free row, or, when none is free, the row of the least recently
//!   seen id (ties: the lowest row), whose id is forgotten (*evicted*). A row seen in the current
//!   step is never taken: if every row was, the id stays pending and tries again at its next
//!   sighting. Each admission gives a row a new owner, and the caller re-initialises that row's
//!   weights and optimizer state before the batch is used.
//! - **Expiry** ([`IdMap::expire`]): with `expire_after > 0`, a row whose id was last seen more
//!   than `expire_after` steps ago is freed and its id forgotten; so is a pending id.
//! - **Pending bound**: at most `4 × capacity` pending ids are remembered; past that the least
//!   recently seen one (ties: the smallest id) other than the id just seen is dropped, and it
//!   starts counting again from nothing.
//!
//! Every decision goes through ordered sets (`(last_seen, row)` for eviction and expiry,
//! `(last_seen, id)` for the pending bound), so each operation is O(log n) and the rows depend
//! only on the sequence of calls, never on hash-map iteration order or time.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::data::vocab::OOV_ROW;
use crate::error::{Error, Result};

/// How many pending ids per row of capacity the map remembers.
pub const PENDING_PER_ROW: usize = 4;

/// The keys of a dynamic categorical feature (`capacity`, `admit_after`, `expire_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMapOptions {
    /// Rows owned by ids (the table has one more, the OOV row); ≥ 1.
    pub capacity: u32,
    /// Sightings before an id gets a row (0 and 1: the first).
    pub admit_after: u32,
    /// Steps unseen after which a row is freed (0: never).
    pub expire_after: u64,
}

/// What the map did since it was built (or seeded), for `/metrics` and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMapCounters {
    /// Admissions (each gave a row a new owner).
    pub admitted: u64,
    /// Admissions that took the row of the least recently seen id.
    pub evicted: u64,
    /// Rows freed by expiry.
    pub expired: u64,
    /// Sightings after which the id still read the OOV row.
    pub oov_lookups: u64,
    /// Sightings ([`IdMap::observe`] calls).
    pub lookups: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    id: String,
    last_seen: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    count: u32,
    last_seen: u64,
}

/// A fixed-capacity, collision-free id → row map (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    options: IdMapOptions,
    /// The latest step passed to `observe` or `expire`.
    step: u64,
    /// `owners[r - 1]`: the id owning row `r`, if any.
    owners: Vec<Option<Owner>>,
    /// id → row; looked up, never iterated.
    rows: HashMap<String, u32>,
    free: BTreeSet<u32>,
    /// `(last_seen, row)` of every owned row: eviction takes the first, expiry pops the front.
    recency: BTreeSet<(u64, u32)>,
    /// id → sightings; looked up, never iterated.
    pending: HashMap<String, Pending>,
    /// `(last_seen, id)` of every pending id.
    pending_recency: BTreeSet<(u64, String)>,
    counters: IdMapCounters,
}

impl IdMap {
    /// An empty map (every row free) at step 0; `capacity` 0 is an error.
    pub fn new(options: IdMapOptions) -> Result<Self> {
        if options.capacity == 0 || options.capacity == u32::MAX {
            return Err(Error::data(
                "id map",
                format!(
                    "capacity {} must be between 1 and {}",
                    options.capacity,
                    u32::MAX - 1
                ),
            ));
        }
        Ok(IdMap {
            options,
            step: 0,
            owners: vec![None; options.capacity as usize],
            rows: HashMap::new(),
            free: (1..=options.capacity).collect(),
            recency: BTreeSet::new(),
            pending: HashMap::new(),
            pending_recency: BTreeSet::new(),
            counters: IdMapCounters::default(),
        })
    }

    /// A map seeded with a fitted vocabulary: token `i` owns row `i + 1`, last seen at step 0;
    /// tokens past `capacity` are left out (give them most frequent first, as
    /// [`crate::data::Vocabulary::counted`] orders them). Repeated tokens are an error.
    pub fn from_fitted<'a>(
        options: IdMapOptions,
        tokens: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self> {
        let mut map = Self::new(options)?;
        for (i, token) in tokens
            .into_iter()
            .take(options.capacity as usize)
            .enumerate()
        {
            map.assign(token.to_string(), i as u32 + 1, 0)
                .map_err(|m| Error::data("id map", m))?;
        }
        Ok(map)
    }

    /// Gives free row `row` to `id` (not yet mapped), last seen at `last_seen`.
    fn assign(&mut self, id: String, row: u32, last_seen: u64) -> std::result::Result<(), String> {
        if !self.free.remove(&row) {
            return Err(format!("row {row} is owned twice or out of range"));
        }
        if self.rows.insert(id.clone(), row).is_some() {
            return Err(format!("id {id:?} owns two rows"));
        }
        self.recency.insert((last_seen, row));
        self.owners[row as usize - 1] = Some(Owner { id, last_seen });
        Ok(())
    }

    /// Frees row `row` (owned), forgetting its id.
    fn release(&mut self, row: u32) {
        if let Some(owner) = self.owners[row as usize - 1].take() {
            self.rows.remove(&owner.id);
            self.recency.remove(&(owner.last_seen, row));
            self.free.insert(row);
        }
    }

    /// The options the map was built with.
    pub fn options(&self) -> IdMapOptions {
        self.options
    }

    /// The latest step passed to [`Self::observe`] or [`Self::expire`].
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The row of `id` ([`OOV_ROW`] when it has none); changes nothing, counts nothing.
    pub fn row(&self, id: &str) -> u32 {
        self.rows.get(id).copied().unwrap_or(OOV_ROW)
    }

    /// The id owning `row`, if any.
    pub fn owner(&self, row: u32) -> Option<&str> {
        let owner = self.owners.get((row as usize).checked_sub(1)?)?;
        owner.as_ref().map(|o| o.id.as_str())
    }

    /// Rows owned by ids.
    pub fn live(&self) -> u32 {
        self.rows.len() as u32
    }

    /// Ids counting sightings towards admission.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// What the map did so far.
    pub fn counters(&self) -> IdMapCounters {
        self.counters
    }

    /// Rows of the table, the OOV row included: `capacity + 1`.
    pub fn table_rows(&self) -> u32 {
        self.options.capacity + 1
    }

    /// `Err` (naming `what`) if `step` is before the latest step seen; else makes it current.
    fn advance(&mut self, step: u64) -> std::result::Result<(), String> {
        if step < self.step {
            return Err(format!(
                "step {step} is before step {} the id map already saw (steps never go back)",
                self.step
            ));
        }
        self.step = step;
        Ok(())
    }

    /// One sighting of `id` at `step` (not before the latest step seen, which is the error's
    /// message otherwise): refreshes a mapped id, or counts a pending one and admits it at
    /// `admit_after` sightings. Returns the row that got `id` as its new owner, if any.
    pub fn observe(&mut self, id: &str, step: u64) -> std::result::Result<Option<u32>, String> {
        self.advance(step)?;
        self.counters.lookups += 1;
        if let Some(&row) = self.rows.get(id) {
            let owner = self.owners[row as usize - 1]
                .as_mut()
                .expect("a mapped id's row has that id as owner");
            if owner.last_seen != step {
                self.recency.remove(&(owner.last_seen, row));
                owner.last_seen = step;
                self.recency.insert((step, row));
            }
            return Ok(None);
        }
        let count = self.count_sighting(id, step);
        let admitted = if count >= self.options.admit_after.max(1) {
            self.admit(id, step)
        } else {
            None
        };
        if admitted.is_none() {
            self.counters.oov_lookups += 1;
            self.bound_pending(id);
        }
        Ok(admitted)
    }

    /// Counts a sighting of pending `id` at `step`; returns its sightings so far.
    fn count_sighting(&mut self, id: &str, step: u64) -> u32 {
        let (count, before) = match self.pending.get_mut(id) {
            Some(p) => {
                let before = p.last_seen;
                p.count = p.count.saturating_add(1);
                p.last_seen = step;
                (p.count, Some(before))
            }
            None => {
                let first = Pending {
                    count: 1,
                    last_seen: step,
                };
                self.pending.insert(id.to_string(), first);
                (1, None)
            }
        };
        if before != Some(step) {
            if let Some(before) = before {
                self.pending_recency.remove(&(before, id.to_string()));
            }
            self.pending_recency.insert((step, id.to_string()));
        }
        count
    }

    /// Gives pending `id` a row (free, or the least recently seen one unless it was seen at
    /// `step`); `None` when every row was seen at `step`.
    fn admit(&mut self, id: &str, step: u64) -> Option<u32> {
        let row = match self.free.first() {
            Some(&row) => row,
            None => {
                let &(last_seen, row) = self.recency.first()?;
                if last_seen >= step {
                    return None;
                }
                self.release(row);
                self.counters.evicted += 1;
                row
            }
        };
        self.forget_pending(id);
        self.assign(id.to_string(), row, step)
            .expect("a free row for an id without one");
        self.counters.admitted += 1;
        Some(row)
    }

    fn forget_pending(&mut self, id: &str) {
        if let Some(p) = self.pending.remove(id) {
            self.pending_recency.remove(&(p.last_seen, id.to_string()));
        }
    }

    /// Drops the least recently seen pending id other than `keep` while more than
    /// `PENDING_PER_ROW × capacity` are pending.
    fn bound_pending(&mut self, keep: &str) {
        let limit = PENDING_PER_ROW * self.options.capacity as usize;
        while self.pending.len() > limit {
            let oldest = (self.pending_recency.iter())
                .find(|(_, id)| id != keep)
                .map(|(_, id)| id.clone());
            match oldest {
                Some(id) => self.forget_pending(&id),
                None => break,
            }
        }
    }

    /// Frees every row whose id was last seen more than `expire_after` steps before `step` and
    /// forgets pending ids unseen as long (nothing with `expire_after = 0`). `step` must not be
    /// before the latest step seen (the error's message otherwise).
    pub fn expire(&mut self, step: u64) -> std::result::Result<(), String> {
        self.advance(step)?;
        let after = self.options.expire_after;
        if after == 0 {
            return Ok(());
        }
        let stale = |last_seen: u64| step - last_seen > after;
        while let Some(&(last_seen, row)) = self.recency.first() {
            if !stale(last_seen) {
                break;
            }
            self.release(row);
            self.counters.expired += 1;
        }
        while let Some((last_seen, id)) = self.pending_recency.first().cloned() {
            if !stale(last_seen) {
                break;
            }
            self.forget_pending(&id);
        }
        Ok(())
    }
}

mod state;
pub use state::{IdMapState, OwnedRow, PendingId};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_vocabulary;
