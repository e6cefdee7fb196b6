//! The id map against a naive reference (Vecs and linear scans, the rules spelled out plainly) on
//! random id streams, plus the rules one at a time and the saved state.

use std::path::Path;

use proptest::prelude::*;

use super::*;

/// The module docs' rules, written as plainly as possible: `rows[r - 1]` is row `r`'s
/// `(id, last_seen)`, `pending` holds `(id, count, last_seen)` in no particular order.
struct Naive {
    options: IdMapOptions,
    rows: Vec<Option<(String, u64)>>,
    pending: Vec<(String, u32, u64)>,
    counters: IdMapCounters,
}

impl Naive {
    fn new(options: IdMapOptions) -> Self {
        Naive {
            options,
            rows: vec![None; options.capacity as usize],
            pending: Vec::new(),
            counters: IdMapCounters::default(),
        }
    }

    fn row(&self, id: &str) -> u32 {
        (self
            .rows
            .iter()
            .position(|r| r.as_ref().is_some_and(|(i, _)| i == id)))
        .map_or(OOV_ROW, |p| p as u32 + 1)
    }

    fn observe(&mut self, id: &str, step: u64) -> Option<u32> {
        self.counters.lookups += 1;
        let row = self.row(id);
        if row != OOV_ROW {
            self.rows[row as usize - 1] = Some((id.to_string(), step));
            return None;
        }
        let p = match self.pending.iter().position(|p| p.0 == id) {
            Some(p) => p,
            None => {
                self.pending.push((id.to_string(), 0, step));
                self.pending.len() - 1
            }
        };
        self.pending[p].1 += 1;
        self.pending[p].2 = step;
        if self.pending[p].1 >= self.options.admit_after.max(1) {
            if let Some(row) = self.take_row(step) {
                self.pending.remove(p);
                self.rows[row] = Some((id.to_string(), step));
                self.counters.admitted += 1;
                return Some(row as u32 + 1);
            }
        }
        self.counters.oov_lookups += 1;
        while self.pending.len() > 4 * self.options.capacity as usize {
            let oldest = (0..self.pending.len())
                .filter(|&q| self.pending[q].0 != id)
                .min_by(|&a, &b| {
                    let (pa, pb) = (&self.pending[a], &self.pending[b]);
                    (pa.2, &pa.0).cmp(&(pb.2, &pb.0))
                })
                .unwrap();
            self.pending.remove(oldest);
        }
        None
    }

    /// The index of the row an admission at `step` takes, emptied.
    fn take_row(&mut self, step: u64) -> Option<usize> {
        if let Some(free) = self.rows.iter().position(Option::is_none) {
            return Some(free);
        }
        let mut oldest = 0;
        for r in 1..self.rows.len() {
            if self.rows[r].as_ref().unwrap().1 < self.rows[oldest].as_ref().unwrap().1 {
                oldest = r;
            }
        }
        if self.rows[oldest].as_ref().unwrap().1 == step {
            return None;
        }
        self.rows[oldest] = None;
        self.counters.evicted += 1;
        Some(oldest)
    }

    fn expire(&mut self, step: u64) {
        let after = self.options.expire_after;
        if after == 0 {
            return;
        }
        for r in self.rows.iter_mut() {
            if r.as_ref().is_some_and(|(_, seen)| step - seen > after) {
                *r = None;
                self.counters.expired += 1;
            }
        }
        self.pending.retain(|p| step - p.2 <= after);
    }
}

fn options(capacity: u32, admit_after: u32, expire_after: u64) -> IdMapOptions {
    IdMapOptions {
        capacity,
        admit_after,
        expire_after,
    }
}

const ALPHABET: usize = 12;

fn id(i: usize) -> String {
    format!("id{i}")
}

/// After every operation the map and the reference agree on every id's row and the counters.
fn agree(map: &IdMap, naive: &Naive) -> std::result::Result<(), TestCaseError> {
    for i in 0..ALPHABET {
        prop_assert_eq!(map.row(&id(i)), naive.row(&id(i)), "row of {}", id(i));
    }
    prop_assert_eq!(map.counters(), naive.counters);
    let live = naive.rows.iter().filter(|r| r.is_some()).count();
    prop_assert_eq!(map.live() as usize, live);
    prop_assert_eq!(map.pending(), naive.pending.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn id_map_matches_the_naive_reference_on_random_streams(
        capacity in 1u32..=8,
        admit_after in 0u32..=3,
        expire_after in 0u64..=5,
        ops in proptest::collection::vec((0usize..ALPHABET, 0u64..=2, 0u8..4), 1..200),
        resume_at in 0usize..200,
    ) {
        let options = options(capacity, admit_after, expire_after);
        let mut map = IdMap::new(options).unwrap();
        let mut naive = Naive::new(options);
        let mut step = 0;
        for (k, &(i, delta, kind)) in ops.iter().enumerate() {
            step += delta;
            if kind == 0 {
                map.expire(step).unwrap();
                naive.expire(step);
            } else {
                let got = map.observe(&id(i), step).unwrap();
                prop_assert_eq!(got, naive.observe(&id(i), step), "op {}", k);
            }
            agree(&map, &naive)?;
            if k == resume_at {
                let json = serde_json::to_string(&map.state()).unwrap();
                let state: IdMapState = serde_json::from_str(&json).unwrap();
                let back = IdMap::from_state(&state, Path::new("ck"), "map").unwrap();
                prop_assert_eq!(&back, &map);
                map = back;
            }
        }
    }
}

#[test]
fn admission_takes_the_lowest_free_row_after_admit_after_sightings() {
    let mut m = IdMap::new(options(3, 2, 0)).unwrap();
    assert_eq!(m.observe("a", 0), Ok(None));
    assert_eq!(m.row("a"), OOV_ROW);
    assert_eq!(m.observe("b", 0), Ok(None));
    assert_eq!(m.observe("b", 1), Ok(Some(1)));
    assert_eq!(m.observe("a", 1), Ok(Some(2)));
    assert_eq!(
        (m.row("a"), m.row("b"), m.live(), m.pending()),
        (2, 1, 2, 0)
    );
    let c = m.counters();
    assert_eq!(
        (c.lookups, c.oov_lookups, c.admitted, c.evicted),
        (4, 2, 2, 0)
    );
}

#[test]
fn eviction_takes_the_least_recently_seen_row_but_never_one_seen_this_step() {
    let mut m = IdMap::from_fitted(options(2, 1, 0), ["a", "b", "c"]).unwrap();
    assert_eq!((m.row("a"), m.row("b"), m.row("c")), (1, 2, OOV_ROW));
    // a and b both last seen at 0: the tie goes to the lowest row.
    m.observe("b", 1).unwrap();
    m.observe("a", 1).unwrap();
    // Both rows were seen at step 1: c stays pending and reads OOV.
    assert_eq!(m.observe("c", 1), Ok(None));
    assert_eq!((m.row("c"), m.pending()), (OOV_ROW, 1));
    // At step 2 it takes row 1 (a and b tie at 1 again); a is forgotten.
    assert_eq!(m.observe("c", 2), Ok(Some(1)));
    assert_eq!(
        (m.row("a"), m.row("c"), m.owner(1)),
        (OOV_ROW, 1, Some("c"))
    );
    assert_eq!(m.counters().evicted, 1);
}

#[test]
fn expiry_frees_rows_unseen_for_more_than_expire_after_steps() {
    let mut m = IdMap::new(options(4, 1, 2)).unwrap();
    m.observe("a", 0).unwrap();
    m.observe("b", 1).unwrap();
    m.expire(2).unwrap();
    assert_eq!(m.live(), 2, "2 − 0 = 2 is not more than 2");
    m.expire(3).unwrap();
    assert_eq!(
        (m.row("a"), m.row("b"), m.counters().expired),
        (OOV_ROW, 2, 1)
    );
    // The freed row is the lowest free one again.
    assert_eq!(m.observe("c", 3), Ok(Some(1)));
    // expire_after = 0 never expires.
    let mut never = IdMap::new(options(1, 1, 0)).unwrap();
    never.observe("a", 0).unwrap();
    never.expire(1 << 40).unwrap();
    assert_eq!(never.row("a"), 1);
}

#[test]
fn pending_ids_are_bounded_and_expire() {
    let mut m = IdMap::new(options(1, 3, 5)).unwrap();
    for (i, step) in (0..6).zip([0, 0, 1, 1, 2, 3]) {
        m.observe(&id(i), step).unwrap();
    }
    // Four pending at most: id0 and id1 (seen at 0, smallest first) were dropped.
    assert_eq!(m.pending(), 4);
    let kept: Vec<String> = m.state().pending.into_iter().map(|p| p.id).collect();
    assert_eq!(kept, ["id2", "id3", "id4", "id5"]);
    m.expire(7).unwrap();
    assert_eq!(
        m.pending(),
        2,
        "id2 and id3, last seen at 1, are 6 steps old"
    );
}

#[test]
fn steps_that_go_back_are_an_error() {
    let mut m = IdMap::new(options(1, 1, 0)).unwrap();
    m.observe("a", 5).unwrap();
    assert!(m
        .observe("a", 4)
        .unwrap_err()
        .contains("step 4 is before step 5"));
    assert!(m.expire(3).is_err());
    assert!(IdMap::new(options(0, 1, 0)).is_err());
}

#[test]
fn the_saved_state_round_trips_and_a_resumed_map_continues_identically() {
    let mut m = IdMap::from_fitted(options(3, 2, 4), ["x", "y"]).unwrap();
    let stream = ["a", "b", "a", "c", "x", "d", "d", "b", "e", "e", "a", "a"];
    for (k, s) in stream[..6].iter().enumerate() {
        m.observe(s, k as u64 / 2).unwrap();
    }
    let json = serde_json::to_string(&m.state()).unwrap();
    let state: IdMapState = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&state).unwrap(), json);
    let mut resumed = IdMap::from_state(&state, Path::new("ck"), "map").unwrap();
    assert_eq!(resumed, m);
    for (k, s) in stream.iter().enumerate().skip(6) {
        let step = k as u64 / 2;
        m.expire(step).unwrap();
        resumed.expire(step).unwrap();
        assert_eq!(m.observe(s, step), resumed.observe(s, step));
    }
    assert_eq!(resumed.state(), m.state());
}

#[test]
fn corrupted_states_are_errors_naming_the_key() {
    let mut m = IdMap::from_fitted(options(3, 2, 0), ["x", "y"]).unwrap();
    m.observe("p", 1).unwrap();
    let good = m.state();
    let err = |edit: &dyn Fn(&mut IdMapState)| {
        let mut s = good.clone();
        edit(&mut s);
        IdMap::from_state(&s, Path::new("ck.json"), "map")
            .unwrap_err()
            .to_string()
    };
    let e = err(&|s| s.owned[1].row = 4);
    assert!(
        e.contains("ck.json") && e.contains("map.owned[1].row"),
        "{e}"
    );
    assert!(e.contains("row 4 outside 1..=3"), "{e}");
    assert!(err(&|s| s.owned[1].row = 1).contains("map.owned[1].id"));
    assert!(err(&|s| s.owned[1].id = "x".into()).contains("owns two rows"));
    assert!(err(&|s| s.owned[0].last_seen = 9).contains("map.owned[0].last_seen"));
    assert!(err(&|s| s.pending[0].count = 0).contains("map.pending[0].count"));
    assert!(err(&|s| s.pending[0].id = "x".into()).contains("owns a row and is pending"));
    assert!(err(&|s| s.options.capacity = 0).contains("map.options.capacity"));
    let twice = err(&|s| s.pending.push(s.pending[0].clone()));
    assert!(twice.contains("pending[1].id") && twice.contains("pending twice"));
}
