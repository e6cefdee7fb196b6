//! The encoder on small handmade tables and the ml-100k protocol's files, by topic; the helpers
//! and tables here are shared with the loader's tests and with `data::tests`, which run the
//! encoder through the loader.

pub(crate) use std::collections::HashMap;
pub(crate) use std::fs;
pub(crate) use std::path::{Path, PathBuf};

pub(crate) use super::numeric::NumericFit;
pub(crate) use super::{Encoder, FeatureInput, FreshRows, ModelBatch};
pub(crate) use crate::config::ModelConfig;
pub(crate) use crate::data::{
    ml100k, stable_hash, synth, Batch, ColumnData, ReadOptions, Schema, TableReader, Vocabulary,
    OOV_ROW,
};
pub(crate) use crate::error::{Error, Result};
pub(crate) use crate::kernels::embedding::MnsBase;
pub(crate) use crate::kernels::tim::{TemporalBuckets, TimBatch};

/// A fresh scratch directory for one test.
pub(crate) fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrec-encode-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

pub(crate) fn config(text: &str) -> ModelConfig {
    ModelConfig::parse(&format!("[model]\ntables = 1\n{text}"), "model.toml").unwrap()
}

/// All rows of `path` in one batch.
pub(crate) fn read_all(path: &Path, schema: &Schema) -> Batch {
    let options = ReadOptions {
        batch_rows: 1 << 20,
        ..ReadOptions::default()
    };
    TableReader::open(path, schema, options)
        .unwrap()
        .next_batch()
        .unwrap()
        .unwrap()
}

pub(crate) fn ids(input: &FeatureInput) -> (&[u32], &[u32]) {
    match input {
        FeatureInput::Ids { offsets, rows } => (offsets, rows),
        FeatureInput::Sequence(_) => panic!("a sequence"),
    }
}

pub(crate) fn tim(input: &FeatureInput) -> &TimBatch {
    match input {
        FeatureInput::Sequence(t) => t,
        FeatureInput::Ids { .. } => panic!("not a sequence"),
    }
}

/// The error text with the scratch directory cut off.
pub(crate) fn short(e: Error, dir: &Path) -> String {
    e.to_string().replace(&format!("{}/", dir.display()), "")
}

pub(crate) const FLAT_SCHEMA: &str =
    "columns = \"label:click, categorical:user, categorical:city, \
                           multi_hot:tags, numeric:age\"";
pub(crate) const FLAT_TRAIN: &str = "click\tuser\tcity\ttags\tage\n\
1\ta\tx\tt1|t2\t20\n\
0\tb\tx\tt2\t30\n\
1\ta\ty\t\t25.5\n\
0\tc\tx\tt1|t3|t2\t\n";
pub(crate) const FLAT_EVAL: &str = "click\tuser\tcity\ttags\tage\n\
1\tz\tx\tt9|t3\t10\n\
0\tb\tq\t\t100\n\
1\tc\ty\tt2\t29.9\n";

pub(crate) fn flat_config(user: &str) -> ModelConfig {
    config(&format!(
        "[[feature]]\nname = \"user\"\nkind = \"categorical\"\n{user}\n\
         [[feature]]\nname = \"city\"\nkind = \"categorical\"\nhash_rows = 7\n\
         [[feature]]\nname = \"tag\"\nkind = \"bag\"\ncolumn = \"tags\"\n\
         [[feature]]\nname = \"age\"\nkind = \"numeric\"\nradices = [2, 3]\nstep = 1.0\n"
    ))
}

pub(crate) const SEQ_SCHEMA: &str = r#"
[[column]]
name = "click"
type = "label"
[[column]]
name = "item"
type = "categorical"
[[column]]
name = "cat"
type = "categorical"
[[column]]
name = "genres"
type = "multi_hot"
[[column]]
name = "ts"
type = "timestamp"
[[column]]
name = "hist"
type = "sequence"
[[column]]
name = "hist_cat"
type = "sequence"
[[column]]
name = "hist_genre"
type = "sequence"
[[column]]
name = "hist_time"
type = "sequence_times"
sequence = "hist"
"#;

pub(crate) const SEQ_TRAIN: &str =
    "click\titem\tcat\tgenres\tts\thist\thist_cat\thist_genre\thist_time\n\
1\ti1\tc1\tg1|g2\t100\ti2|i3|i1|i2\tc2|c1|c1|c2\tg2|g1|g1|g3\t10|50|90|100\n\
0\ti2\tc2\t\t200\t\t\t\t\n\
1\ti3\tc1\tg3\t300\ti9\tc1\tg2\t290\n";

pub(crate) fn seq_config(time: &str, extra: &str) -> ModelConfig {
    config(&format!(
        "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"cat\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"genre\"\nkind = \"bag\"\ncolumn = \"genres\"\n\
         [[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist\"\nitem = \"item\"\n\
         side = [\"cat\", \"genre\"]\nside_columns = [\"hist_cat\", \"hist_genre\"]\n\
         max_len = 3\nbuckets = 5\ntime = {time}\n{extra}"
    ))
}

/// A table of `n` rows: user `u{i % 3}`, label `i % 2`, a sequence whose time is `i`, all valid.
pub(crate) fn numbered(n: usize) -> String {
    let mut s = String::from("click\tuser\tts\thist\thist_time\n");
    for i in 0..n {
        s.push_str(&format!(
            "{}\tu{}\t{}\tu{}\t{}\n",
            i % 2,
            i % 3,
            1000 + i,
            i % 5,
            999 + i
        ));
    }
    s
}

pub(crate) const NUMBERED_SCHEMA: &str =
    "columns = \"label:click, categorical:user, timestamp:ts, \
                               sequence:hist, sequence_times:hist_time\"";

pub(crate) fn numbered_config() -> ModelConfig {
    config(
        "[[feature]]\nname = \"user\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"hist\"\nkind = \"sequence\"\nitem = \"user\"\n",
    )
}

mod content;
mod dynamic_ids;
mod features;
mod ml100k_slice;
mod numeric_log;
mod resolution;
mod saved;
mod sequences;
