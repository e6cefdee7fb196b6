use super::*;
use crate::simulate::config::TEST_WORLD;

fn world_of(seed: u64, rounds: u32) -> World {
    let mut config = SimConfig::parse(TEST_WORLD, "w.toml").expect("test world parses");
    config.rounds = rounds;
    World::new(&config, seed)
}

fn world(seed: u64) -> World {
    world_of(seed, 10)
}

#[test]
fn ads_arrive_and_retire_on_the_schedule() {
    // live_ads 12, arrive_every 3, arrivals 2.
    let w = world(1);
    assert_eq!(w.live(0), 0..12);
    assert_eq!(w.live(2), 0..12);
    assert_eq!(w.live(3), 2..14);
    assert_eq!(w.live(9), 6..18);
    assert_eq!(
        (w.born(11), w.born(12), w.born(13), w.born(14)),
        (0, 3, 3, 6)
    );
    assert!(!w.is_new(0, 0));
    assert!(w.is_new(12, 3) && w.is_new(12, 5) && !w.is_new(12, 6));
    assert!(!w.is_new(14, 5), "not yet arrived");
}

#[test]
fn requests_draw_distinct_live_candidates_the_same_way_for_a_seed() {
    let (a, b) = (world(7), world(7));
    for round in 0..10 {
        let requests = a.requests(round);
        assert_eq!(requests, b.requests(round));
        assert_eq!(requests.len(), 8);
        for r in &requests {
            assert!(r.user < 40);
            let mut ads = r.candidates.clone();
            ads.sort_unstable();
            ads.dedup();
            assert_eq!(ads.len(), 4, "distinct candidates");
            assert!(ads.iter().all(|ad| a.live(round).contains(ad)));
        }
    }
    assert_ne!(
        world(8).requests(0),
        a.requests(0),
        "another seed, another world"
    );
}

#[test]
fn the_truth_has_a_realistic_click_rate() {
    let w = world(3);
    let n = 40 * 12;
    let mean: f64 = (0..40)
        .flat_map(|u| (0..12).map(move |a| (u, a)))
        .map(|(u, a)| w.p(u, a))
        .sum::<f64>()
        / n as f64;
    assert!((0.01..=0.15).contains(&mean), "mean CTR {mean}");
}

/// Clicks follow the truth: over 400 rounds × 8 requests the clicks drawn from the uniforms
/// (click = u < p) against the expected Σp, as a z-score with variance Σp(1 − p). |z| > 3.29
/// happens with probability 0.1 % for a correct stream (the false-alarm rate); the seed is fixed,
/// so the test is deterministic.
#[test]
fn clicks_drawn_from_the_uniforms_follow_the_truth() {
    let w = world_of(11, 400);
    let (mut clicks, mut expected, mut variance) = (0.0, 0.0, 0.0);
    for round in 0..400 {
        let uniforms = w.click_uniforms(round);
        for (r, u) in w.requests(round).iter().zip(uniforms) {
            // Show a fixed position's candidate, so p varies.
            let p = w.p(r.user, r.candidates[0]);
            clicks += f64::from(u8::from(u < p));
            expected += p;
            variance += p * (1.0 - p);
        }
    }
    let z = (clicks - expected) / variance.sqrt();
    assert!(
        z.abs() < 3.29,
        "clicks {clicks}, expected {expected:.1}, z {z:.2}"
    );
    assert!(clicks > 0.0);
}
