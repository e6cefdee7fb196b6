//! The policy core's tests (`rank.rs`): Thompson sampling's draws against their distribution as
//! statistical tests, and the deterministic rules (greedy, UCB, ties, bids, ε's random order,
//! seeds, errors).
//!
//! Each statistical test runs a fixed seed, so it passes or fails the same way every time; the
//! stated α is the chance that a *correct* sampler fails it under some other seed (the false-alarm
//! rate, 10⁻⁶ throughout), so a failure means the sampler is wrong, not unlucky. Each test also
//! shows its power: the same statistic on a plausibly wrong sampler (a shifted mean, a head never
//! drawn) is far past the threshold.

use super::belief::{Belief, LOG_VAR_RANGE};
use super::rank::{Candidates, Policy, Ranker};
use crate::config::{BootstrapMask, Uncertainty};
use crate::rng::Rng;

/// Two-sided z threshold at α = 10⁻⁶: Φ⁻¹(1 − α/2).
const Z_CRIT: f64 = 4.8916;
/// χ² thresholds at α = 10⁻⁶ (survival function inverted numerically): 7 and 4 degrees of
/// freedom.
const CHI2_CRIT_7: f64 = 40.52;
const CHI2_CRIT_4: f64 = 33.38;

/// Φ(x), the standard normal CDF, by Numerical Recipes' `erfcc` (fractional error < 1.2·10⁻⁷,
/// far below the 3·10⁻³ standard error of the frequencies it is compared with).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// The binomial z statistic of `hits` in `n` trials against probability `p`.
fn binomial_z(hits: u64, n: u64, p: f64) -> f64 {
    let n = n as f64;
    (hits as f64 - n * p) / (n * p * (1.0 - p)).sqrt()
}

/// Pearson's χ² of `counts` against equal cell probabilities.
fn chi_square_uniform(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    let expected = n as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// A Gaussian belief, one output, one row per `(μ, s)` (also `crate::policy`'s tests').
pub(crate) fn gaussian(rows: &[(f32, f32)]) -> Belief {
    let values = rows.iter().flat_map(|&(m, s)| [m, 2.0 * s.ln()]).collect();
    Belief {
        kind: Uncertainty::Gaussian,
        outputs: 1,
        width: 2,
        active: vec![true],
        values,
    }
}

/// A bootstrap belief, one output, one row per list of head logits.
pub(crate) fn bootstrap(rows: &[Vec<f32>]) -> Belief {
    Belief {
        kind: Uncertainty::Bootstrap {
            heads: rows[0].len() as u32,
            mask: BootstrapMask::Poisson,
        },
        outputs: 1,
        width: rows[0].len(),
        active: vec![true],
        values: rows.concat(),
    }
}

/// How often candidate 0 ranks first over `n` Thompson requests on `belief`'s two rows.
fn first_wins(belief: &Belief, n: u64, seed: u64) -> u64 {
    let mut ranker = Ranker::new(Policy::Thompson, seed).expect("thompson");
    let p = [0.5, 0.5];
    let c = Candidates {
        p: &p,
        belief: Some((belief, 0, 0)),
        bids: None,
    };
    (0..n)
        .filter(|_| ranker.rank(&c).expect("ranks").0[0] == 0)
        .count() as u64
}

#[test]
fn normal_cdf_matches_known_values() {
    for (x, phi) in [(0.0, 0.5), (1.96, 0.975_002_1), (-1.0, 0.158_655_25)] {
        assert!(
            (normal_cdf(x) - phi).abs() < 1e-7,
            "Φ({x}) = {}",
            normal_cdf(x)
        );
    }
}

#[test]
fn thompson_gaussian_ranks_first_as_often_as_the_exact_probability() {
    // z0 ~ N(0.3, 0.8²), z1 ~ N(0, 0.5²): P(z0 > z1) = Φ(0.3 / √0.89) ≈ 0.6248.
    let (m0, s0, m1, s1) = (0.3f32, 0.8f32, 0.0f32, 0.5f32);
    let exact = normal_cdf((m0 - m1) as f64 / ((s0 * s0 + s1 * s1) as f64).sqrt());
    let n = 20_000;
    let hits = first_wins(&gaussian(&[(m0, s0), (m1, s1)]), n, 7);
    let z = binomial_z(hits, n, exact);
    assert!(z.abs() < Z_CRIT, "{hits}/{n} vs {exact}: z = {z}");
    // Power: a sampler whose mean is off by 0.1 logit is rejected (z ≈ 11 expected).
    let shifted = first_wins(&gaussian(&[(m0 + 0.1, s0), (m1, s1)]), n, 7);
    let z = binomial_z(shifted, n, exact);
    assert!(
        z.abs() > 2.0 * Z_CRIT,
        "a shifted mean went unnoticed: z = {z}"
    );
}

#[test]
fn thompson_gaussian_with_a_clamped_variance_is_a_point_mass() {
    // log s² below the clamp: s = e⁻⁸, so the higher mean wins every time.
    let low = LOG_VAR_RANGE.0 - 10.0;
    let b = Belief {
        values: vec![0.01, low, 0.0, low],
        ..gaussian(&[(0.0, 1.0), (0.0, 1.0)])
    };
    assert_eq!(first_wins(&b, 1000, 3), 1000);
}

/// Head chosen per Thompson request on a belief whose head k has logit `k − 3.5` for every
/// candidate, read back from the score; panics unless all candidates got the same head.
fn heads_drawn(k: usize, n: usize, seed: u64) -> Vec<u64> {
    let row: Vec<f32> = (0..k).map(|h| h as f32 - 3.5).collect();
    let belief = bootstrap(&[row.clone(), row.clone(), row]);
    let mut ranker = Ranker::new(Policy::Thompson, seed).expect("thompson");
    let p = [0.5; 3];
    let c = Candidates {
        p: &p,
        belief: Some((&belief, 0, 0)),
        bids: None,
    };
    let mut counts = vec![0u64; k];
    for _ in 0..n {
        let (_, scores) = ranker.rank(&c).expect("ranks");
        let logit = (scores[0] / (1.0 - scores[0])).ln();
        let head = (logit + 3.5).round() as usize;
        assert!(scores.iter().all(|&s| s == scores[0]), "{scores:?}");
        counts[head] += 1;
    }
    counts
}

#[test]
fn thompson_bootstrap_draws_each_head_one_time_in_k() {
    let counts = heads_drawn(8, 16_000, 11);
    let chi2 = chi_square_uniform(&counts);
    assert!(chi2 < CHI2_CRIT_7, "{counts:?}: χ² = {chi2}");
    // Power: an off-by-one sampler that never draws the last head (below(K − 1)).
    let mut rng = Rng::new(11);
    let mut wrong = vec![0u64; 8];
    (0..16_000).for_each(|_| wrong[rng.below(7) as usize] += 1);
    let chi2 = chi_square_uniform(&wrong);
    assert!(chi2 > 10.0 * CHI2_CRIT_7, "{wrong:?}: χ² = {chi2}");
}

#[test]
fn thompson_bootstrap_ranks_by_the_drawn_heads_logits() {
    // Head 0 prefers candidate 1, head 1 candidate 0: each order about half the time.
    let belief = bootstrap(&[vec![-1.0, 1.0], vec![1.0, -1.0]]);
    let n = 10_000;
    let hits = first_wins(&belief, n, 5);
    let z = binomial_z(hits, n, 0.5);
    assert!(z.abs() < Z_CRIT, "{hits}/{n}: z = {z}");
}

#[test]
fn greedy_orders_by_p_and_ties_keep_the_candidates_order() {
    let mut r = Ranker::new(Policy::Greedy, 1).expect("greedy");
    let p = [0.2, 0.7, 0.2, 0.9, 0.7];
    let (order, scores) = r
        .rank(&Candidates {
            p: &p,
            belief: None,
            bids: None,
        })
        .expect("ranks");
    assert_eq!(order, [3, 1, 4, 0, 2]);
    assert_eq!(scores, p.map(f64::from));
}

#[test]
fn ucb_ranks_by_the_upper_bound_and_c_zero_by_the_mean() {
    // Candidate 0: mean 0.5, sd 0.1; candidate 1: mean 0, sd 1. c = 1 prefers 1; c = 0 prefers 0.
    let belief = gaussian(&[(0.5, 0.1), (0.0, 1.0)]);
    let p = [0.6, 0.5];
    let c = Candidates {
        p: &p,
        belief: Some((&belief, 0, 0)),
        bids: None,
    };
    let (order, scores) = Ranker::new(Policy::Ucb(1.0), 1)
        .expect("ucb")
        .rank(&c)
        .expect("ranks");
    assert_eq!(order, [1, 0]);
    let expected = 1.0 / (1.0 + (-(0.5f64 + 0.1)).exp());
    assert!((scores[0] - expected).abs() < 1e-6, "{scores:?}");
    let (order, _) = Ranker::new(Policy::Ucb(0.0), 1)
        .expect("ucb")
        .rank(&c)
        .expect("ranks");
    assert_eq!(order, [0, 1]);
}

#[test]
fn bids_multiply_the_score_before_ranking() {
    let p = [0.5, 0.2, 0.3];
    let bids = [1.0, 3.0, 0.0];
    let (order, scores) = Ranker::new(Policy::Greedy, 1)
        .expect("greedy")
        .rank(&Candidates {
            p: &p,
            belief: None,
            bids: Some(&bids),
        })
        .expect("ranks");
    assert_eq!(order, [1, 0, 2]);
    assert_eq!(scores, [0.5, 0.2f32 as f64 * 3.0, 0.0]);
}

/// Requests (out of `n`) on five distinct scores whose order is not the greedy one, and how
/// often each candidate came first.
fn epsilon_runs(epsilon: f64, n: u64, seed: u64) -> (u64, Vec<u64>) {
    let mut r = Ranker::new(Policy::EpsilonGreedy(epsilon), seed).expect("epsilon");
    let p = [0.9, 0.7, 0.5, 0.3, 0.1];
    let c = Candidates {
        p: &p,
        belief: None,
        bids: None,
    };
    let mut first = vec![0u64; 5];
    let mut shuffled = 0;
    for _ in 0..n {
        let (order, scores) = r.rank(&c).expect("ranks");
        assert_eq!(scores, p.map(f64::from), "ε keeps the greedy scores");
        first[order[0]] += 1;
        shuffled += u64::from(order != [0, 1, 2, 3, 4]);
    }
    (shuffled, first)
}

#[test]
fn epsilon_greedy_serves_a_random_order_at_rate_epsilon() {
    // A random order is the greedy one with chance 1/5! = 1/120, so non-greedy orders come at
    // ε·(1 − 1/120).
    let n = 20_000;
    let (shuffled, _) = epsilon_runs(0.1, n, 13);
    let z = binomial_z(shuffled, n, 0.1 * (1.0 - 1.0 / 120.0));
    assert!(z.abs() < Z_CRIT, "{shuffled}/{n}: z = {z}");
    // ε = 1: every candidate first one time in five (χ², 4 degrees of freedom).
    let (_, first) = epsilon_runs(1.0, n, 13);
    let chi2 = chi_square_uniform(&first);
    assert!(chi2 < CHI2_CRIT_4, "{first:?}: χ² = {chi2}");
    assert_eq!(epsilon_runs(0.0, 200, 13).0, 0);
}

/// The orders of 50 Thompson requests over four Gaussian candidates.
fn orders(seed: u64) -> Vec<Vec<usize>> {
    let belief = gaussian(&[(0.1, 1.0), (0.0, 1.0), (0.2, 0.5), (-0.1, 2.0)]);
    let mut r = Ranker::new(Policy::Thompson, seed).expect("thompson");
    let p = [0.5; 4];
    let c = Candidates {
        p: &p,
        belief: Some((&belief, 0, 0)),
        bids: None,
    };
    (0..50).map(|_| r.rank(&c).expect("ranks").0).collect()
}

#[test]
fn a_seed_gives_the_same_rankings_and_another_seed_others() {
    assert_eq!(orders(42), orders(42));
    assert_ne!(orders(42), orders(43));
}

#[test]
fn ucb_and_thompson_without_a_belief_are_errors_naming_the_policy() {
    let p = [0.5, 0.4];
    for policy in [Policy::Ucb(1.0), Policy::Thompson] {
        let e = Ranker::new(policy, 1)
            .expect("valid")
            .rank(&Candidates {
                p: &p,
                belief: None,
                bids: None,
            })
            .expect_err("no belief")
            .to_string();
        assert!(
            e.contains(&policy.to_string()) && e.contains("uncertainty"),
            "{e}"
        );
    }
}

#[test]
fn a_belief_too_short_for_the_candidates_is_an_error() {
    let belief = gaussian(&[(0.0, 1.0)]);
    let p = [0.5, 0.4];
    let e = Ranker::new(Policy::Thompson, 1)
        .expect("valid")
        .rank(&Candidates {
            p: &p,
            belief: Some((&belief, 0, 0)),
            bids: None,
        })
        .expect_err("one row of belief for two candidates")
        .to_string();
    assert!(e.contains("rows 0..2"), "{e}");
}

#[test]
fn bad_bids_are_errors_naming_the_candidate() {
    let p = [0.5, 0.4];
    let cases: [(&[f32], &str); 4] = [
        (&[1.0], "1 bids for 2 candidates"),
        (&[1.0, -2.0], "candidate 1's bid -2"),
        (&[f32::NAN, 1.0], "candidate 0's bid NaN"),
        (&[1.0, f32::INFINITY], "candidate 1's bid inf"),
    ];
    for (bids, expected) in cases {
        let e = Ranker::new(Policy::Greedy, 1)
            .expect("greedy")
            .rank(&Candidates {
                p: &p,
                belief: None,
                bids: Some(bids),
            })
            .expect_err("bad bids")
            .to_string();
        assert!(e.contains(expected) && e.contains("bid"), "{e}");
    }
}

#[test]
fn parse_reads_every_policy_and_names_bad_text() {
    assert_eq!(Policy::parse("greedy"), Ok(Policy::Greedy));
    assert_eq!(Policy::parse("epsilon:0.1"), Ok(Policy::EpsilonGreedy(0.1)));
    assert_eq!(Policy::parse("ucb:2"), Ok(Policy::Ucb(2.0)));
    assert_eq!(Policy::parse("ucb"), Ok(Policy::Ucb(1.0)));
    assert_eq!(Policy::parse("thompson"), Ok(Policy::Thompson));
    for bad in [
        "softmax",
        "epsilon",
        "epsilon:x",
        "epsilon:1.5",
        "ucb:-1",
        "greedy:1",
        "thompson:2",
    ] {
        let e = Policy::parse(bad).expect_err(bad);
        assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
    }
    for p in [
        Policy::Greedy,
        Policy::EpsilonGreedy(0.25),
        Policy::Ucb(1.5),
        Policy::Thompson,
    ] {
        assert_eq!(Policy::parse(&p.to_string()), Ok(p), "{p} round trip");
    }
}

#[test]
fn epsilons_random_order_ignores_bids_but_its_scores_carry_them_as_greedys_do() {
    let p = [0.5, 0.2, 0.3];
    let bids = [2.0, 1.0, 0.0];
    let c = Candidates {
        p: &p,
        belief: None,
        bids: Some(&bids),
    };
    let want = [1.0, 0.2f32 as f64, 0.0];
    for e in [0.0, 1.0] {
        let mut r = Ranker::new(Policy::EpsilonGreedy(e), 4).expect("epsilon");
        let (_, scores) = r.rank(&c).expect("ranks");
        assert_eq!(scores, want, "ε = {e}");
    }
    // ε = 1 shuffles whatever the bids say: the zero-bid candidate comes first one time in three.
    let mut r = Ranker::new(Policy::EpsilonGreedy(1.0), 4).expect("epsilon");
    let firsts = (0..3000)
        .filter(|_| r.rank(&c).expect("ranks").0[0] == 2)
        .count() as u64;
    let z = binomial_z(firsts, 3000, 1.0 / 3.0);
    assert!(z.abs() < Z_CRIT, "{firsts}/3000: z = {z}");
}
