//! A planted-community bipartite graph (issue 16 point 6): users and items each belong to one of
//! `communities`, and a user's edges land inside its community with probability `inside`. Embeddings
//! that learned anything separate the communities, which the tests measure.

use crate::rng::Rng;

/// A generated graph and the truth it was planted with.
#[derive(Debug, Clone, PartialEq)]
pub struct Planted {
    /// Users.
    pub users: u32,
    /// Items.
    pub items: u32,
    /// `(user, item)` edges (repeats possible; the graph builder deduplicates).
    pub edges: Vec<(u32, u32)>,
    /// Community of each user (`u % communities`).
    pub user_community: Vec<u32>,
    /// Community of each item (`i % communities`).
    pub item_community: Vec<u32>,
}

/// `edges_per_user` edges per user: inside its community (uniform over the community's items)
/// with probability `inside`, else uniform over every item. Seeded; `communities ≥ 1`,
/// `items ≥ communities`.
pub fn planted_communities(
    users: u32,
    items: u32,
    communities: u32,
    edges_per_user: u32,
    inside: f64,
    seed: u64,
) -> Planted {
    let c = communities.max(1);
    let mut rng = Rng::new(seed ^ 0xC0_33);
    let mut edges = Vec::with_capacity((users * edges_per_user) as usize);
    for u in 0..users {
        let home = u % c;
        // Items of community `home` are home, home + c, home + 2c, … below `items`.
        let in_home = (items - home).div_ceil(c).max(1) as u64;
        for _ in 0..edges_per_user {
            let item = if rng.unit() < inside {
                home + c * rng.below(in_home) as u32
            } else {
                rng.below(items as u64) as u32
            };
            edges.push((u, item));
        }
    }
    Planted {
        users,
        items,
        edges,
        user_community: (0..users).map(|u| u % c).collect(),
        item_community: (0..items).map(|i| i % c).collect(),
    }
}

/// Nearest-centroid purity: the fraction of rows (width `dim`) whose nearest class centroid (by
/// cosine) is their own class. 1 for perfectly separated classes, ≈ 1/classes for noise.
pub fn centroid_purity(vectors: &[f32], dim: usize, classes: &[u32]) -> f64 {
    let k = classes.iter().max().map_or(0, |m| *m as usize + 1);
    let mut centroids = vec![0.0f64; k * dim];
    for (r, &c) in classes.iter().enumerate() {
        for j in 0..dim {
            centroids[c as usize * dim + j] += vectors[r * dim + j] as f64;
        }
    }
    let cosine = |r: usize, c: usize| {
        let v = &vectors[r * dim..(r + 1) * dim];
        let m = &centroids[c * dim..(c + 1) * dim];
        let dot: f64 = v.iter().zip(m).map(|(a, b)| *a as f64 * b).sum();
        let norm: f64 = m.iter().map(|b| b * b).sum::<f64>().sqrt().max(1e-300);
        dot / norm
    };
    let hits = classes
        .iter()
        .enumerate()
        .filter(|&(r, &c)| {
            let best = (0..k).max_by(|&a, &b| cosine(r, a).total_cmp(&cosine(r, b)));
            best == Some(c as usize)
        })
        .count();
    hits as f64 / classes.len().max(1) as f64
}
