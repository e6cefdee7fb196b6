//! End-to-end training and inference throughput of a whole model, fed in-process by the synthetic
//! generator (DATA.md §3) so no file or parser limits the measurement: the model of
//! [`model_text`] (M tables alternating DCNv2 and GwPFM experts, TIM over the behaviour sequence,
//! MNS numeric features, BatchNorm, a two-layer MLP), batches converted straight from
//! [`SynthBatch`]es with every id folded into its table (`id mod rows`, as hashing would).
//!
//! Used by `wgrec bench --train` (a row in the kernel table), the scaling sweeps (samples/s and
//! memory as the batch, the number of tables, the sequence length and the table rows grow), and
//! `scripts/bench-vs-torch.sh`, whose PyTorch side (`benches/torch/model.py`) builds the same
//! model from the same description.

use std::time::Instant;

use crate::config::ModelConfig;
use crate::data::encode::{FeatureInput, ModelBatch};
use crate::data::synth::{Synth, SynthBatch, SynthConfig, MISSING};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::graph::{FeatureShape, Graph, Prepared};
use crate::kernels::embedding::MnsBase;
use crate::kernels::tim::TimBatch;

/// The knobs of the end-to-end sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainShape {
    /// Samples per step.
    pub batch: u32,
    /// Embedding tables M.
    pub tables: u32,
    /// Longest behaviour sequence (TIM's L).
    pub seq_len: u32,
    /// Rows of every id table (user, item, category and context fields).
    pub rows: u32,
    /// Context categorical fields besides user, item and category.
    pub context: u32,
}

impl TrainShape {
    /// The ml-100k-sized default: batch 1024, 2 tables, L = 50, 100k rows, 4 context fields.
    pub fn standard() -> Self {
        TrainShape {
            batch: 1024,
            tables: 2,
            seq_len: 50,
            rows: 100_000,
            context: 4,
        }
    }
}

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

/// The model file of a shape (also read by the PyTorch side).
pub fn model_text(shape: &TrainShape) -> String {
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
         dropout = 0.1\n",
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

/// One measured point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainPoint {
    /// The shape.
    pub shape: TrainShape,
    /// Training samples per second (median over windows of steps).
    pub train_samples_per_sec: f64,
    /// Inference samples per second (forward + probabilities read back, median).
    pub infer_samples_per_sec: f64,
    /// Bytes of GPU buffers the model allocated (tables, activations, parameters, state).
    pub model_bytes: u64,
    /// Dispatches per training step.
    pub dispatches: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Compiles the shape's model and times `windows` windows of `steps` training steps (and as many
/// inference batches), after one warm-up window, over `batches` distinct pre-built batches.
pub fn measure(
    gpu: &Gpu,
    shape: &TrainShape,
    batches: usize,
    windows: usize,
    steps: usize,
) -> Result<TrainPoint> {
    let config = ModelConfig::parse(&model_text(shape), "bench model")?;
    let before = gpu.allocated_bytes();
    let mut graph = Graph::new(gpu, &config, &shapes(shape), shape.batch, 0.0)?;
    let model_bytes = gpu.allocated_bytes() - before;
    let generator = synth(shape, 7)?;
    let prepared: Vec<Prepared> = (0..batches.max(1) as u64)
        .map(|i| {
            let b = generator.batch(i * shape.batch as u64..(i + 1) * shape.batch as u64);
            graph.prepare(&model_batch(shape, &b))
        })
        .collect::<Result<_>>()?;
    let mut train = Vec::new();
    let mut k = 0usize;
    for w in 0..=windows {
        let start = Instant::now();
        for _ in 0..steps {
            graph.train_step(gpu, &prepared[k % prepared.len()])?;
            k += 1;
        }
        gpu.sync()?;
        if w > 0 {
            train.push((steps as f64 * shape.batch as f64) / start.elapsed().as_secs_f64());
        }
    }
    let mut infer = Vec::new();
    for w in 0..=windows {
        let start = Instant::now();
        for i in 0..steps {
            graph.predict(gpu, &prepared[i % prepared.len()])?;
        }
        if w > 0 {
            infer.push((steps as f64 * shape.batch as f64) / start.elapsed().as_secs_f64());
        }
    }
    Ok(TrainPoint {
        shape: *shape,
        train_samples_per_sec: median(train),
        infer_samples_per_sec: median(infer),
        model_bytes,
        dispatches: graph.dispatches().train,
    })
}
