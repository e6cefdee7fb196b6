//! The bench model and its batches: the model file of a [`TrainShape`], the graph's feature
//! shapes, and synthetic batches converted straight to model inputs.
//!
//! A multi-task architecture (METHODS.md §3) turns the one-task model into a two-task one: the
//! same features and experts per table of each embedding set, a tower of `hidden` per task, the
//! tasks `click` and `like` from the generator's second label (task 0's planted model with the
//! odd context fields' weights cancelled, [`LIKE_CONFLICT`]); `ame` gives the tables of a set
//! widths 16 and 32 alternately. `single` writes exactly the one-task model file it always did.

use super::TrainShape;
use crate::config::Architecture;
use crate::data::encode::{FeatureInput, ModelBatch};
use crate::data::synth::{Synth, SynthBatch, SynthConfig, MISSING};
use crate::error::Result;
use crate::graph::FeatureShape;
use crate::kernels::embedding::MnsBase;
use crate::kernels::tim::TimBatch;

/// Numeric fields of the bench model, each MNS-encoded with radices 2, 3, 10 over 0..1000.
pub const NUMERIC: usize = 2;

/// Positive rate of the second task (`like`) of a multi-task bench model: rarer than clicks.
pub const LIKE_RATE: f64 = 0.1;

/// The generator's task conflict for `like`: 0.5 cancels the odd context fields' first-order
/// weights, so the tasks share most of their signal but not all (what per-task experts are for).
pub const LIKE_CONFLICT: f64 = 0.5;

impl TrainShape {
    /// Tasks of the shape's model: 1 for `single`, else 2 (`click`, `like`).
    pub fn tasks(&self) -> usize {
        if self.architecture.multitask() {
            2
        } else {
            1
        }
    }
}

/// The model-file name of an architecture.
pub fn architecture_name(a: Architecture) -> &'static str {
    match a {
        Architecture::Single => "single",
        Architecture::Shared => "shared",
        Architecture::Mmoe => "mmoe",
        Architecture::Ple => "ple",
        Architecture::Stem => "stem",
        Architecture::Ame => "ame",
    }
}

/// The `[model]` lines of a multi-task architecture (none for `single`).
fn architecture_lines(shape: &TrainShape) -> String {
    let a = shape.architecture;
    if !a.multitask() {
        return String::new();
    }
    let mut s = format!("architecture = \"{}\"\n", architecture_name(a));
    if a == Architecture::Ame {
        let dims: Vec<String> = (0..shape.tables)
            .map(|m| (16 << (m % 2)).to_string())
            .collect();
        s.push_str(&format!("dims = [{}]\n", dims.join(", ")));
    }
    s
}

fn mns() -> Vec<MnsBase> {
    vec![
        MnsBase {
            radix: 2,
            digits: 10,
        },
        MnsBase {
            radix: 3,
            digits: 7,
        },
        MnsBase {
            radix: 10,
            digits: 3,
        },
    ]
}

/// The model file of a shape with dropout `dropout` (the PyTorch comparison uses 0, so that both
/// sides compute the same first loss).
pub fn model_text(shape: &TrainShape, dropout: f32) -> String {
    let experts: Vec<&str> = (0..shape.tables)
        .map(|m| {
            if m % 2 == 0 {
                r#"{ type = "dcn", layers = 2 }"#
            } else {
                r#"{ type = "gwpfm", groups = [["user_id"], ["item_id", "item_cat", "history"]] }"#
            }
        })
        .collect();
    let mut s = format!(
        "[model]\ntables = {}\ndim = 16\nexperts = [{}]\nexpert_width = 128\nhidden = [128, 64]\n\
         dropout = {dropout}\n",
        shape.tables,
        experts.join(", ")
    );
    s.push_str(&architecture_lines(shape));
    for name in ["user_id", "item_id", "item_cat"] {
        s.push_str(&format!(
            "\n[[feature]]\nname = \"{name}\"\nkind = \"categorical\"\n"
        ));
    }
    for c in 0..shape.context {
        s.push_str(&format!(
            "\n[[feature]]\nname = \"c{c}\"\nkind = \"categorical\"\n"
        ));
    }
    for n in 0..NUMERIC {
        s.push_str(&format!(
            "\n[[feature]]\nname = \"n{n}\"\nkind = \"numeric\"\nradices = [2, 3, 10]\n"
        ));
    }
    s.push_str(&format!(
        "\n[[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist_item\"\n\
         item = \"item_id\"\nside = [\"item_cat\"]\nside_columns = [\"hist_cat\"]\nmax_len = {}\n\
         buckets = 64\ntime = {{ by = \"position\" }}\n",
        shape.seq_len
    ));
    s.push_str("\n[[task]]\nname = \"click\"\n");
    if shape.tasks() > 1 {
        s.push_str("\n[[task]]\nname = \"like\"\n");
    }
    s.push_str(&format!("\n[train]\nbatch_size = {}\n", shape.batch));
    s
}

/// The feature shapes the graph needs, in the model's feature order.
pub fn shapes(shape: &TrainShape) -> Vec<FeatureShape> {
    let id = FeatureShape {
        rows: shape.rows,
        mns: vec![],
        max_ids: 1,
    };
    let mut v = vec![id.clone(); 3 + shape.context as usize];
    for _ in 0..NUMERIC {
        v.push(FeatureShape {
            rows: MnsBase::rows(&mns()),
            mns: mns(),
            max_ids: 1,
        });
    }
    v.push(FeatureShape {
        rows: 0,
        mns: vec![],
        max_ids: 0,
    });
    v
}

/// The generator behind the batches: the default synthetic config with the shape's context fields
/// and sequence length, and for a multi-task model the second task.
pub fn synth(shape: &TrainShape, seed: u64) -> Result<Synth> {
    let mut config = SynthConfig::new(seed);
    config.vocabs = vec![10_000; shape.context as usize];
    config.numeric = NUMERIC;
    config.max_history = shape.seq_len as usize;
    if shape.tasks() > 1 {
        config.extra_task_rates = vec![LIKE_RATE];
        config.conflict = LIKE_CONFLICT;
    }
    Synth::new(config)
}

/// One generated batch as model inputs (ids folded into `rows`, missing values on row 0).
pub fn model_batch(shape: &TrainShape, b: &SynthBatch) -> ModelBatch {
    let rows = b.rows;
    let fields = b.ids.len() / rows.max(1);
    let fold = |v: u64| {
        if v == MISSING {
            0
        } else {
            (v % shape.rows as u64) as u32
        }
    };
    let mut features = Vec::new();
    for f in 0..3 + shape.context as usize {
        let ids = (0..rows).map(|r| fold(b.ids[r * fields + f.min(fields - 1)]));
        features.push(FeatureInput::Ids {
            offsets: (0..=rows as u32).collect(),
            rows: ids.collect(),
        });
    }
    for n in 0..NUMERIC {
        let values = (0..rows).map(|r| {
            let x = b.numeric[r * NUMERIC + n];
            if x.is_nan() {
                0
            } else {
                (x.max(0.0) as u32 + 1).min(999)
            }
        });
        features.push(FeatureInput::Ids {
            offsets: (0..=rows as u32).collect(),
            rows: values.collect(),
        });
    }
    let mut seq = TimBatch::default();
    for r in 0..rows {
        let (lo, hi) = (b.hist_offsets[r] as usize, b.hist_offsets[r + 1] as usize);
        let lo = lo.max(hi.saturating_sub(shape.seq_len as usize));
        seq.lengths.push((hi - lo) as u32);
        seq.target.push(fold(b.ids[r * fields + 1]));
        seq.target.push(fold(b.ids[r * fields + 2]));
        for i in lo..hi {
            seq.behaviours.push(fold(b.hist_items[i]));
            seq.behaviours.push(fold(b.hist_cats[i]));
            // Position buckets: most recent 1, clamped to 63.
            seq.buckets.push(((hi - i) as u32).min(63));
        }
    }
    features.push(FeatureInput::Sequence(seq));
    ModelBatch {
        rows,
        lines: vec![0; rows],
        features,
        // The generator's first `tasks` labels of each row.
        labels: (b.labels.chunks(b.tasks.max(1)))
            .flat_map(|row| row[..shape.tasks().min(row.len())].iter().copied())
            .collect(),
        weights: None,
        groups: None,
    }
}
