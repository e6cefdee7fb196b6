//! The world file of `wgrec simulate` (`configs/worlds/simulate.toml`): sizes of the planted
//! world, the arrival schedule, the experiment's length, the seeds and the policies, and the
//! model file the learner trains. Every key is checked; an unknown key or a bad value is an
//! [`Error::Config`] naming the file and the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::explore::Policy;

/// A policy the simulation runs: the oracle (ranks by the planted truth) or a model policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimPolicy {
    /// Shows the truly best candidate: zero regret by construction, the reference.
    Oracle,
    /// A model's ranking policy ([`crate::explore::Ranker`]).
    Model(Policy),
}

impl SimPolicy {
    /// `oracle` or any [`Policy::parse`] form.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        match text.trim() {
            "oracle" => Ok(SimPolicy::Oracle),
            other => Policy::parse(other).map(SimPolicy::Model),
        }
    }
}

impl std::fmt::Display for SimPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimPolicy::Oracle => write!(f, "oracle"),
            SimPolicy::Model(p) => write!(f, "{p}"),
        }
    }
}

/// The world file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorldFile {
    model: PathBuf,
    users: u32,
    segments: u32,
    categories: u32,
    latent_dim: u32,
    live_ads: u32,
    arrive_every: u32,
    arrivals: u32,
    fresh_rounds: u32,
    rounds: u32,
    requests: u32,
    candidates: u32,
    base_logit: f64,
    affinity_sd: f64,
    ad_sd: f64,
    latent_scale: f64,
    seeds: u32,
    policies: Vec<String>,
}

/// A checked world file (see the module docs and docs/simulate.md for each key).
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The model file, resolved against the world file's folder.
    pub model: PathBuf,
    /// Users in the world.
    pub users: u32,
    /// User segments (an observable user feature).
    pub segments: u32,
    /// Ad categories (an observable ad feature, shared by new ads).
    pub categories: u32,
    /// Width of the users' and ads' hidden latent vectors.
    pub latent_dim: u32,
    /// Ads live at any time.
    pub live_ads: u32,
    /// Every this many rounds `arrivals` new ads join and as many of the oldest retire.
    pub arrive_every: u32,
    /// Ads that join (and retire) at each arrival.
    pub arrivals: u32,
    /// An ad that joined after round 0 counts as new for this many rounds.
    pub fresh_rounds: u32,
    /// Rounds per run.
    pub rounds: u32,
    /// Requests per round.
    pub requests: u32,
    /// Candidates per request, drawn from the live ads.
    pub candidates: u32,
    /// The truth's intercept in logits (sets the click rate).
    pub base_logit: f64,
    /// Standard deviation of the (segment, category) affinity logits.
    pub affinity_sd: f64,
    /// Standard deviation of each ad's own quality logit.
    pub ad_sd: f64,
    /// Standard deviation of the hidden user·ad interaction logit.
    pub latent_scale: f64,
    /// Seeds 1..=seeds.
    pub seeds: u32,
    /// The policies compared, in order.
    pub policies: Vec<SimPolicy>,
}

fn bad(file: &str, key: &str, message: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_string(),
        key: key.to_string(),
        message: message.into(),
    }
}

impl SimConfig {
    /// Reads and checks a world file.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| bad(&name, "", e.to_string()))?;
        let mut config = Self::parse(&text, &name)?;
        if config.model.is_relative() {
            let dir = path.parent().unwrap_or(Path::new(""));
            config.model = dir.join(&config.model);
        }
        Ok(config)
    }

    /// Parses and checks world-file text (`file` names it in errors); `model` stays as written.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let w: WorldFile = toml::from_str(text).map_err(|e| bad(file, "", e.to_string()))?;
        let policies = (w.policies.iter())
            .map(|p| SimPolicy::parse(p).map_err(|m| bad(file, "policies", m)))
            .collect::<Result<Vec<_>>>()?;
        let config = SimConfig {
            model: w.model,
            users: w.users,
            segments: w.segments,
            categories: w.categories,
            latent_dim: w.latent_dim,
            live_ads: w.live_ads,
            arrive_every: w.arrive_every,
            arrivals: w.arrivals,
            fresh_rounds: w.fresh_rounds,
            rounds: w.rounds,
            requests: w.requests,
            candidates: w.candidates,
            base_logit: w.base_logit,
            affinity_sd: w.affinity_sd,
            ad_sd: w.ad_sd,
            latent_scale: w.latent_scale,
            seeds: w.seeds,
            policies,
        };
        config.check(file)?;
        Ok(config)
    }

    /// The checks parsing cannot make (also after a flag overrode a key).
    pub fn check(&self, file: &str) -> Result<()> {
        let positive = [
            ("users", self.users),
            ("segments", self.segments),
            ("categories", self.categories),
            ("latent_dim", self.latent_dim),
            ("live_ads", self.live_ads),
            ("arrive_every", self.arrive_every),
            ("rounds", self.rounds),
            ("requests", self.requests),
            ("candidates", self.candidates),
            ("seeds", self.seeds),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(bad(file, key, "must be at least 1"));
        }
        if self.candidates > self.live_ads {
            return Err(bad(
                file,
                "candidates",
                format!(
                    "{} candidates from {} live ads",
                    self.candidates, self.live_ads
                ),
            ));
        }
        if self.arrivals > self.live_ads {
            return Err(bad(file, "arrivals", "more arrivals than live ads retire"));
        }
        if self.segments > self.users {
            return Err(bad(file, "segments", "more segments than users"));
        }
        let reals = [
            ("base_logit", self.base_logit),
            ("affinity_sd", self.affinity_sd),
            ("ad_sd", self.ad_sd),
            ("latent_scale", self.latent_scale),
        ];
        if let Some((key, v)) = reals
            .iter()
            .find(|(k, v)| !v.is_finite() || (*k != "base_logit" && *v < 0.0))
        {
            return Err(bad(
                file,
                key,
                format!("{v} is not a finite number (≥ 0 for a spread)"),
            ));
        }
        if self.policies.is_empty() {
            return Err(bad(file, "policies", "name at least one policy"));
        }
        Ok(())
    }

    /// Ads that ever live in a run: the first `live_ads` and every arrival.
    pub fn total_ads(&self) -> u32 {
        let arrivals = self.rounds.saturating_sub(1) / self.arrive_every;
        self.live_ads + arrivals * self.arrivals
    }
}

/// A small world for tests (a few rounds, tiny sizes).
#[cfg(test)]
pub(crate) const TEST_WORLD: &str = r#"
model = "simulate.toml"
users = 40
segments = 4
categories = 5
latent_dim = 4
live_ads = 12
arrive_every = 3
arrivals = 2
fresh_rounds = 3
rounds = 10
requests = 8
candidates = 4
base_logit = -3.0
affinity_sd = 0.8
ad_sd = 0.5
latent_scale = 0.8
seeds = 2
policies = ["oracle", "greedy", "epsilon:0.1"]
"#;

#[cfg(test)]
mod tests {
    use super::*;
    const WORLD: &str = TEST_WORLD;

    /// Every world file the repository ships (`configs/worlds/`) loads, and its model file with
    /// it: a stale key fails here, not in a user's run.
    #[test]
    fn every_shipped_world_file_loads_with_its_model() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/worlds");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir).expect("configs/worlds") {
            let path = entry.expect("entry").path();
            let world =
                SimConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            crate::config::ModelConfig::load(&world.model)
                .unwrap_or_else(|e| panic!("{}: {e}", world.model.display()));
            loaded += 1;
        }
        assert!(loaded >= 1, "no world file in {}", dir.display());
    }

    fn with(key: &str, value: &str) -> String {
        (WORLD.lines())
            .map(|l| match l.split_once(" = ") {
                Some((k, _)) if k == key => format!("{key} = {value}"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn key_of(text: &str) -> String {
        match SimConfig::parse(text, "w.toml") {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_world_parses_with_its_policies_in_order() {
        let c = SimConfig::parse(WORLD, "w.toml").expect("parses");
        assert_eq!(c.policies[0], SimPolicy::Oracle);
        assert_eq!(c.policies[2].to_string(), "epsilon:0.1");
        assert_eq!(c.total_ads(), 12 + 3 * 2);
    }

    #[test]
    fn bad_values_are_errors_naming_their_key() {
        assert_eq!(key_of(&with("candidates", "13")), "candidates");
        assert_eq!(key_of(&with("rounds", "0")), "rounds");
        assert_eq!(key_of(&with("ad_sd", "-1.0")), "ad_sd");
        assert_eq!(key_of(&with("arrivals", "20")), "arrivals");
        assert_eq!(
            key_of(&with("policies", "[\"greedy\", \"boltzmann\"]")),
            "policies"
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_it() {
        let text = format!("{WORLD}\nround = 5\n");
        let err = SimConfig::parse(&text, "w.toml").expect_err("unknown key");
        assert!(err.to_string().contains("round"), "{err}");
        assert!(err.to_string().contains("w.toml"), "{err}");
    }
}
