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
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

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

fn err(message: impl std::fmt::Display) -> Error {
    Error::Dataset(format!("ml-100k: {message}"))
}

/// Downloads the recbole wheel with pip into a scratch folder and extracts the three raw files into
/// `<dir>/raw/`, which it returns. Files already there are kept (the download happens once).
pub fn fetch(dir: &Path) -> Result<PathBuf> {
    let raw = dir.join("raw");
    if RAW_FILES.iter().all(|f| raw.join(f).is_file()) {
        return Ok(raw);
    }
    let scratch = dir.join(".download");
    fs::create_dir_all(&scratch)
        .map_err(|e| err(format!("cannot create {}: {e}", scratch.display())))?;
    let result = pip_download(&scratch).and_then(|wheel| extract(&wheel, &raw));
    let _ = fs::remove_dir_all(&scratch);
    result.map(|()| raw)
}

/// The ways pip is looked for, in order.
const PIP_COMMANDS: [(&str, &[&str]); 3] =
    [("python3", &["-m", "pip"]), ("pip3", &[]), ("pip", &[])];

/// Runs `pip download --no-deps --only-binary=:all: -d <scratch> recbole==1.2.1` and returns the wheel.
fn pip_download(scratch: &Path) -> Result<PathBuf> {
    pip_download_with_path(scratch, None)
}

/// [`pip_download`] with the search `PATH` for pip replaced (tests simulate a machine without pip).
fn pip_download_with_path<'a>(scratch: &Path, path: impl Into<Option<&'a str>>) -> Result<PathBuf> {
    let path = path.into();
    let mut tried = Vec::new();
    for (program, prefix) in PIP_COMMANDS {
        let shown = [program]
            .iter()
            .chain(prefix)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = Command::new(program);
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let out = command
            .args(prefix)
            .args(["download", "--no-deps", "--only-binary=:all:", "-d"])
            .arg(scratch)
            .arg(RECBOLE)
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tried.push(format!("`{shown}` (not found)"));
                continue;
            }
            Err(e) => return Err(err(format!("cannot run `{shown}`: {e}"))),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("No module named pip") {
            tried.push(format!("`{shown}` (no pip module)"));
            continue;
        }
        if !out.status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(err(format!(
                "`{shown} download {RECBOLE}` failed ({}):\n{}",
                out.status,
                tail.join("\n")
            )));
        }
        return find_wheel(scratch);
    }
    Err(err(format!(
        "pip is needed to download {RECBOLE} (the wheel that ships the dataset) but none was found: \
         tried {}. Install Python 3 with pip (Debian: apt-get install python3-pip) and retry",
        tried.join(", ")
    )))
}

fn find_wheel(scratch: &Path) -> Result<PathBuf> {
    let entries = fs::read_dir(scratch)
        .map_err(|e| err(format!("cannot list {}: {e}", scratch.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("recbole-") && name.ends_with(".whl") {
            return Ok(entry.path());
        }
    }
    Err(err(format!(
        "pip reported success but left no recbole wheel in {}",
        scratch.display()
    )))
}

/// Extracts [`RAW_FILES`] from the wheel (a zip) into `raw`.
fn extract(wheel: &Path, raw: &Path) -> Result<()> {
    let file =
        File::open(wheel).map_err(|e| err(format!("cannot open {}: {e}", wheel.display())))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| err(format!("{} is not a zip: {e}", wheel.display())))?;
    fs::create_dir_all(raw).map_err(|e| err(format!("cannot create {}: {e}", raw.display())))?;
    for name in RAW_FILES {
        let inner = format!("{WHEEL_DIR}{name}");
        let mut entry = zip
            .by_name(&inner)
            .map_err(|e| err(format!("{} has no {inner}: {e}", wheel.display())))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("cannot read {inner} from {}: {e}", wheel.display())))?;
        write_atomically(&raw.join(name), &bytes)?;
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| err(format!("cannot write {}: {e}", path.display())))
}

/// One rating event, as read.
#[derive(Debug, Clone)]
struct Event {
    user: String,
    item: String,
    rating: f64,
    timestamp: i64,
}

/// A user's attributes from `ml-100k.user`.
#[derive(Debug, Clone)]
struct User {
    age: String,
    gender: String,
    occupation: String,
    zip_first: String,
}

/// An item's attributes from `ml-100k.item`; `release_year` is empty when not a number.
#[derive(Debug, Clone)]
struct Item {
    release_year: String,
    genres: Vec<String>,
}

/// A tab-separated recbole file: header names (the part before `:type`) and rows, with line numbers.
struct Table {
    file: PathBuf,
    names: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    fn read(path: &Path) -> Result<Table> {
        let text = fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let mut lines = text.lines().enumerate();
        let (_, header) = lines
            .next()
            .ok_or_else(|| err(format!("{} is empty", path.display())))?;
        let names: Vec<String> = header
            .split('\t')
            .map(|h| h.split(':').next().unwrap_or(h).to_owned())
            .collect();
        let mut rows = Vec::new();
        for (i, line) in lines {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let fields: Vec<String> = line.split('\t').map(str::to_owned).collect();
            if fields.len() != names.len() {
                return Err(err(format!(
                    "{}:{}: {} fields, the header has {}",
                    path.display(),
                    i + 1,
                    fields.len(),
                    names.len()
                )));
            }
            rows.push((i + 1, fields));
        }
        Ok(Table {
            file: path.to_owned(),
            names,
            rows,
        })
    }

    fn column(&self, name: &str) -> Result<usize> {
        self.names.iter().position(|n| n == name).ok_or_else(|| {
            err(format!(
                "{}: no column {name:?} in the header",
                self.file.display()
            ))
        })
    }

    fn bad(&self, line: usize, column: &str, value: &str, what: &str) -> Error {
        err(format!(
            "{}:{line}: column {column}: {value:?} is not {what}",
            self.file.display()
        ))
    }
}

fn read_events(path: &Path) -> Result<Vec<Event>> {
    let t = Table::read(path)?;
    let (u, i, r, ts) = (
        t.column("user_id")?,
        t.column("item_id")?,
        t.column("rating")?,
        t.column("timestamp")?,
    );
    t.rows
        .iter()
        .map(|(line, f)| {
            let rating = f[r]
                .parse::<f64>()
                .map_err(|_| t.bad(*line, "rating", &f[r], "a number"))?;
            let timestamp = f[ts]
                .parse::<i64>()
                .or_else(|_| f[ts].parse::<f64>().map(|x| x as i64))
                .map_err(|_| t.bad(*line, "timestamp", &f[ts], "a number"))?;
            Ok(Event {
                user: f[u].clone(),
                item: f[i].clone(),
                rating,
                timestamp,
            })
        })
        .collect()
}

fn read_users(path: &Path) -> Result<HashMap<String, User>> {
    let t = Table::read(path)?;
    let (u, a, g, o, z) = (
        t.column("user_id")?,
        t.column("age")?,
        t.column("gender")?,
        t.column("occupation")?,
        t.column("zip_code")?,
    );
    let mut users = HashMap::new();
    for (line, f) in &t.rows {
        f[a].parse::<f64>()
            .map_err(|_| t.bad(*line, "age", &f[a], "a number"))?;
        let user = User {
            age: f[a].clone(),
            gender: f[g].clone(),
            occupation: f[o].clone(),
            zip_first: f[z].chars().next().map(String::from).unwrap_or_default(),
        };
        users.insert(f[u].clone(), user);
    }
    Ok(users)
}

fn read_items(path: &Path) -> Result<HashMap<String, Item>> {
    let t = Table::read(path)?;
    let (i, y, c) = (
        t.column("item_id")?,
        t.column("release_year")?,
        t.column("class")?,
    );
    let mut items = HashMap::new();
    for (_, f) in &t.rows {
        // Two items carry "unkonwn" and "V" as the year: missing, written empty.
        let release_year = if f[y].parse::<u32>().is_ok() {
            f[y].clone()
        } else {
            String::new()
        };
        let genres = f[c]
            .split(' ')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        items.insert(
            f[i].clone(),
            Item {
                release_year,
                genres,
            },
        );
    }
    Ok(items)
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
#[path = "ml100k_tests.rs"]
mod tests;
