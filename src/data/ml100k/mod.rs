//! The bundled real dataset, MovieLens-100K as click data (DATA.md §1): [`fetch`] downloads recbole
//! 1.2.1's wheel with pip and extracts the three raw files; [`prepare`] applies the protocol exactly
//! and writes `train.tsv`, `valid.tsv`, `test.tsv` and `schema.toml`, returning the facts DATA.md
//! tabulates so a caller can check them.
//!
//! Protocol: events are all rows of `ml-100k.inter` ordered by (timestamp, file order); click =
//! rating ≥ 4, love = rating = 5; the first 80% train, the next 10% validate, the last 10% test; the
//! behaviour sequence of an event is that user's events strictly before it in the global order (any
//! split), most recent last, at most [`MAX_HISTORY`].

use crate::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

/// The recbole release whose wheel carries the dataset (DATA.md §1).
pub const RECBOLE: &str = "recbole==1.2.1";
/// The raw files, in the wheel under [`WHEEL_DIR`] and in `<dir>/raw/` after [`fetch`].
pub const RAW_FILES: [&str; 3] = ["ml-100k.inter", "ml-100k.user", "ml-100k.item"];
/// Where the raw files sit inside the wheel.
pub const WHEEL_DIR: &str = "recbole/dataset_example/ml-100k/";
/// Longest behaviour sequence kept (the most recent events).
pub const MAX_HISTORY: usize = 50;
/// Largest time bucket; bucket 0 is the target itself.
pub const MAX_TIME_BUCKET: u32 = 63;
/// The split files, in order; they take 80%, 10% and 10% of the ordered events.
pub const SPLITS: [&str; 3] = ["train", "valid", "test"];

mod fetch;
mod raw;

pub use fetch::fetch;
use raw::{read_events, read_items, read_users, Event, Item, User};

fn err(message: impl std::fmt::Display) -> Error {
    Error::Dataset(format!("ml-100k: {message}"))
}

/// The time bucket of a behaviour `dt` seconds before its target: min(63, 1 + ⌊log2(1 + dt/3600)⌋);
/// bucket 0 is reserved for the target itself.
pub fn time_bucket(dt: i64) -> u32 {
    let hours = dt.max(0) as f64 / 3600.0;
    (1 + (1.0 + hours).log2().floor() as u32).min(MAX_TIME_BUCKET)
}

/// Hour of day (0–23) and day of week (0 = Monday … 6 = Sunday) of a Unix timestamp, in UTC.
pub fn hour_and_weekday(timestamp: i64) -> (u32, u32) {
    let day = timestamp.div_euclid(86_400);
    let hour = timestamp.rem_euclid(86_400) / 3600;
    // 1970-01-01 was a Thursday (weekday 3).
    (hour as u32, (day + 3).rem_euclid(7) as u32)
}

/// The facts of one split that DATA.md §1 tabulates.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitStats {
    /// Split name (`train`, `valid`, `test`).
    pub name: &'static str,
    /// Events in the split.
    pub events: usize,
    /// Share of events with rating ≥ 4.
    pub click_rate: f64,
    /// Share of events with rating = 5.
    pub love_rate: f64,
    /// Share of events whose user_id never occurs in train.
    pub user_oov: f64,
    /// Share of events whose item_id never occurs in train.
    pub item_oov: f64,
    /// Mean behaviour-sequence length (after the cap).
    pub mean_history: f64,
    /// Share of events with an empty behaviour sequence.
    pub empty_history: f64,
}

/// What [`prepare`] wrote and the facts to check against DATA.md.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareStats {
    /// Train, valid, test, in that order.
    pub splits: Vec<SplitStats>,
    /// Distinct values in train of user_id, item_id, genre, occupation, gender, zip first character.
    pub train_vocab: Vec<(&'static str, usize)>,
}

/// The columns written, in file order, with their schema type (and separator where it applies).
pub const COLUMNS: [(&str, &str); 17] = [
    ("click", "label"),
    ("love", "label"),
    ("user_id", "categorical"),
    ("item_id", "categorical"),
    ("gender", "categorical"),
    ("occupation", "categorical"),
    ("zip", "categorical"),
    ("age", "numeric"),
    ("release_year", "numeric"),
    ("genres", "multi_hot"),
    ("hour", "categorical"),
    ("weekday", "categorical"),
    ("timestamp", "timestamp"),
    ("hist_item", "sequence"),
    ("hist_genre", "sequence"),
    ("hist_time", "sequence_times"),
    // The buckets the protocol defines, precomputed for checking; readers derive them from hist_time.
    ("hist_bucket", "skip"),
];

/// The `schema.toml` for [`COLUMNS`].
pub fn schema_toml() -> String {
    let mut s = String::from("# MovieLens-100K under wgrec's protocol (DATA.md §1), written by `wgrec data fetch ml-100k`.\n");
    s.push_str("delimiter = \"\\t\"\nheader = true\n");
    for (name, kind) in COLUMNS {
        s.push_str(&format!(
            "\n[[column]]\nname = \"{name}\"\ntype = \"{kind}\"\n"
        ));
        if matches!(kind, "multi_hot" | "sequence" | "sequence_times") {
            s.push_str("separator = \"|\"\n");
        }
        if kind == "sequence_times" {
            // The times of the item history (the nearest sequence before is hist_genre).
            s.push_str("sequence = \"hist_item\"\n");
        }
    }
    s
}

/// Applies the protocol to the raw files in `raw` and writes the three splits and `schema.toml` into
/// `out`.
pub fn prepare(raw: &Path, out: &Path) -> Result<PrepareStats> {
    let mut events = read_events(&raw.join(RAW_FILES[0]))?;
    let users = read_users(&raw.join(RAW_FILES[1]))?;
    let items = read_items(&raw.join(RAW_FILES[2]))?;
    // A stable sort keeps file order among equal timestamps.
    events.sort_by_key(|e| e.timestamp);
    fs::create_dir_all(out).map_err(|e| err(format!("cannot create {}: {e}", out.display())))?;
    let n = events.len();
    let bounds = [0, n * 8 / 10, n * 9 / 10, n];
    let mut histories: HashMap<&str, Vec<(&str, &str, i64)>> = HashMap::new();
    let mut train_users = HashSet::new();
    let mut train_items = HashSet::new();
    let mut splits = Vec::new();
    for (s, name) in SPLITS.iter().enumerate() {
        let path = out.join(format!("{name}.tsv"));
        let file = File::create(&path)
            .map_err(|e| err(format!("cannot create {}: {e}", path.display())))?;
        let mut w = BufWriter::new(file);
        let header: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
        let mut text = header.join("\t");
        text.push('\n');
        let mut acc = Accumulator::default();
        for e in &events[bounds[s]..bounds[s + 1]] {
            let user = users
                .get(&e.user)
                .ok_or_else(|| err(format!("user {} is not in ml-100k.user", e.user)))?;
            let item = items
                .get(&e.item)
                .ok_or_else(|| err(format!("item {} is not in ml-100k.item", e.item)))?;
            let history = histories.entry(e.user.as_str()).or_default();
            let start = history.len().saturating_sub(MAX_HISTORY);
            let hist = &history[start..];
            if s == 0 {
                train_users.insert(e.user.as_str());
                train_items.insert(e.item.as_str());
            }
            acc.add(
                e,
                hist.len(),
                train_users.contains(e.user.as_str()),
                train_items.contains(e.item.as_str()),
            );
            write_row(&mut text, e, user, item, hist);
            let first_genre = item.genres.first().map(String::as_str).unwrap_or("");
            history.push((e.item.as_str(), first_genre, e.timestamp));
            if text.len() > 1 << 16 {
                w.write_all(text.as_bytes())
                    .map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
                text.clear();
            }
        }
        w.write_all(text.as_bytes())
            .and_then(|()| w.flush())
            .map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
        splits.push(acc.finish(name));
    }
    let schema = out.join("schema.toml");
    fs::write(&schema, schema_toml())
        .map_err(|e| err(format!("cannot write {}: {e}", schema.display())))?;
    Ok(PrepareStats {
        splits,
        train_vocab: train_vocab(&events[..bounds[1]], &users, &items),
    })
}

fn write_row(text: &mut String, e: &Event, user: &User, item: &Item, hist: &[(&str, &str, i64)]) {
    use std::fmt::Write as _;
    let (hour, weekday) = hour_and_weekday(e.timestamp);
    let join =
        |f: &dyn Fn(&(&str, &str, i64)) -> String| hist.iter().map(f).collect::<Vec<_>>().join("|");
    let _ = writeln!(
        text,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{hour}\t{weekday}\t{}\t{}\t{}\t{}\t{}",
        u8::from(e.rating >= 4.0),
        u8::from(e.rating == 5.0),
        e.user,
        e.item,
        user.gender,
        user.occupation,
        user.zip_first,
        user.age,
        item.release_year,
        item.genres.join("|"),
        e.timestamp,
        join(&|h| h.0.to_owned()),
        join(&|h| h.1.to_owned()),
        join(&|h| h.2.to_string()),
        join(&|h| time_bucket(e.timestamp - h.2).to_string()),
    );
}

#[derive(Default)]
struct Accumulator {
    events: usize,
    clicks: usize,
    loves: usize,
    user_oov: usize,
    item_oov: usize,
    history: usize,
    empty: usize,
}

impl Accumulator {
    fn add(&mut self, e: &Event, history: usize, user_known: bool, item_known: bool) {
        self.events += 1;
        self.clicks += usize::from(e.rating >= 4.0);
        self.loves += usize::from(e.rating == 5.0);
        self.user_oov += usize::from(!user_known);
        self.item_oov += usize::from(!item_known);
        self.history += history;
        self.empty += usize::from(history == 0);
    }

    fn finish(&self, name: &'static str) -> SplitStats {
        let share = |k: usize| k as f64 / self.events.max(1) as f64;
        SplitStats {
            name,
            events: self.events,
            click_rate: share(self.clicks),
            love_rate: share(self.loves),
            user_oov: share(self.user_oov),
            item_oov: share(self.item_oov),
            mean_history: share(self.history),
            empty_history: share(self.empty),
        }
    }
}

fn train_vocab(
    train: &[Event],
    users: &HashMap<String, User>,
    items: &HashMap<String, Item>,
) -> Vec<(&'static str, usize)> {
    let mut sets: [HashSet<&str>; 6] = Default::default();
    for e in train {
        // prepare() has already rejected events whose user or item is unknown.
        let (Some(u), Some(i)) = (users.get(&e.user), items.get(&e.item)) else {
            continue;
        };
        sets[0].insert(&e.user);
        sets[1].insert(&e.item);
        sets[2].extend(i.genres.iter().map(String::as_str));
        sets[3].insert(&u.occupation);
        sets[4].insert(&u.gender);
        sets[5].insert(&u.zip_first);
    }
    let names = ["user_id", "item_id", "genre", "occupation", "gender", "zip"];
    names
        .iter()
        .zip(&sets)
        .map(|(n, s)| (*n, s.len()))
        .collect()
}

#[cfg(test)]
mod tests;
