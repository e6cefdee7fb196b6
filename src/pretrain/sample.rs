//! Seeded neighbour sampling: the two-layer computation tree of a batch of target nodes.
//!
//! As in Hamilton et al.'s minibatch algorithm, each target `t` names layer-1 members: its own
//! node first, then `S₂` neighbours drawn uniformly with replacement (none when it has no
//! neighbours). The layer-1 rows are the distinct member nodes of the batch, in first-seen order,
//! each computed once with one draw of `S₁` neighbours for its input-embedding mean. A row serves
//! every target that names it; [`Computation::row_entries`] lists them per row so the backward
//! sums a row's gradient in one fixed order, one writer per row.
//! Negatives are item nodes drawn by training degree^0.75 (word2vec's and GraphSAGE's unigram
//! distortion), by inverse CDF.

use std::collections::HashMap;

use super::graph::Graph;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Neighbours sampled per node: `first` (S₁) for the input-embedding mean of a layer-1 row,
/// `second` (S₂) for the layer-1 mean of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fanouts {
    /// S₁ (the layer-1 aggregation).
    pub first: u32,
    /// S₂ (the layer-2 aggregation).
    pub second: u32,
}

/// The sampled computation of one batch, in the layout the GPU path uploads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Computation {
    /// Node of each layer-1 row.
    pub l1_nodes: Vec<u32>,
    /// `rows + 1` offsets into `l1_neighbours`.
    pub l1_offsets: Vec<u32>,
    /// Sampled neighbour nodes of the layer-1 rows.
    pub l1_neighbours: Vec<u32>,
    /// Node of each target.
    pub targets: Vec<u32>,
    /// `targets + 1` offsets into `members`.
    pub target_rows: Vec<u32>,
    /// Layer-1 rows of each target: `members[target_rows[t]]` its own node's row, then the rows
    /// of its sampled neighbours (a row may repeat: sampling is with replacement).
    pub members: Vec<u32>,
    /// Loss edges: targets `e·(2+Q)` (user), `+1` (positive item), `+2..` (Q negatives).
    pub edges: u32,
    /// Negatives per edge (Q).
    pub negatives: u32,
}

impl Computation {
    /// Layer-1 rows.
    pub fn rows(&self) -> usize {
        self.l1_nodes.len()
    }

    /// Sampled neighbours of target `t` (0 or S₂).
    pub fn sampled(&self, t: usize) -> usize {
        (self.target_rows[t + 1] - self.target_rows[t] - 1) as usize
    }

    /// Per layer-1 row, the targets that read it: `(row offsets [rows + 1], entries)`, each entry
    /// `2·t` (row is t's own) or `2·t + 1` (row is one of t's samples, once per draw), in target
    /// order: the fixed order the backward sums in.
    pub fn row_entries(&self) -> (Vec<u32>, Vec<u32>) {
        let mut count = vec![0u32; self.rows() + 1];
        self.members
            .iter()
            .for_each(|&r| count[r as usize + 1] += 1);
        for r in 0..self.rows() {
            count[r + 1] += count[r];
        }
        let mut next = count.clone();
        let mut entries = vec![0u32; self.members.len()];
        for t in 0..self.targets.len() {
            let (start, end) = (
                self.target_rows[t] as usize,
                self.target_rows[t + 1] as usize,
            );
            for (k, &r) in self.members[start..end].iter().enumerate() {
                entries[next[r as usize] as usize] = 2 * t as u32 + (k > 0) as u32;
                next[r as usize] += 1;
            }
        }
        (count, entries)
    }
}

/// Draws computations from a graph's training adjacency.
#[derive(Debug, Clone)]
pub struct Sampler<'g> {
    graph: &'g Graph,
    fanouts: Fanouts,
    /// Cumulative degree^0.75 of the item nodes with training edges.
    cdf: Vec<f64>,
    /// Their nodes.
    candidates: Vec<u32>,
}

impl<'g> Sampler<'g> {
    /// A sampler over `graph`; fan-outs must be ≥ 1.
    pub fn new(graph: &'g Graph, fanouts: Fanouts) -> Result<Self> {
        if fanouts.first == 0 || fanouts.second == 0 {
            return Err(Error::Dataset(format!(
                "--fanouts {},{}: each must be ≥ 1",
                fanouts.first, fanouts.second
            )));
        }
        let (mut cdf, mut candidates, mut total) = (Vec::new(), Vec::new(), 0.0f64);
        for i in 0..graph.items {
            let degree = graph.neighbours(graph.item_node(i)).len();
            if degree > 0 {
                total += (degree as f64).powf(0.75);
                cdf.push(total);
                candidates.push(graph.item_node(i));
            }
        }
        Ok(Sampler {
            graph,
            fanouts,
            cdf,
            candidates,
        })
    }

    /// One negative item node (degree^0.75); the graph has training edges, so there is one.
    pub fn negative(&self, rng: &mut Rng) -> u32 {
        let total = self.cdf.last().copied().unwrap_or(0.0);
        let x = rng.unit() * total;
        let k = self.cdf.partition_point(|&c| c <= x);
        self.candidates[k.min(self.candidates.len() - 1)]
    }

    fn push_neighbours(&self, node: u32, count: u32, rng: &mut Rng, out: &mut Vec<u32>) {
        let list = self.graph.neighbours(node);
        if !list.is_empty() {
            out.extend((0..count).map(|_| list[rng.below(list.len() as u64) as usize]));
        }
    }

    /// The row of `node`, added (with its S₁ draw) when the batch has none yet.
    fn row_of(
        &self,
        c: &mut Computation,
        rows: &mut HashMap<u32, u32>,
        node: u32,
        rng: &mut Rng,
    ) -> u32 {
        if let Some(&r) = rows.get(&node) {
            return r;
        }
        let r = c.l1_nodes.len() as u32;
        rows.insert(node, r);
        c.l1_nodes.push(node);
        self.push_neighbours(node, self.fanouts.first, rng, &mut c.l1_neighbours);
        c.l1_offsets.push(c.l1_neighbours.len() as u32);
        r
    }

    /// The computation tree of `targets` (no loss edges).
    pub fn targets(&self, targets: &[u32], rng: &mut Rng) -> Computation {
        let mut c = Computation {
            l1_offsets: vec![0],
            target_rows: vec![0],
            ..Default::default()
        };
        let mut rows = HashMap::new();
        let mut second = Vec::with_capacity(self.fanouts.second as usize);
        for &node in targets {
            c.targets.push(node);
            let own = self.row_of(&mut c, &mut rows, node, rng);
            c.members.push(own);
            second.clear();
            self.push_neighbours(node, self.fanouts.second, rng, &mut second);
            for &n in &second {
                let r = self.row_of(&mut c, &mut rows, n, rng);
                c.members.push(r);
            }
            c.target_rows.push(c.members.len() as u32);
        }
        c
    }

    /// The computation of loss edges `(user, item)`: per edge the user's node, the item's, and
    /// `negatives` sampled items, then their trees.
    pub fn edges(&self, edges: &[(u32, u32)], negatives: u32, rng: &mut Rng) -> Computation {
        let mut nodes = Vec::with_capacity(edges.len() * (2 + negatives as usize));
        for &(u, i) in edges {
            nodes.push(u);
            nodes.push(self.graph.item_node(i));
            nodes.extend((0..negatives).map(|_| self.negative(rng)));
        }
        let mut c = self.targets(&nodes, rng);
        c.edges = edges.len() as u32;
        c.negatives = negatives;
        c
    }
}
