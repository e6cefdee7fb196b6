//! Upper bounds on every size a model file can set, checked before anything is allocated.
//!
//! Two kinds of bound live here. Hard limits come from the kernels: TIM keeps a behaviour's row
//! and its scores in workgroup memory (`tim.wgsl`: rows of at most [`MAX_DIM`] floats, at most
//! [`MAX_LEN`] behaviours, [`MAX_FEATURES`] lookups per behaviour), the sparse update gives each
//! vec4 column of a row one lane ([`MAX_WIDTH`]). Sanity bounds stop a typo (`expert_width =
//! 1000000000`) before it reaches an allocator: each is far above any model that trains on one
//! device, so a real model never meets it; whether a model within them fits the device is the
//! graph's memory check (`wgrec::graph::budget`), which names the key and the bytes.

use super::{bad, Expert, FeatureKind, LrDecay, ModelConfig};
use crate::error::Result;
use crate::kernels::embedding::MAX_WIDTH;
use crate::kernels::tim::{MAX_DIM, MAX_FEATURES, MAX_LEN};

/// Largest model file: the checkpoint embeds the model's text in its header, which a reader
/// refuses past 100 MB; a real model file is a few KiB, so 1 MiB is only a typo guard.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Widest dense layer (expert projection, hidden layer, MLP expert layer, DCN rank).
pub const MAX_WIDTH_DENSE: u32 = 1 << 16;
/// Most hidden layers, MLP expert layers or features.
pub const MAX_LAYERS: usize = 64;
/// Most `[[feature]]` tables.
pub const MAX_FEATURES_CONFIG: usize = 1024;
/// Most `[[task]]` tables.
pub const MAX_TASKS: usize = 64;
/// Largest batch: 2^20 samples; a batch within it may still be refused by the memory check.
pub const MAX_BATCH: u32 = 1 << 20;
/// Most hash rows of one table: row ids are u32 and the storage addresses vec4s with u32.
pub const MAX_HASH_ROWS: u64 = 1 << 31;
/// Largest MNS radix, and most radices of one numeric feature.
pub const MAX_RADIX: u32 = 1 << 16;
/// Most radices of one numeric feature.
pub const MAX_RADICES: usize = 16;
/// Most temporal buckets of a sequence feature.
pub const MAX_BUCKETS: u32 = 1 << 16;
/// Most sequence behaviours kept: TIM's workgroup memory holds [`MAX_LEN`] scores; 1000 keeps
/// the documented round number below it.
pub const MAX_SEQUENCE: u32 = 1000;
const _: () = assert!(
    MAX_SEQUENCE <= MAX_LEN,
    "the documented bound is within the kernel's"
);
/// Most epochs.
pub const MAX_EPOCHS: u32 = 1 << 20;
/// Largest step count anywhere (steps, warm-up, decay, checkpoint counters): 2^48, years of steps.
pub const MAX_STEPS: u64 = 1 << 48;
/// Largest shuffle window, in batches (the window is held in memory).
pub const MAX_SHUFFLE_WINDOW: u32 = 1 << 12;

/// An error unless `value ≤ max`, naming `key`.
fn at_most(file: &str, key: impl Into<String>, value: u64, max: u64, why: &str) -> Result<()> {
    if value > max {
        return Err(bad(file, key, format!("{value}: at most {max} ({why})")));
    }
    Ok(())
}

impl ModelConfig {
    /// Checks every size key against its bound (module docs), before anything is allocated.
    pub(super) fn check_sizes(&self, file: &str) -> Result<()> {
        let m = &self.model;
        let dense = "the widest dense layer wgrec builds";
        at_most(
            file,
            "model.expert_width",
            m.expert_width as u64,
            MAX_WIDTH_DENSE as u64,
            dense,
        )?;
        at_most(
            file,
            "model.hidden",
            m.hidden.len() as u64,
            MAX_LAYERS as u64,
            "layers",
        )?;
        for (l, &w) in m.hidden.iter().enumerate() {
            at_most(
                file,
                format!("model.hidden[{l}]"),
                w as u64,
                MAX_WIDTH_DENSE as u64,
                dense,
            )?;
        }
        for (i, e) in m.experts.iter().enumerate() {
            self.check_expert(file, i, e)?;
        }
        let n = self.features.len() as u64;
        at_most(file, "feature", n, MAX_FEATURES_CONFIG as u64, "features")?;
        for (i, f) in self.features.iter().enumerate() {
            self.check_feature(file, i, &f.kind)?;
        }
        at_most(
            file,
            "task",
            self.tasks.len() as u64,
            MAX_TASKS as u64,
            "tasks",
        )?;
        self.check_train_sizes(file)
    }

    fn check_expert(&self, file: &str, i: usize, e: &Expert) -> Result<()> {
        let key = |k: &str| format!("model.experts[{i}].{k}");
        let dense = "the widest dense layer wgrec builds";
        match e {
            Expert::Dcn { rank: Some(r), .. } => {
                at_most(file, key("rank"), *r as u64, MAX_WIDTH_DENSE as u64, dense)
            }
            Expert::Mlp { widths } => {
                at_most(
                    file,
                    key("widths"),
                    widths.len() as u64,
                    MAX_LAYERS as u64,
                    "layers",
                )?;
                for &w in widths {
                    at_most(file, key("widths"), w as u64, MAX_WIDTH_DENSE as u64, dense)?;
                }
                Ok(())
            }
            Expert::Gwpfm { .. } => {
                // A GwPFM table's rows are `dim` floats per block.
                let width = self.model.dim as u64 * e.parts_per_row() as u64;
                let why = format!(
                    "model.dim × groups = {width} floats per row; rows are at most {MAX_WIDTH}"
                );
                at_most(file, key("groups"), width, MAX_WIDTH as u64, &why)
            }
            _ => Ok(()),
        }
    }

    fn check_feature(&self, file: &str, i: usize, kind: &FeatureKind) -> Result<()> {
        let key = |k: &str| format!("feature[{i}].{k}");
        match kind {
            FeatureKind::Categorical {
                hash_rows: Some(h), ..
            } => at_most(
                file,
                key("hash_rows"),
                *h,
                MAX_HASH_ROWS,
                "row ids are 32-bit",
            ),
            FeatureKind::Numeric { radices, .. }
            | FeatureKind::HashId { radices, .. }
            | FeatureKind::Similarity { radices, .. } => {
                at_most(
                    file,
                    key("radices"),
                    radices.len() as u64,
                    MAX_RADICES as u64,
                    "radices",
                )?;
                for &r in radices {
                    at_most(
                        file,
                        key("radices"),
                        r as u64,
                        MAX_RADIX as u64,
                        "rows of one digit",
                    )?;
                }
                Ok(())
            }
            FeatureKind::Sequence {
                max_len,
                buckets,
                side,
                ..
            } => {
                let why = "TIM keeps a sequence's scores in workgroup memory";
                at_most(
                    file,
                    key("max_len"),
                    *max_len as u64,
                    MAX_SEQUENCE as u64,
                    why,
                )?;
                at_most(
                    file,
                    key("buckets"),
                    *buckets as u64,
                    MAX_BUCKETS as u64,
                    "table rows",
                )?;
                self.check_tim_shape(file, i, side.len())
            }
            _ => Ok(()),
        }
    }

    /// TIM's kernel limits: every table it reads at most [`MAX_DIM`] floats wide, and the tables ×
    /// (item + side features + time) it looks up per behaviour at most [`MAX_FEATURES`].
    fn check_tim_shape(&self, file: &str, i: usize, sides: usize) -> Result<()> {
        let widest = (0..self.table_count())
            .map(|t| self.dim_of(t) * self.expert(t).parts_per_row())
            .max();
        let why = format!(
            "feature[{i}] is a sequence: TIM holds a row of at most {MAX_DIM} floats (dim × GwPFM \
             groups) in workgroup memory"
        );
        at_most(
            file,
            "model.dim",
            widest.unwrap_or(0) as u64,
            MAX_DIM as u64,
            &why,
        )?;
        // Per behaviour, each table reads the item, each side feature and the temporal table.
        let lookups = self.table_count() as u64 * (2 + sides as u64);
        let why = format!(
            "tables × (item + side features + time) of feature[{i}]: TIM reads at most \
             {MAX_FEATURES} rows per behaviour"
        );
        at_most(
            file,
            format!("feature[{i}].side"),
            lookups,
            MAX_FEATURES as u64,
            &why,
        )?;
        Ok(())
    }

    fn check_train_sizes(&self, file: &str) -> Result<()> {
        let t = &self.train;
        at_most(
            file,
            "train.batch_size",
            t.batch_size as u64,
            MAX_BATCH as u64,
            "samples per step",
        )?;
        at_most(
            file,
            "train.epochs",
            t.epochs as u64,
            MAX_EPOCHS as u64,
            "passes",
        )?;
        at_most(
            file,
            "train.warmup_steps",
            t.warmup_steps,
            MAX_STEPS,
            "steps",
        )?;
        at_most(file, "train.log_every", t.log_every, MAX_STEPS, "steps")?;
        if let Some(s) = t.steps {
            at_most(file, "train.steps", s, MAX_STEPS, "steps")?;
        }
        let window = "batches held in memory";
        at_most(
            file,
            "train.shuffle_window",
            t.shuffle_window as u64,
            MAX_SHUFFLE_WINDOW as u64,
            window,
        )?;
        match t.lr_decay {
            Some(LrDecay::Cosine { steps, .. }) => {
                at_most(file, "train.lr_decay.steps", steps, MAX_STEPS, "steps")
            }
            Some(LrDecay::Step { every, .. }) => {
                at_most(file, "train.lr_decay.every", every, MAX_STEPS, "steps")
            }
            None => Ok(()),
        }
    }
}

/// Bytes for people: `3.2 GiB`, `128 MiB`, `512 B` (binary units, one decimal below 10).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
