//! The GPU-free layers: graph builder, edge reader, sampler, and the f64 reference's gradients
//! against central finite differences.

use super::reference::{gradients, Params};
use super::*;
use crate::rng::Rng;

fn tiny_graph() -> Graph {
    // User 3 and item 4 have no edges at all; item 0 is hot.
    let edges = vec![
        (0, 0),
        (1, 0),
        (2, 0),
        (0, 1),
        (1, 2),
        (2, 3),
        (0, 0),
        (1, 0),
    ];
    Graph::new(4, 5, edges, 0.0, 7).unwrap()
}

#[test]
fn graph_deduplicates_and_separates_user_and_item_ids() {
    let g = tiny_graph();
    assert_eq!(g.train.len(), 6);
    assert_eq!(g.nodes(), 9);
    assert_eq!(g.neighbours(g.item_node(0)), &[0, 1, 2]);
    assert_eq!(g.neighbours(0), &[4, 5]);
    assert!(g.neighbours(3).is_empty());
    assert!(g.neighbours(g.item_node(4)).is_empty());
}

#[test]
fn holdout_is_seeded_and_disjoint_from_training_edges() {
    let edges: Vec<(u32, u32)> = (0..50)
        .flat_map(|u| (0..4).map(move |i| (u, (u + i) % 30)))
        .collect();
    let a = Graph::new(50, 30, edges.clone(), 0.2, 3).unwrap();
    let b = Graph::new(50, 30, edges.clone(), 0.2, 3).unwrap();
    let c = Graph::new(50, 30, edges, 0.2, 4).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.held_out, c.held_out);
    assert_eq!(a.held_out.len(), 40);
    assert_eq!(a.train.len(), 160);
    assert!(a.held_out.iter().all(|e| a.train.binary_search(e).is_err()));
    // Held-out edges are not in the adjacency.
    let (u, i) = a.held_out[0];
    assert!(!a.neighbours(u).contains(&a.item_node(i)));
}

#[test]
fn empty_edge_set_and_bad_holdout_are_errors() {
    let e = Graph::new(3, 3, vec![], 0.1, 1).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
    let e = Graph::new(3, 3, vec![(0, 0)], 1.5, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--holdout"), "{e}");
}

#[test]
fn sampler_respects_fanouts_and_draws_only_neighbours() {
    let g = tiny_graph();
    let fan = Fanouts {
        first: 3,
        second: 2,
    };
    let s = Sampler::new(&g, fan).unwrap();
    let c = s.edges(&[(0, 0), (3, 4)], 2, &mut Rng::new(9));
    assert_eq!(c.targets.len(), 8);
    assert_eq!(c.targets[..2], [0, g.item_node(0)]);
    for t in 0..c.targets.len() {
        let members = &c.members[c.target_rows[t] as usize..c.target_rows[t + 1] as usize];
        let node = c.targets[t];
        assert_eq!(c.l1_nodes[members[0] as usize], node);
        let want = if g.neighbours(node).is_empty() { 0 } else { 2 };
        assert_eq!(c.sampled(t), want, "target {t}");
        for &r in &members[1..] {
            assert!(g.neighbours(node).contains(&c.l1_nodes[r as usize]));
        }
    }
    // One row per distinct node: the hot item 0 is computed once however many targets name it.
    let mut nodes = c.l1_nodes.clone();
    nodes.sort_unstable();
    nodes.dedup();
    assert_eq!(nodes.len(), c.rows());
    let (offsets, entries) = c.row_entries();
    assert_eq!(entries.len(), c.members.len());
    for r in 0..c.rows() {
        for &e in &entries[offsets[r] as usize..offsets[r + 1] as usize] {
            let t = (e / 2) as usize;
            let members = &c.members[c.target_rows[t] as usize..c.target_rows[t + 1] as usize];
            if e % 2 == 0 {
                assert_eq!(members[0], r as u32);
            } else {
                assert!(members[1..].contains(&(r as u32)));
            }
        }
    }
    for r in 0..c.rows() {
        let sample = &c.l1_neighbours[c.l1_offsets[r] as usize..c.l1_offsets[r + 1] as usize];
        let list = g.neighbours(c.l1_nodes[r]);
        assert_eq!(sample.len(), if list.is_empty() { 0 } else { 3 });
        assert!(sample.iter().all(|n| list.contains(n)));
    }
    // Negatives are items with training edges (item 4 has none).
    for e in 0..2 {
        for q in 0..2 {
            let n = c.targets[e * 4 + 2 + q];
            assert!(n >= g.users && n != g.item_node(4), "negative {n}");
        }
    }
    assert_eq!(c, s.edges(&[(0, 0), (3, 4)], 2, &mut Rng::new(9)));
    assert_ne!(c, s.edges(&[(0, 0), (3, 4)], 2, &mut Rng::new(10)));
}

/// Central differences on every parameter kind. Tolerance: `check_gradient`'s 1e-6 relative
/// (h = 1e-6 in f64: truncation O(h²), rounding O(ε/h) ≈ 1e-10 of the loss).
#[test]
fn reference_gradients_match_finite_differences() {
    let g = tiny_graph();
    let s = Sampler::new(
        &g,
        Fanouts {
            first: 3,
            second: 2,
        },
    )
    .unwrap();
    let c = s.edges(&[(0, 0), (1, 2), (3, 4)], 2, &mut Rng::new(5));
    let p = Params::init(g.nodes() as usize, 4, 11);
    let tau = 0.5;
    let grads = gradients(&p, &c, tau);
    assert!(grads.x.iter().any(|v| *v != 0.0) && grads.w1.iter().any(|v| *v != 0.0));
    let loss_at = |q: Params| gradients(&q, &c, tau).loss;
    let with = |f: fn(&mut Params, &[f64]), v: &[f64]| {
        let mut q = p.clone();
        f(&mut q, v);
        loss_at(q)
    };
    check_gradient("x", &p.x, &grads.x, |v| with(|q, v| q.x = v.to_vec(), v));
    check_gradient("w1", &p.w1, &grads.w1, |v| {
        with(|q, v| q.w1 = v.to_vec(), v)
    });
    check_gradient("w2", &p.w2, &grads.w2, |v| {
        with(|q, v| q.w2 = v.to_vec(), v)
    });
}

fn check_gradient(what: &str, x: &[f64], analytic: &[f64], loss: impl Fn(&[f64]) -> f64) {
    let h = 1e-6;
    for k in 0..x.len() {
        let mut v = x.to_vec();
        v[k] = x[k] + h;
        let up = loss(&v);
        v[k] = x[k] - h;
        let down = loss(&v);
        let fd = (up - down) / (2.0 * h);
        assert!(
            (fd - analytic[k]).abs() <= 1e-6 * (1.0 + analytic[k].abs()),
            "{what}[{k}]: finite difference {fd}, analytic {}",
            analytic[k]
        );
    }
}

#[test]
fn planted_communities_are_seeded_and_mostly_inside() {
    let a = synth::planted_communities(40, 24, 4, 6, 0.9, 2);
    assert_eq!(a, synth::planted_communities(40, 24, 4, 6, 0.9, 2));
    let inside = a
        .edges
        .iter()
        .filter(|&&(u, i)| a.user_community[u as usize] == a.item_community[i as usize])
        .count();
    assert!(inside as f64 / a.edges.len() as f64 > 0.85);
}

fn data_folder(name: &str, train: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-pretrain-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let schema =
        "delimiter = \",\"\ncolumns = \"label:click, categorical:user, categorical:item\"\n";
    std::fs::write(dir.join("schema.toml"), schema).unwrap();
    std::fs::write(dir.join("train.csv"), train).unwrap();
    dir
}

#[test]
fn edges_keep_positive_rows_and_separate_user_and_item_ids() {
    let dir = data_folder(
        "edges",
        "click,user,item\n1,5,5\n0,5,7\n1,6,5\n1,5,5\n,7,7\n",
    );
    let mut columns = EdgeColumns {
        user: "user".into(),
        item: "item".into(),
        label: None,
        rows: EdgeRows::Positive,
    };
    let mut list = EdgeList::default();
    list.read_folder(&dir, &columns).unwrap();
    assert_eq!(list.users.names, ["5", "6"]);
    assert_eq!(list.items.names, ["5"]);
    assert_eq!(list.edges, [(0, 0), (1, 0), (0, 0)]);
    let g = Graph::new(list.users.len(), list.items.len(), list.edges, 0.0, 1).unwrap();
    assert_eq!(g.train, [(0, 0), (1, 0)]);
    // User "5" is node 0, item "5" node 2: different nodes.
    assert_eq!(g.neighbours(0), &[2]);
    columns.rows = EdgeRows::All;
    let mut all = EdgeList::default();
    all.read_folder(&dir, &columns).unwrap();
    assert_eq!(all.edges.len(), 5, "every row, the unlabelled one included");
    columns.item = "click".into();
    let e = all.read_folder(&dir, &columns).unwrap_err().to_string();
    assert!(
        e.contains("--item \"click\"") && e.contains("categorical"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
