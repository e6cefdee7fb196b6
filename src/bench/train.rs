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
use crate::train::policy::TrainPolicy;

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

/// Median training and inference samples/s over `windows` windows of `steps` steps each (after
/// one warm-up window), cycling through `prepared` from batch `first`.
fn time_steps(
    gpu: &Gpu,
    graph: &mut Graph,
    prepared: &[Prepared],
    first: usize,
    windows: usize,
    steps: usize,
) -> Result<(f64, f64)> {
    let rate = |start: Instant, rows: f64| rows / start.elapsed().as_secs_f64();
    let rows = |n: usize| {
        (0..n)
            .map(|i| prepared[i % prepared.len()].rows as f64)
            .sum::<f64>()
    };
    let (mut train, mut infer) = (Vec::new(), Vec::new());
    let mut k = first;
    for w in 0..=windows {
        let start = Instant::now();
        let mut n = 0.0;
        for _ in 0..steps {
            let b = &prepared[k % prepared.len()];
            let rates = TrainPolicy::new(&graph.config().train).rates(graph.step() + 1);
            graph.train_step(gpu, b, rates)?;
            n += b.rows as f64;
            k += 1;
        }
        gpu.sync()?;
        if w > 0 {
            train.push(rate(start, n));
        }
    }
    for w in 0..=windows {
        let start = Instant::now();
        for i in 0..steps {
            graph.predict(gpu, &prepared[i % prepared.len()])?;
        }
        if w > 0 {
            infer.push(rate(start, rows(steps)));
        }
    }
    Ok((median(train), median(infer)))
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
    let config = ModelConfig::parse(&model_text(shape, 0.1), "bench model")?;
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
    let (train, infer) = time_steps(gpu, &mut graph, &prepared, 0, windows, steps)?;
    Ok(TrainPoint {
        shape: *shape,
        train_samples_per_sec: train,
        infer_samples_per_sec: infer,
        model_bytes,
        dispatches: graph.dispatches().train,
    })
}

/// One training sweep: a knob and its measured points.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainSweep {
    /// `batch`, `tables`, `seq_len` or `rows`.
    pub sweep: &'static str,
    /// The knob's values with their measurements.
    pub points: Vec<TrainSweepPoint>,
    /// Values left out, with why (a storage group past the 4 chunks a kernel binds).
    pub skipped: Vec<String>,
}

/// A point of a [`TrainSweep`].
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct TrainSweepPoint {
    /// The knob's value.
    pub x: u64,
    /// Training samples per second.
    pub train_samples_per_sec: f64,
    /// Inference samples per second.
    pub infer_samples_per_sec: f64,
    /// GPU buffer bytes of the model.
    pub model_bytes: u64,
    /// Dispatches per training step.
    pub dispatches: u64,
}

/// Training throughput and model memory as the batch size, the number of tables, the sequence
/// length and the table rows grow (one knob at a time from [`TrainShape::standard`]). The rows
/// sweep goes past one storage binding (chunked tables). `quick`: fewer, smaller points.
pub fn sweep(gpu: &Gpu, quick: bool) -> Result<Vec<TrainSweep>> {
    let base = if quick {
        TrainShape {
            batch: 256,
            rows: 10_000,
            seq_len: 20,
            ..TrainShape::standard()
        }
    } else {
        TrainShape::standard()
    };
    let (windows, steps) = if quick { (1, 2) } else { (3, 5) };
    let knobs: Vec<(&'static str, Vec<u32>)> = if quick {
        vec![
            ("batch", vec![64, 256]),
            ("tables", vec![1, 2]),
            ("seq_len", vec![5, 20]),
            ("rows", vec![1_000, 10_000]),
        ]
    } else {
        vec![
            ("batch", vec![128, 256, 512, 1024, 2048, 4096]),
            ("tables", vec![1, 2, 3, 4, 6, 8]),
            ("seq_len", vec![10, 25, 50, 100, 200]),
            // 100,000 rows of the standard model (1.5 KB a row over its 20 tables with their
            // Adagrad state) already pass a 128 MiB binding; 300,000 fill 3.5 of the 4 chunks.
            ("rows", vec![10_000, 30_000, 100_000, 300_000]),
        ]
    };
    let mut out = Vec::new();
    for (name, values) in knobs {
        let mut points = Vec::new();
        let mut skipped = Vec::new();
        for v in values {
            let mut shape = base;
            match name {
                "batch" => shape.batch = v,
                "tables" => shape.tables = v,
                "seq_len" => shape.seq_len = v,
                _ => shape.rows = v,
            }
            let p = match measure(gpu, &shape, 4, windows, steps) {
                Ok(p) => p,
                Err(crate::Error::Layout(why)) => {
                    skipped.push(format!("{name} = {v}: {why}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            points.push(TrainSweepPoint {
                x: v as u64,
                train_samples_per_sec: p.train_samples_per_sec,
                infer_samples_per_sec: p.infer_samples_per_sec,
                model_bytes: p.model_bytes,
                dispatches: p.dispatches,
            });
        }
        out.push(TrainSweep {
            sweep: name,
            points,
            skipped,
        });
    }
    Ok(out)
}

/// Writes `training.json` and, per sweep, `training_<sweep>.png` (samples/s, train and inference)
/// and `training_<sweep>_memory.png` (model MiB) under `dir`.
pub fn write_sweep(
    sweeps: &[TrainSweep],
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>> {
    use super::plot::{line_chart, Series};
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::Error::Dataset(format!("{}: {e}", dir.display())))?;
    let json = dir.join("training.json");
    let text = serde_json::to_string_pretty(sweeps).expect("plain data serialises");
    std::fs::write(&json, text)
        .map_err(|e| crate::Error::Dataset(format!("{}: {e}", json.display())))?;
    let mut written = vec![json];
    for s in sweeps {
        let label = match s.sweep {
            "batch" => "batch size",
            "tables" => "embedding tables M",
            "seq_len" => "behaviour sequence length L",
            _ => "rows per table",
        };
        let log_x = matches!(s.sweep, "batch" | "rows" | "seq_len");
        let xy = |f: &dyn Fn(&TrainSweepPoint) -> f64| -> Vec<(f64, f64)> {
            s.points.iter().map(|p| (p.x as f64, f(p))).collect()
        };
        let path = dir.join(format!("training_{}.png", s.sweep));
        line_chart(
            &path,
            &format!("whole-model throughput vs {label}"),
            label,
            "samples/s",
            &[
                Series::new("training", xy(&|p| p.train_samples_per_sec)),
                Series::new("inference", xy(&|p| p.infer_samples_per_sec)),
            ],
            log_x,
        )?;
        written.push(path);
        let path = dir.join(format!("training_{}_memory.png", s.sweep));
        line_chart(
            &path,
            &format!("model GPU memory vs {label}"),
            label,
            "MiB",
            &[Series::new(
                "buffers",
                xy(&|p| p.model_bytes as f64 / (1u64 << 20) as f64),
            )],
            log_x,
        )?;
        written.push(path);
    }
    Ok(written)
}

/// What [`export`] measured on wgrec's side.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    /// Training samples per second on the exported batches.
    pub train_samples_per_sec: f64,
    /// Inference samples per second.
    pub infer_samples_per_sec: f64,
    /// Per-task loss of one training step on batch 0 from the exported initial state.
    pub first_loss: Vec<f32>,
    /// The adapter.
    pub adapter: String,
    /// Samples per batch.
    pub batch: u32,
    /// Timed steps per window.
    pub steps: usize,
    /// Dispatches per training step.
    pub dispatches: u64,
}

/// Writes the model of `shape` (dropout 0) for another implementation to rebuild and time on the
/// same batches: `model.json` ([`Graph::describe`]), `init.safetensors` (the initial state),
/// `batches.safetensors` (`batches` batches: `batch.{i}.f{f}.offsets|rows` per id feature,
/// `.lengths|target|behaviours|buckets` per sequence feature, `batch.{i}.labels`; exact integers
/// as f32) and `wgrec.json` (this device's samples/s on them and the first step's loss).
pub fn export(
    gpu: &Gpu,
    shape: &TrainShape,
    dir: &std::path::Path,
    batches: usize,
    windows: usize,
    steps: usize,
) -> Result<ExportReport> {
    use crate::checkpoint::Checkpoint;
    let io = |p: &std::path::Path, e: std::io::Error| {
        crate::Error::Dataset(format!("{}: {e}", p.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let config = ModelConfig::parse(&model_text(shape, 0.0), "bench model")?;
    let mut graph = Graph::new(gpu, &config, &shapes(shape), shape.batch, 0.0)?;
    let json = dir.join("model.json");
    std::fs::write(&json, graph.describe().to_string()).map_err(|e| io(&json, e))?;
    let mut init = Checkpoint::new();
    graph.save_state(gpu, &mut init)?;
    init.write(&dir.join("init.safetensors"))?;
    let generator = synth(shape, 7)?;
    let mut file = Checkpoint::new();
    let mut prepared = Vec::new();
    let f32s = |v: &[u32]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    for i in 0..batches.max(1) {
        let b = generator.batch(i as u64 * shape.batch as u64..(i as u64 + 1) * shape.batch as u64);
        let mb = model_batch(shape, &b);
        for (f, input) in mb.features.iter().enumerate() {
            let key = |k: &str| format!("batch.{i}.f{f}.{k}");
            match input {
                FeatureInput::Ids { offsets, rows } => {
                    file.insert_tensor(&key("offsets"), &[offsets.len()], f32s(offsets))?;
                    file.insert_tensor(&key("rows"), &[rows.len()], f32s(rows))?;
                }
                FeatureInput::Sequence(s) => {
                    let width = s.target.len() / s.lengths.len().max(1);
                    file.insert_tensor(&key("lengths"), &[s.lengths.len()], f32s(&s.lengths))?;
                    file.insert_tensor(&key("target"), &[s.lengths.len(), width], f32s(&s.target))?;
                    file.insert_tensor(
                        &key("behaviours"),
                        &[s.buckets.len(), width],
                        f32s(&s.behaviours),
                    )?;
                    file.insert_tensor(&key("buckets"), &[s.buckets.len()], f32s(&s.buckets))?;
                }
            }
        }
        file.insert_tensor(
            &format!("batch.{i}.labels"),
            &[mb.rows, mb.labels.len() / mb.rows.max(1)],
            mb.labels.clone(),
        )?;
        prepared.push(graph.prepare(&mb)?);
    }
    file.write(&dir.join("batches.safetensors"))?;
    let rates = TrainPolicy::new(&graph.config().train).rates(1);
    graph.train_step(gpu, &prepared[0], rates)?;
    let first_loss = graph.last_loss(gpu)?;
    // Batch 0's step is the first-loss check; timing goes on from batch 1.
    let (train, infer) = time_steps(gpu, &mut graph, &prepared, 1, windows, steps)?;
    let report = ExportReport {
        train_samples_per_sec: train,
        infer_samples_per_sec: infer,
        first_loss,
        adapter: gpu.describe(),
        batch: shape.batch,
        steps,
        dispatches: graph.dispatches().train,
    };
    let path = dir.join("wgrec.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).expect("plain data"),
    )
    .map_err(|e| io(&path, e))?;
    Ok(report)
}
