//! The user–item click graph: deduplicated edges, a seeded held-out split for link-prediction AUC,
//! and the CSR adjacency of the training edges over one node space (users first, then items, so a
//! user "5" and an item "5" are different nodes).

use crate::error::{Error, Result};
use crate::rng::Rng;

/// A bipartite graph with its held-out edges.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Users; user `u` is node `u`.
    pub users: u32,
    /// Items; item `i` is node `users + i`.
    pub items: u32,
    /// Training edges `(user, item)`, sorted, unique.
    pub train: Vec<(u32, u32)>,
    /// Held-out edges, disjoint from `train`, in the seeded order they were drawn.
    pub held_out: Vec<(u32, u32)>,
    /// `nodes + 1` offsets into `adjacency`.
    pub offsets: Vec<u32>,
    /// Neighbours (node ids) of every node, in sorted order, training edges only.
    pub adjacency: Vec<u32>,
}

impl Graph {
    /// Deduplicates `edges` (user, item), holds out `holdout` (in [0, 1)) of them, seeded, and
    /// builds the adjacency of the rest. No edge, or none left to train on, is an error.
    pub fn new(
        users: u32,
        items: u32,
        mut edges: Vec<(u32, u32)>,
        holdout: f64,
        seed: u64,
    ) -> Result<Self> {
        if !(0.0..1.0).contains(&holdout) {
            return Err(Error::Dataset(format!(
                "--holdout {holdout}: need a fraction in [0, 1)"
            )));
        }
        if let Some(&(u, i)) = edges.iter().find(|&&(u, i)| u >= users || i >= items) {
            return Err(Error::Dataset(format!(
                "edge ({u}, {i}) outside {users} users × {items} items"
            )));
        }
        edges.sort_unstable();
        edges.dedup();
        if edges.is_empty() {
            return Err(Error::Dataset(
                "the edge set is empty: no row gave a user–item edge".into(),
            ));
        }
        let mut order = edges.clone();
        let mut rng = Rng::new(seed ^ 0x401D);
        for k in (1..order.len()).rev() {
            order.swap(k, rng.below(k as u64 + 1) as usize);
        }
        let held = ((holdout * edges.len() as f64).round() as usize).min(edges.len() - 1);
        let held_out = order[..held].to_vec();
        let mut train = order[held..].to_vec();
        train.sort_unstable();
        let (offsets, adjacency) = adjacency(users + items, users, &train);
        Ok(Graph {
            users,
            items,
            train,
            held_out,
            offsets,
            adjacency,
        })
    }

    /// Users and items together.
    pub fn nodes(&self) -> u32 {
        self.users + self.items
    }

    /// The node of item `i`.
    pub fn item_node(&self, i: u32) -> u32 {
        self.users + i
    }

    /// The training neighbours of `node`.
    pub fn neighbours(&self, node: u32) -> &[u32] {
        let n = node as usize;
        &self.adjacency[self.offsets[n] as usize..self.offsets[n + 1] as usize]
    }
}

/// CSR of the undirected bipartite edges: user `u` ↔ node `users + i`, neighbours sorted.
fn adjacency(nodes: u32, users: u32, edges: &[(u32, u32)]) -> (Vec<u32>, Vec<u32>) {
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); nodes as usize];
    for &(u, i) in edges {
        lists[u as usize].push(users + i);
        lists[(users + i) as usize].push(u);
    }
    let mut offsets = Vec::with_capacity(nodes as usize + 1);
    let mut adjacency = Vec::with_capacity(2 * edges.len());
    offsets.push(0);
    for mut list in lists {
        list.sort_unstable();
        adjacency.extend(list);
        offsets.push(adjacency.len() as u32);
    }
    (offsets, adjacency)
}
