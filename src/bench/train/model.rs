//! The bench model and its batches: the model file of a [`TrainShape`], the graph's feature
//! shapes, and synthetic batches converted straight to model inputs.

use super::TrainShape;
use crate::data::encode::{FeatureInput, ModelBatch};
use crate::data::synth::{Synth, SynthBatch, SynthConfig, MISSING};
use crate::error::Result;
use crate::graph::FeatureShape;
use crate::kernels::embedding::MnsBase;
use crate::kernels::tim::TimBatch;

/// Numeric fields of the bench model, each MNS-encoded with radices 2, 3, 10 over 0..1000.
pub const NUMERIC: usize = 2;

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
    s.push_str(&format!(
        "\n[[task]]\nname = \"click\"\n\n[train]\nbatch_size = {}\n",
        shape.batch
    ));
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
/// and sequence length.
pub fn synth(shape: &TrainShape, seed: u64) -> Result<Synth> {
    let mut config = SynthConfig::new(seed);
    config.vocabs = vec![10_000; shape.context as usize];
    config.numeric = NUMERIC;
    config.max_history = shape.seq_len as usize;
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
        labels: b.labels.iter().step_by(b.tasks.max(1)).copied().collect(),
        weights: None,
        groups: None,
    }
}
