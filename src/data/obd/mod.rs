//! The Open Bandit Dataset (Saito et al. 2021; ZOZOTOWN fashion recommendations) as wgrec sample
//! tables, for off-policy evaluation (`crate::ope`, docs/ope.md). Its small sample — 10,000 rounds
//! per logging policy and campaign from a real A/B test of a uniform-random and a Bernoulli
//! Thompson-sampling policy, with the propensities — ships inside the obp 0.4.1 wheel on PyPI.
//! [`fetch`] downloads the wheel with pip; [`convert`] reads it and writes the tables, so the tests
//! can run the conversion on a tiny wheel built in memory, without network.
//!
//! Layout written into the folder: `train.tsv`, `valid.tsv`, `test.tsv` (the random policy's log in
//! time order, first 70%, next 10%, last 20%), `bts.tsv` (the Thompson-sampling log, whole, in time
//! order) and `schema.toml` (tab-separated, header) for all four. Columns: see [`schema_toml`]; the
//! per-item user–item affinity columns of the CSVs are left out (80 sparse columns keyed by action,
//! which a ranking model would see through `item_id` anyway).

mod csv;
mod fetch;
#[cfg(test)]
mod tests;

pub use fetch::pip_download;

use crate::{Error, Result};
use csv::Csv;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The obp release whose wheel carries the dataset.
pub const OBP: &str = "obp==0.4.1";
/// The logging policies, in the wheel's folder names.
pub const POLICIES: [&str; 2] = ["random", "bts"];
/// The random log's splits and their cumulative shares in tenths (70% / 10% / 20%).
pub const SPLITS: [(&str, usize); 3] = [("train", 7), ("valid", 8), ("test", 10)];
/// User features of the CSVs (hashed ids: categorical).
pub const USER_FEATURES: [&str; 4] = [
    "user_feature_0",
    "user_feature_1",
    "user_feature_2",
    "user_feature_3",
];
/// Item features of `item_context.csv`; numeric when every value is a number (item_feature_0 in
/// 0.4.1), else categorical.
pub const ITEM_FEATURES: [&str; 4] = [
    "item_feature_0",
    "item_feature_1",
    "item_feature_2",
    "item_feature_3",
];

fn err(message: impl std::fmt::Display) -> Error {
    Error::Dataset(format!("obd: {message}"))
}

/// The campaign (the wheel's `all`, `men`, `women` folders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Campaign {
    /// All items.
    All,
    /// Men's fashion.
    Men,
    /// Women's fashion.
    Women,
}

impl Campaign {
    /// The folder name.
    pub fn name(self) -> &'static str {
        match self {
            Campaign::All => "all",
            Campaign::Men => "men",
            Campaign::Women => "women",
        }
    }
}

/// The facts of one logging policy's log.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyStats {
    /// `random` or `bts`.
    pub policy: &'static str,
    /// Rounds.
    pub rows: usize,
    /// Rounds with a click.
    pub clicks: usize,
    /// Distinct actions (item ids) logged.
    pub actions: usize,
    /// Distinct positions.
    pub positions: usize,
}

impl PolicyStats {
    /// Clicks per round.
    pub fn click_rate(&self) -> f64 {
        self.clicks as f64 / self.rows.max(1) as f64
    }
}

/// What [`convert`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ObdStats {
    /// Per logging policy, in [`POLICIES`] order.
    pub policies: Vec<PolicyStats>,
    /// Rows of train, valid, test (the random log).
    pub splits: [usize; 3],
    /// Item features written as numeric.
    pub numeric_item_features: Vec<&'static str>,
}

/// Downloads the wheel with pip into `<dir>/.download` and converts `campaign` into `dir`.
pub fn fetch(dir: &Path, campaign: Campaign) -> Result<ObdStats> {
    let scratch = dir.join(".download");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| err(format!("cannot create {}: {e}", scratch.display())))?;
    let result = pip_download(&scratch, None).and_then(|wheel| convert(&wheel, campaign, dir));
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// The `schema.toml` of the tables; `numeric` lists the item features typed numeric.
pub fn schema_toml(numeric: &[&str]) -> String {
    let mut s = String::from(
        "# Open Bandit Dataset (obp 0.4.1 sample), written by `wgrec data fetch obd`; see docs/ope.md.\n\
         delimiter = \"\\t\"\nheader = true\n",
    );
    let fixed = [
        ("click", "label"),
        ("item_id", "categorical"),
        ("position", "categorical"),
        ("propensity", "numeric"),
    ];
    let users = USER_FEATURES.iter().map(|u| (*u, "categorical"));
    let items = ITEM_FEATURES.iter().map(|i| {
        (
            *i,
            if numeric.contains(i) {
                "numeric"
            } else {
                "categorical"
            },
        )
    });
    for (name, kind) in fixed
        .into_iter()
        .chain(users)
        .chain(items)
        .chain([("timestamp", "skip")])
    {
        s.push_str(&format!(
            "\n[[column]]\nname = \"{name}\"\ntype = \"{kind}\"\n"
        ));
    }
    s
}

/// One logged round, as text ready to write.
struct Round {
    timestamp: String,
    item: String,
    position: String,
    click: bool,
    propensity: String,
    user: Vec<String>,
}

/// Reads `obp/dataset/obd/{random,bts}/<campaign>/` from the wheel and writes the tables and
/// `schema.toml` into `out` (each file atomically).
pub fn convert(wheel: &Path, campaign: Campaign, out: &Path) -> Result<ObdStats> {
    let name = wheel.display().to_string();
    let file = std::fs::File::open(wheel).map_err(|e| err(format!("cannot open {name}: {e}")))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| err(format!("{name} is not a zip: {e}")))?;
    let c = campaign.name();
    let mut logs = Vec::new();
    let mut contexts = Vec::new();
    for policy in POLICIES {
        let dir = format!("obp/dataset/obd/{policy}/{c}/");
        logs.push(read_rounds(&Csv::read(
            &mut zip,
            &name,
            &format!("{dir}{c}.csv"),
        )?)?);
        contexts.push(Csv::read(
            &mut zip,
            &name,
            &format!("{dir}item_context.csv"),
        )?);
    }
    let numeric = numeric_item_features(&contexts);
    std::fs::create_dir_all(out)
        .map_err(|e| err(format!("cannot create {}: {e}", out.display())))?;
    let mut policies = Vec::new();
    for (p, (rounds, context)) in logs.iter().zip(&contexts).enumerate() {
        let items = item_features(context)?;
        let text = rows_text(rounds, &items, &contexts[p].name)?;
        if p == 0 {
            let n = rounds.len();
            for (s, (split, _)) in SPLITS.iter().enumerate() {
                let from = if s == 0 { 0 } else { n * SPLITS[s - 1].1 / 10 };
                write(
                    &out.join(format!("{split}.tsv")),
                    &table(&text[from..n * SPLITS[s].1 / 10]),
                )?;
            }
        } else {
            write(&out.join("bts.tsv"), &table(&text))?;
        }
        policies.push(policy_stats(POLICIES[p], rounds));
    }
    write(&out.join("schema.toml"), &schema_toml(&numeric))?;
    let n = logs[0].len();
    Ok(ObdStats {
        policies,
        splits: [n * 7 / 10, n * 8 / 10 - n * 7 / 10, n - n * 8 / 10],
        numeric_item_features: numeric,
    })
}

/// The rounds of a log CSV, stably sorted by timestamp (the ISO-8601 text, one time zone, sorts
/// as time), with clicks and propensities checked.
fn read_rounds(csv: &Csv) -> Result<Vec<Round>> {
    let [t, i, p, k, q] = [
        "timestamp",
        "item_id",
        "position",
        "click",
        "propensity_score",
    ]
    .map(|c| csv.column(c));
    let (t, i, p, k, q) = (t?, i?, p?, k?, q?);
    let users = USER_FEATURES
        .iter()
        .map(|u| csv.column(u))
        .collect::<Result<Vec<_>>>()?;
    let mut rounds = Vec::with_capacity(csv.rows.len());
    for (r, row) in csv.rows.iter().enumerate() {
        let propensity = csv.number(r, (q, "propensity_score"))?;
        if !(propensity > 0.0 && propensity <= 1.0) {
            return Err(err(format!(
                "{}:{}: column \"propensity_score\": {propensity} is not in (0, 1]",
                csv.name,
                r + 2
            )));
        }
        if row[k] != "0" && row[k] != "1" {
            return Err(err(format!(
                "{}:{}: column \"click\": {:?} is not 0 or 1",
                csv.name,
                r + 2,
                row[k]
            )));
        }
        rounds.push(Round {
            timestamp: row[t].clone(),
            item: row[i].clone(),
            position: row[p].clone(),
            click: row[k] == "1",
            propensity: row[q].clone(),
            user: users.iter().map(|&u| row[u].clone()).collect(),
        });
    }
    rounds.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    Ok(rounds)
}

fn numeric_item_features(contexts: &[Csv]) -> Vec<&'static str> {
    ITEM_FEATURES
        .iter()
        .copied()
        .filter(|f| {
            contexts.iter().all(|c| {
                c.column(f)
                    .is_ok_and(|j| (0..c.rows.len()).all(|r| c.number(r, (j, f)).is_ok()))
            })
        })
        .collect()
}

/// item_id → its four feature values.
fn item_features(csv: &Csv) -> Result<HashMap<String, Vec<String>>> {
    let id = csv.column("item_id")?;
    let features = ITEM_FEATURES
        .iter()
        .map(|f| csv.column(f))
        .collect::<Result<Vec<_>>>()?;
    Ok(csv
        .rows
        .iter()
        .map(|row| {
            (
                row[id].clone(),
                features.iter().map(|&f| row[f].clone()).collect(),
            )
        })
        .collect())
}

/// One line per round (without the header), in the schema's column order.
fn rows_text(
    rounds: &[Round],
    items: &HashMap<String, Vec<String>>,
    context: &str,
) -> Result<Vec<String>> {
    rounds
        .iter()
        .map(|r| {
            let item = items
                .get(&r.item)
                .ok_or_else(|| err(format!("item {} is not in {context}", r.item)))?;
            Ok(format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                u8::from(r.click),
                r.item,
                r.position,
                r.propensity,
                r.user.join("\t"),
                item.join("\t"),
                r.timestamp
            ))
        })
        .collect()
}

fn table(lines: &[String]) -> String {
    let mut header: Vec<&str> = vec!["click", "item_id", "position", "propensity"];
    header.extend(USER_FEATURES);
    header.extend(ITEM_FEATURES);
    header.push("timestamp");
    let mut text = header.join("\t");
    text.push('\n');
    lines.iter().for_each(|l| text.push_str(l));
    text
}

fn write(path: &Path, text: &str) -> Result<()> {
    crate::checkpoint::write_atomically(path, |tmp| {
        std::fs::write(tmp, text).map_err(|e| Error::output(tmp, e))
    })
}

fn policy_stats(policy: &'static str, rounds: &[Round]) -> PolicyStats {
    let distinct = |f: &dyn Fn(&Round) -> &str| rounds.iter().map(f).collect::<HashSet<_>>().len();
    PolicyStats {
        policy,
        rows: rounds.len(),
        clicks: rounds.iter().filter(|r| r.click).count(),
        actions: distinct(&|r| r.item.as_str()),
        positions: distinct(&|r| r.position.as_str()),
    }
}
