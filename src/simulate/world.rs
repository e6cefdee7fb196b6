//! The planted truth: users and ads with seeded hidden vectors, a true click probability per
//! (user, ad), ads that arrive and retire on a schedule, each round's requests and the uniforms
//! its clicks are drawn with.
//!
//! The truth is `P(click | u, a) = σ(base + affinity[segment(u), category(a)] + bias(a) +
//! scale · uᵀa / √d)`, with `u, a ~ N(0, I_d)`, `affinity ~ N(0, affinity_sd²)` and `bias ~
//! N(0, ad_sd²)`. The model sees the user id, its segment, the ad id and its category: the
//! segment × category part is learnable for a brand-new ad through its category; its own bias and
//! the hidden interaction are learnt only by showing it.
//!
//! Ads are numbered in arrival order, so the live ads are always a contiguous range: at round
//! `r` after `n = ⌊r / arrive_every⌋` arrivals they are `n·arrivals .. n·arrivals + live_ads`
//! (each arrival retires the oldest `arrivals`). Every random number comes from a stream keyed
//! by (seed, what, index) — the world, each round's requests, each round's click uniforms — so a
//! seed fixes the same world, the same requests and the same click uniforms for every policy
//! (common random numbers: policies differ only by what they show).

use std::ops::Range;

use crate::explore::sigmoid;
use crate::rng::Rng;

use super::config::SimConfig;

/// The streams of [`stream`].
const USERS: u64 = 1;
const ADS: u64 = 2;
const AFFINITY: u64 = 3;
const REQUESTS: u64 = 4;
const CLICKS: u64 = 5;
/// The ranker's stream (ε-greedy's coin, Thompson's draws), used by the episode.
pub const RANKER: u64 = 6;

/// A generator keyed by (seed, stream, index), each part mixed through SplitMix64 so nearby keys
/// give unrelated streams.
pub fn stream(seed: u64, what: u64, index: u64) -> Rng {
    let key = [seed, what, index]
        .iter()
        .fold(0x5851_F42D_4C95_7F2D, |k, &p| Rng::new(k ^ p).next_u64());
    Rng::new(key)
}

/// One request: a user and the ads it may be shown, in draw order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The user.
    pub user: u32,
    /// Candidate ads (distinct, live).
    pub candidates: Vec<u32>,
}

/// The planted world of one seed (see the module docs).
#[derive(Debug, Clone)]
pub struct World {
    config: SimConfig,
    seed: u64,
    user_latent: Vec<Vec<f64>>,
    ad_latent: Vec<Vec<f64>>,
    ad_bias: Vec<f64>,
    ad_category: Vec<u32>,
    affinity: Vec<f64>,
}

fn normals(rng: &mut Rng, n: usize, sd: f64) -> Vec<f64> {
    (0..n).map(|_| sd * rng.normal()).collect()
}

impl World {
    /// The world of `seed`.
    pub fn new(config: &SimConfig, seed: u64) -> Self {
        let d = config.latent_dim as usize;
        let mut users = stream(seed, USERS, 0);
        let user_latent = (0..config.users)
            .map(|_| normals(&mut users, d, 1.0))
            .collect();
        let (mut ad_latent, mut ad_bias, mut ad_category) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..config.total_ads() {
            let mut rng = stream(seed, ADS, u64::from(k));
            ad_category.push(rng.below(u64::from(config.categories)) as u32);
            ad_bias.push(config.ad_sd * rng.normal());
            ad_latent.push(normals(&mut rng, d, 1.0));
        }
        let cells = (config.segments * config.categories) as usize;
        let affinity = normals(&mut stream(seed, AFFINITY, 0), cells, config.affinity_sd);
        World {
            config: config.clone(),
            seed,
            user_latent,
            ad_latent,
            ad_bias,
            ad_category,
            affinity,
        }
    }

    /// The world's sizes and schedule.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// User `u`'s segment (users are spread evenly over the segments).
    pub fn segment(&self, user: u32) -> u32 {
        user % self.config.segments
    }

    /// Ad `a`'s category.
    pub fn category(&self, ad: u32) -> u32 {
        self.ad_category[ad as usize]
    }

    /// The true click probability of showing ad `ad` to user `user`.
    pub fn p(&self, user: u32, ad: u32) -> f64 {
        let c = &self.config;
        let (u, a) = (
            &self.user_latent[user as usize],
            &self.ad_latent[ad as usize],
        );
        let dot: f64 = u.iter().zip(a).map(|(x, y)| x * y).sum();
        let cell = (self.segment(user) * c.categories + self.category(ad)) as usize;
        let logit = c.base_logit
            + self.affinity[cell]
            + self.ad_bias[ad as usize]
            + c.latent_scale * dot / f64::from(c.latent_dim).sqrt();
        sigmoid(logit)
    }

    /// The ads live in round `round` (0-based).
    pub fn live(&self, round: u32) -> Range<u32> {
        let first = round / self.config.arrive_every * self.config.arrivals;
        first..first + self.config.live_ads
    }

    /// The round ad `ad` joined (0 for the first `live_ads`).
    pub fn born(&self, ad: u32) -> u32 {
        let c = &self.config;
        match ad.checked_sub(c.live_ads) {
            None => 0,
            Some(k) => (k / c.arrivals.max(1) + 1) * c.arrive_every,
        }
    }

    /// Whether ad `ad` counts as new in round `round`: it joined after round 0, less than
    /// `fresh_rounds` rounds ago.
    pub fn is_new(&self, ad: u32, round: u32) -> bool {
        let born = self.born(ad);
        born > 0 && round >= born && round - born < self.config.fresh_rounds
    }

    /// Round `round`'s requests: a uniform user and `candidates` distinct live ads each.
    pub fn requests(&self, round: u32) -> Vec<Request> {
        let mut rng = stream(self.seed, REQUESTS, u64::from(round));
        let live: Vec<u32> = self.live(round).collect();
        let c = self.config.candidates as usize;
        (0..self.config.requests)
            .map(|_| {
                let user = rng.below(u64::from(self.config.users)) as u32;
                let mut pool = live.clone();
                for i in 0..c {
                    let j = i + rng.below((pool.len() - i) as u64) as usize;
                    pool.swap(i, j);
                }
                pool.truncate(c);
                Request {
                    user,
                    candidates: pool,
                }
            })
            .collect()
    }

    /// Round `round`'s click uniforms, one per request: the shown ad is clicked when its uniform
    /// is below its true probability.
    pub fn click_uniforms(&self, round: u32) -> Vec<f64> {
        let mut rng = stream(self.seed, CLICKS, u64::from(round));
        (0..self.config.requests).map(|_| rng.unit()).collect()
    }
}

#[cfg(test)]
#[path = "world_tests.rs"]
mod tests;
