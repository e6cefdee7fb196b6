//! Plain CPU references for the embedding kernels (f64 accumulation) and the random problems they
//! are checked on.

use std::collections::BTreeMap;

use wgrec::kernels::embedding::{
    Bags, FeatureSet, MnsBase, Pooling, SparseOptimizer, StorageLayout, TableSpec,
};
use wgrec::rng::{Rng, Zipf};

/// How ids are drawn.
#[derive(Debug, Clone, Copy)]
pub enum Ids {
    Uniform,
    Zipf(f64),
    /// Row 0 takes half of all lookups, the rest uniform.
    Hot,
}

/// A random embedding problem: tables, features over them, and how bags are drawn.
#[derive(Debug, Clone)]
pub struct Problem {
    pub tables: Vec<TableSpec>,
    pub features: Vec<(usize, Pooling, Vec<MnsBase>)>,
    pub max_batch: u32,
    pub max_bag: u32,
    pub weighted: bool,
    pub ids: Ids,
}

impl Problem {
    /// Upper bound on lookups of any batch.
    pub fn max_lookups(&self) -> u64 {
        self.features.len() as u64 * self.max_batch as u64 * self.max_bag as u64
    }

    /// Upper bound on touched rows (MNS digits counted).
    pub fn max_touches(&self) -> u64 {
        let per_sample: u64 = self
            .features
            .iter()
            .map(|(_, _, m)| {
                let digits: u32 = m.iter().map(|b| b.digits).sum();
                self.max_bag as u64 * digits.max(1) as u64
            })
            .sum();
        per_sample * self.max_batch as u64
    }

    /// A chunk size that splits the storage into 2–4 chunks, so rows straddle chunk boundaries.
    pub fn small_chunk_bytes(&self, optimizer: SparseOptimizer) -> u64 {
        let total4: u64 = self
            .tables
            .iter()
            .map(|t| t.rows as u64 * (t.width as u64 / 4 + optimizer.state4(t.width / 4) as u64))
            .sum();
        total4.div_ceil(4).next_power_of_two().max(1) * 16
    }

    /// Random bags for `batch` samples; some bags empty.
    pub fn bags(&self, layout: &StorageLayout, batch: u32, rng: &mut Rng) -> Bags {
        let mut bags = Bags {
            batch_size: batch,
            offsets: vec![0],
            ..Default::default()
        };
        let mut weights = Vec::new();
        for (table, _, mns) in &self.features {
            let limit = if mns.is_empty() {
                layout.tables[*table].rows as u64
            } else {
                MnsBase::limit(mns).min(1 << 24)
            };
            let zipf = match self.ids {
                Ids::Zipf(alpha) => Some(Zipf::new(limit, alpha)),
                _ => None,
            };
            for _ in 0..batch {
                let len = rng.below(self.max_bag as u64 + 1);
                for _ in 0..len {
                    let id = match (&self.ids, &zipf) {
                        (_, Some(z)) => z.sample(rng),
                        (Ids::Hot, _) if rng.below(2) == 0 => 0,
                        _ => rng.below(limit),
                    };
                    bags.indices.push(id as u32);
                    weights.push(rng.uniform(-1.5, 1.5));
                }
                bags.offsets.push(bags.indices.len() as u32);
            }
        }
        if self.weighted {
            bags.weights = Some(weights);
        }
        bags
    }
}

/// Random weights, rows × width per table, never all zero.
pub fn random_tables(tables: &[TableSpec], rng: &mut Rng) -> Vec<Vec<f32>> {
    tables
        .iter()
        .map(|t| {
            (0..t.rows as usize * t.width as usize)
                .map(|_| rng.uniform(-1.0, 1.0))
                .collect()
        })
        .collect()
}

/// The rows a lookup value touches in a feature's table.
fn touched_rows(mns: &[MnsBase], v: u32) -> Vec<u32> {
    if mns.is_empty() {
        vec![v]
    } else {
        MnsBase::digit_rows(mns, v).collect()
    }
}

fn lookup_weight(bags: &Bags, l: usize) -> f64 {
    bags.weights.as_ref().map_or(1.0, |w| w[l] as f64)
}

/// (float position in the output, scale) of every output row a lookup contributes to.
fn output_slot(fs: &FeatureSet, bags: &Bags, f: usize, b: usize, l: usize) -> (usize, f64) {
    let spec = &fs.features[f];
    let bag = f * bags.batch_size as usize + b;
    let len = (bags.offsets[bag + 1] - bags.offsets[bag]) as f64;
    match spec.pooling {
        Pooling::None => {
            let first = bags.feature_lookups(f).start;
            let at = spec.out_offset as usize + (l - first) * spec.out_stride as usize;
            (at, 1.0)
        }
        Pooling::Sum => (spec.out_offset as usize + b * spec.out_stride as usize, 1.0),
        Pooling::Mean => (
            spec.out_offset as usize + b * spec.out_stride as usize,
            1.0 / len,
        ),
    }
}

/// Reference gather: for each output float the reference writes, (value, Σ|terms|).
pub fn forward(fs: &FeatureSet, tables: &[Vec<f32>], bags: &Bags) -> BTreeMap<usize, (f64, f64)> {
    let mut out = BTreeMap::new();
    let batch = bags.batch_size as usize;
    for (f, spec) in fs.features.iter().enumerate() {
        let width = fs.widths[f] as usize;
        for b in 0..batch {
            let bag = f * batch + b;
            if spec.pooling != Pooling::None {
                let (at, _) = output_slot(fs, bags, f, b, 0);
                for d in 0..width {
                    out.insert(at + d, (0.0, 0.0));
                }
            }
            for l in bags.offsets[bag] as usize..bags.offsets[bag + 1] as usize {
                let (at, scale) = output_slot(fs, bags, f, b, l);
                let coef = lookup_weight(bags, l) * scale;
                for row in touched_rows(&spec.mns, bags.indices[l]) {
                    for d in 0..width {
                        let x = coef * tables[spec.table][row as usize * width + d] as f64;
                        let e = out.entry(at + d).or_insert((0.0, 0.0));
                        e.0 += x;
                        e.1 += x.abs();
                    }
                }
            }
        }
    }
    out
}

/// Reference reduced gradient of every touched row: (table, row) → (gradient, Σ|terms|) per element.
pub fn row_gradients(
    fs: &FeatureSet,
    bags: &Bags,
    grad: &[f32],
) -> BTreeMap<(usize, u32), Vec<(f64, f64)>> {
    let mut rows: BTreeMap<(usize, u32), Vec<(f64, f64)>> = BTreeMap::new();
    let batch = bags.batch_size as usize;
    for (f, spec) in fs.features.iter().enumerate() {
        let width = fs.widths[f] as usize;
        for b in 0..batch {
            let bag = f * batch + b;
            for l in bags.offsets[bag] as usize..bags.offsets[bag + 1] as usize {
                let (at, scale) = output_slot(fs, bags, f, b, l);
                let coef = lookup_weight(bags, l) * scale;
                for row in touched_rows(&spec.mns, bags.indices[l]) {
                    let g = rows
                        .entry((spec.table, row))
                        .or_insert_with(|| vec![(0.0, 0.0); width]);
                    for (d, e) in g.iter_mut().enumerate() {
                        let x = coef * grad[at + d] as f64;
                        e.0 += x;
                        e.1 += x.abs();
                    }
                }
            }
        }
    }
    rows
}

/// Reference weight decay of every touched row: its table's λ (`table_decay`), divided by the
/// row's lookups in the batch (MNS digits each count) when `frequency` is set.
pub fn row_decay(
    fs: &FeatureSet,
    bags: &Bags,
    table_decay: &[f64],
    frequency: bool,
) -> BTreeMap<(usize, u32), f64> {
    let mut lookups: BTreeMap<(usize, u32), u32> = BTreeMap::new();
    let batch = bags.batch_size as usize;
    for (f, spec) in fs.features.iter().enumerate() {
        for bag in f * batch..(f + 1) * batch {
            for l in bags.offsets[bag] as usize..bags.offsets[bag + 1] as usize {
                for row in touched_rows(&spec.mns, bags.indices[l]) {
                    *lookups.entry((spec.table, row)).or_default() += 1;
                }
            }
        }
    }
    lookups
        .into_iter()
        .map(|((t, row), n)| {
            let per_lookup = if frequency { n as f64 } else { 1.0 };
            ((t, row), table_decay[t] / per_lookup)
        })
        .collect()
}

/// A table and its optimizer state in f64, updated as the kernel should.
#[derive(Debug, Clone)]
pub struct RefTable {
    pub width: usize,
    pub w: Vec<f64>,
    /// Adagrad: one per row; Adam: m then v, width each per row.
    pub state: Vec<f64>,
}

impl RefTable {
    pub fn new(weights: &[f32], width: usize, optimizer: SparseOptimizer) -> Self {
        let rows = weights.len() / width;
        let per_row = match optimizer {
            SparseOptimizer::Sgd => 0,
            SparseOptimizer::RowwiseAdagrad { .. } => 1,
            SparseOptimizer::Adam { .. } => 2 * width,
        };
        RefTable {
            width,
            w: weights.iter().map(|&x| x as f64).collect(),
            state: vec![0.0; rows * per_row],
        }
    }
}

/// One reference step of `optimizer` on the touched rows, each with its weight decay `decay`.
pub fn apply_update(
    tables: &mut [RefTable],
    grads: &BTreeMap<(usize, u32), Vec<(f64, f64)>>,
    optimizer: SparseOptimizer,
    lr: f64,
    decay: &BTreeMap<(usize, u32), f64>,
    step: i32,
) {
    for (&(t, row), g) in grads {
        let wd = decay[&(t, row)];
        let table = &mut tables[t];
        let width = table.width;
        let w = &mut table.w[row as usize * width..(row as usize + 1) * width];
        match optimizer {
            SparseOptimizer::Sgd => {
                for d in 0..width {
                    w[d] -= lr * (g[d].0 + wd * w[d]);
                }
            }
            SparseOptimizer::RowwiseAdagrad { eps } => {
                let gd: Vec<f64> = (0..width).map(|d| g[d].0 + wd * w[d]).collect();
                let acc = &mut table.state[row as usize];
                *acc += gd.iter().map(|x| x * x).sum::<f64>() / width as f64;
                let denom = acc.sqrt() + eps as f64;
                for d in 0..width {
                    w[d] -= lr * gd[d] / denom;
                }
            }
            SparseOptimizer::Adam { beta1, beta2, eps } => {
                let (b1, b2) = (beta1 as f64, beta2 as f64);
                let s = &mut table.state[row as usize * 2 * width..(row as usize + 1) * 2 * width];
                for d in 0..width {
                    let m = b1 * s[d] + (1.0 - b1) * g[d].0;
                    let v = b2 * s[width + d] + (1.0 - b2) * g[d].0 * g[d].0;
                    s[d] = m;
                    s[width + d] = v;
                    let mhat = m / (1.0 - b1.powi(step));
                    let vhat = v / (1.0 - b2.powi(step));
                    w[d] -= lr * (mhat / (vhat.sqrt() + eps as f64) + wd * w[d]);
                }
            }
        }
    }
}
