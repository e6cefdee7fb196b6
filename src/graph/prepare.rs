//! Host-side preparation of a batch for a [`Graph`](super::Graph): the bags of every gather and
//! TIM in the layouts their feature sets expect, and the sparse update plans (sorting touched rows
//! — the expensive part), done on the loader thread ahead of the GPU.

use crate::config::ModelConfig;
use crate::data::encode::{FeatureInput, ModelBatch};
use crate::error::{Error, Result};
use crate::kernels::embedding::{Bags, FeatureSet, SparseUpdatePlan};
use crate::kernels::tim::TimSpec;

/// One batch ready for upload.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Samples.
    pub rows: u32,
    /// File lines of the rows (for messages).
    pub lines: Vec<u64>,
    /// Per gather (each expert group's, one per storage slab it reads, in graph order): its bags
    /// and their update plan (the slab's own rows only).
    pub gathers: Vec<(Bags, SparseUpdatePlan)>,
    /// Per (group, sequence feature) in graph order: TIM's bags and their update plan.
    pub tims: Vec<(Bags, SparseUpdatePlan)>,
    /// `[rows, tasks]` labels.
    pub labels: Vec<f32>,
    /// `[rows]` loss weights, when the model is weighted.
    pub weights: Option<Vec<f32>>,
    /// `[rows]` GAUC groups, when configured.
    pub groups: Option<Vec<u64>>,
}

/// What preparing needs of a graph (cheap to clone; `Send`).
#[derive(Debug, Clone)]
pub struct Preparer {
    max_batch: u32,
    tasks: usize,
    /// Per gather: its feature set and the config feature of each of its features.
    groups: Vec<(FeatureSet, Vec<usize>)>,
    /// Per TIM: (group, config feature, spec, feature set).
    tims: Vec<(usize, usize, TimSpec, FeatureSet)>,
}

impl Preparer {
    pub(super) fn new(
        config: &ModelConfig,
        max_batch: u32,
        groups: Vec<(FeatureSet, Vec<usize>)>,
        tims: Vec<(usize, usize, TimSpec, FeatureSet)>,
    ) -> Result<Self> {
        Ok(Preparer {
            max_batch,
            tasks: config.outputs().len(),
            groups,
            tims,
        })
    }

    /// The MNS bases of config feature `f` as the gather encodes them (empty unless numeric).
    pub fn mns(&self, f: usize) -> Vec<crate::kernels::embedding::MnsBase> {
        self.groups
            .iter()
            .flat_map(|(set, inputs)| inputs.iter().zip(&set.features))
            .find(|(&i, _)| i == f)
            .map(|(_, spec)| spec.mns.clone())
            .unwrap_or_default()
    }

    /// Bags and plans of `batch`.
    pub fn prepare(&self, batch: &ModelBatch) -> Result<Prepared> {
        let rows = batch.rows;
        let bad = |m: String| Error::Graph(m);
        if rows > self.max_batch as usize {
            return Err(bad(format!(
                "batch of {rows} rows exceeds the graph's maximum {}",
                self.max_batch
            )));
        }
        if batch.labels.len() != rows * self.tasks {
            return Err(bad(format!(
                "{} labels for {rows} rows × {} tasks",
                batch.labels.len(),
                self.tasks
            )));
        }
        let mut gathers = Vec::with_capacity(self.groups.len());
        for (features, inputs) in &self.groups {
            let mut offsets = Vec::with_capacity(inputs.len() * rows + 1);
            let mut indices = Vec::new();
            offsets.push(0u32);
            for &f in inputs {
                let Some(FeatureInput::Ids {
                    offsets: o,
                    rows: ids,
                }) = batch.features.get(f)
                else {
                    return Err(bad(format!("feature {f} of the batch is not an id list")));
                };
                if o.len() != rows + 1 {
                    return Err(bad(format!(
                        "feature {f}: {} offsets for {rows} rows",
                        o.len()
                    )));
                }
                let base = indices.len() as u32;
                indices.extend_from_slice(ids);
                offsets.extend(o[1..].iter().map(|&x| base + x));
            }
            let bags = Bags {
                batch_size: rows as u32,
                offsets,
                indices,
                weights: None,
            };
            let plan = SparseUpdatePlan::build(features, &bags);
            gathers.push((bags, plan));
        }
        let mut tims = Vec::with_capacity(self.tims.len());
        for (_, f, spec, features) in &self.tims {
            let Some(FeatureInput::Sequence(seq)) = batch.features.get(*f) else {
                return Err(bad(format!("feature {f} of the batch is not a sequence")));
            };
            let bags = seq.bags(spec)?;
            let plan = SparseUpdatePlan::build(features, &bags);
            tims.push((bags, plan));
        }
        Ok(Prepared {
            rows: rows as u32,
            lines: batch.lines.clone(),
            gathers,
            tims,
            labels: batch.labels.clone(),
            weights: batch.weights.clone(),
            groups: batch.groups.clone(),
        })
    }
}
