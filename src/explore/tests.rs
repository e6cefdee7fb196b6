//! [`Ranker::top_probabilities`] against the rankings [`Ranker::rank`] draws.

use super::*;
use crate::config::{BootstrapMask, Uncertainty};

/// Three candidates, five bootstrap heads whose argmax is candidate 0 for heads 0–2, 2 for 3–4.
fn belief() -> Belief {
    let heads = [
        [2.0, 0.0, 1.0],
        [1.5, -1.0, 0.0],
        [0.3, 0.2, 0.1],
        [0.0, 0.1, 0.9],
        [-1.0, -2.0, 3.0],
    ];
    let mut values = Vec::new();
    for j in 0..3 {
        values.extend(heads.iter().map(|h| h[j]));
    }
    Belief {
        kind: Uncertainty::Bootstrap {
            heads: 5,
            mask: BootstrapMask::Poisson,
        },
        outputs: 1,
        width: 5,
        active: vec![true],
        values,
    }
}

#[test]
fn exact_first_place_probabilities_match_the_drawn_rankings() {
    let b = belief();
    let p = [0.2f32, 0.5, 0.4];
    let c = Candidates {
        p: &p,
        belief: Some((&b, 0, 0)),
        bids: None,
    };
    let exact = |policy| {
        Ranker::new(policy, 1)
            .unwrap()
            .top_probabilities(&c)
            .unwrap()
    };
    assert_eq!(exact(Policy::Greedy), Some(vec![0.0, 1.0, 0.0]));
    let e = exact(Policy::EpsilonGreedy(0.3)).unwrap();
    assert!((e[1] - 0.8).abs() < 1e-12 && (e[0] - 0.1).abs() < 1e-12);
    let t = exact(Policy::Thompson).unwrap();
    assert!((t[0] - 0.6).abs() < 1e-12 && t[1] == 0.0 && (t[2] - 0.4).abs() < 1e-12);
    // 20,000 drawn rankings: the share of firsts within 4.9 binomial standard errors (a 1e-6
    // false alarm) of the exact 0.6 and 0.4.
    for policy in [
        Policy::Thompson,
        Policy::EpsilonGreedy(0.3),
        Policy::Ucb(1.0),
    ] {
        let want = exact(policy).unwrap();
        let mut ranker = Ranker::new(policy, 7).unwrap();
        let mut firsts = [0u32; 3];
        let n = 20_000;
        for _ in 0..n {
            firsts[ranker.rank(&c).unwrap().0[0]] += 1;
        }
        for j in 0..3 {
            let se = (want[j] * (1.0 - want[j]) / n as f64).sqrt();
            let got = firsts[j] as f64 / n as f64;
            assert!(
                (got - want[j]).abs() <= 4.9 * se + 1e-12,
                "{policy} {j}: {got} vs {}",
                want[j]
            );
        }
    }
    // Bids reweigh the first place: a bid of 10 on candidate 1 makes it greedy's choice.
    let bids = [1.0f32, 10.0, 1.0];
    let with_bids = Candidates {
        bids: Some(&bids),
        ..c
    };
    let g = Ranker::new(Policy::Greedy, 1)
        .unwrap()
        .top_probabilities(&with_bids)
        .unwrap();
    assert_eq!(g, Some(vec![0.0, 1.0, 0.0]));
    // A Gaussian belief has no closed form for Thompson.
    let gauss = Belief {
        kind: Uncertainty::Gaussian,
        outputs: 1,
        width: 2,
        active: vec![true],
        values: vec![0.0, 0.0, 1.0, 0.0, 0.5, 0.0],
    };
    let c = Candidates {
        p: &p,
        belief: Some((&gauss, 0, 0)),
        bids: None,
    };
    assert_eq!(
        Ranker::new(Policy::Thompson, 1)
            .unwrap()
            .top_probabilities(&c)
            .unwrap(),
        None
    );
}
