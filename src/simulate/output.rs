//! What `wgrec simulate` writes: the per-round log (`rounds.tsv`), the summary over seeds
//! (`summary.tsv`, and the same table as Markdown in `summary.md`), each written atomically.
//!
//! Numbers are written with fixed decimals, runs in (seed, policy) order, so the same seed and
//! inputs give the same bytes.

use std::fmt::Write as _;
use std::path::Path;

use super::config::SimPolicy;
use super::episode::RoundRecord;
use crate::checkpoint::write_atomically;
use crate::error::{Error, Result};

/// The log file.
pub const ROUNDS_FILE: &str = "rounds.tsv";
/// The summary, TSV.
pub const SUMMARY_FILE: &str = "summary.tsv";
/// The summary, Markdown.
pub const SUMMARY_MD: &str = "summary.md";

/// The log's header.
pub const ROUNDS_HEADER: &str = "round\tpolicy\tseed\trequests\tclicks\tcum_clicks\
\texpected_clicks\tregret\tcum_regret\tnew_impressions\tnew_candidates\tcandidates\
\tnew_impression_share\tnew_candidate_share\tbelief_sd_new\tbelief_sd_other";

/// One policy's run in the world of one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLog {
    /// The policy.
    pub policy: SimPolicy,
    /// The seed.
    pub seed: u64,
    /// Its rounds, in order.
    pub rounds: Vec<RoundRecord>,
}

impl RunLog {
    /// Clicks over the run.
    pub fn clicks(&self) -> f64 {
        self.rounds.iter().map(|r| f64::from(r.clicks)).sum()
    }

    /// Regret over the run.
    pub fn regret(&self) -> f64 {
        self.rounds.iter().map(|r| r.regret).sum()
    }

    /// The belief's mean standard deviation (logits) over the run's new candidates and over the
    /// others; `None` for a policy without a belief (or a run with no such candidate).
    pub fn belief_sd(&self) -> Option<(f64, f64)> {
        let (mut new, mut other) = (0.0, 0.0);
        for r in &self.rounds {
            let (n, o) = r.belief_sd?;
            (new, other) = (new + n, other + o);
        }
        let slots = |f: fn(&RoundRecord) -> u32| -> f64 {
            self.rounds.iter().map(|r| f64::from(f(r))).sum()
        };
        let fresh = slots(|r| r.new_candidates);
        let others = slots(|r| r.candidates - r.new_candidates);
        (fresh > 0.0 && others > 0.0).then(|| (new / fresh, other / others))
    }

    /// (new ads' share of impressions, their share of candidate slots) over the run.
    pub fn new_shares(&self) -> (f64, f64) {
        let sum = |f: fn(&RoundRecord) -> u32| -> f64 {
            self.rounds.iter().map(|r| f64::from(f(r))).sum()
        };
        let shown = sum(|r| r.new_impressions) / sum(|r| r.requests).max(1.0);
        let offered = sum(|r| r.new_candidates) / sum(|r| r.candidates).max(1.0);
        (shown, offered)
    }
}

/// One policy's results over the seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySummary {
    /// The policy.
    pub policy: SimPolicy,
    /// Seeds run.
    pub seeds: usize,
    /// Final cumulative regret: mean and sample standard deviation over seeds.
    pub regret: (f64, f64),
    /// Final cumulative clicks: mean and sample standard deviation.
    pub clicks: (f64, f64),
    /// New ads' share of impressions, mean over seeds.
    pub new_impression_share: f64,
    /// New ads' share of candidate slots, mean over seeds.
    pub new_candidate_share: f64,
    /// Final regret minus the reference policy's in the same seed's world (the first model
    /// policy of the runs): mean, sample sd, and on how many seeds it was higher; `None` for the
    /// reference itself or without one. Paired, because the policies of a seed share the world.
    pub vs_reference: Option<Paired>,
    /// The belief's mean standard deviation over new candidates and over the others, means over
    /// seeds ([`RunLog::belief_sd`]); `None` without a belief.
    pub belief_sd: Option<(f64, f64)>,
}

/// A paired difference over seeds (see [`PolicySummary::vs_reference`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// The reference policy.
    pub reference: SimPolicy,
    /// Mean and sample standard deviation of the per-seed differences.
    pub difference: (f64, f64),
    /// Seeds where the difference is > 0, and seeds compared.
    pub higher: (usize, usize),
}

/// `policy`'s final regret minus `reference`'s, per seed both ran.
fn paired(runs: &[RunLog], policy: SimPolicy, reference: SimPolicy) -> Option<Paired> {
    let of = |p: SimPolicy, seed: u64| {
        (runs.iter())
            .find(|r| r.policy == p && r.seed == seed)
            .map(RunLog::regret)
    };
    let diffs: Vec<f64> = (runs.iter())
        .filter(|r| r.policy == policy)
        .filter_map(|r| Some(r.regret() - of(reference, r.seed)?))
        .collect();
    if policy == reference || diffs.is_empty() {
        return None;
    }
    Some(Paired {
        reference,
        difference: mean_sd(&diffs),
        higher: (diffs.iter().filter(|&&d| d > 0.0).count(), diffs.len()),
    })
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// Each policy's summary, in the order the policies first appear in `runs`.
pub fn summarise(runs: &[RunLog]) -> Vec<PolicySummary> {
    let mut policies: Vec<SimPolicy> = Vec::new();
    for r in runs {
        if !policies.contains(&r.policy) {
            policies.push(r.policy);
        }
    }
    let reference = (policies.iter().copied()).find(|p| matches!(p, SimPolicy::Model(_)));
    (policies.into_iter())
        .map(|policy| {
            let mine: Vec<&RunLog> = runs.iter().filter(|r| r.policy == policy).collect();
            let of = |f: &dyn Fn(&RunLog) -> f64| mine.iter().map(|r| f(r)).collect::<Vec<_>>();
            PolicySummary {
                policy,
                seeds: mine.len(),
                regret: mean_sd(&of(&|r| r.regret())),
                clicks: mean_sd(&of(&|r| r.clicks())),
                new_impression_share: mean_sd(&of(&|r| r.new_shares().0)).0,
                new_candidate_share: mean_sd(&of(&|r| r.new_shares().1)).0,
                vs_reference: reference.and_then(|re| paired(runs, policy, re)),
                belief_sd: belief_means(&mine),
            }
        })
        .collect()
}

fn belief_means(runs: &[&RunLog]) -> Option<(f64, f64)> {
    let sds = runs
        .iter()
        .map(|r| r.belief_sd())
        .collect::<Option<Vec<_>>>()?;
    let new: Vec<f64> = sds.iter().map(|s| s.0).collect();
    let other: Vec<f64> = sds.iter().map(|s| s.1).collect();
    Some((mean_sd(&new).0, mean_sd(&other).0))
}

/// The per-round log as TSV text.
pub fn rounds_tsv(runs: &[RunLog]) -> String {
    let mut s = format!("{ROUNDS_HEADER}\n");
    for run in runs {
        let (mut clicks, mut regret) = (0u64, 0.0);
        for r in &run.rounds {
            clicks += u64::from(r.clicks);
            regret += r.regret;
            let share = |a: u32, b: u32| f64::from(a) / f64::from(b.max(1));
            let sd = |sum: f64, n: u32| match n {
                0 => String::new(),
                n => format!("{:.6}", sum / f64::from(n)),
            };
            let (sd_new, sd_other) = match r.belief_sd {
                Some((new, other)) => (
                    sd(new, r.new_candidates),
                    sd(other, r.candidates - r.new_candidates),
                ),
                None => (String::new(), String::new()),
            };
            let _ = writeln!(
                s,
                "{}\t{}\t{}\t{}\t{}\t{clicks}\t{:.6}\t{:.6}\t{regret:.6}\t{}\t{}\t{}\t{:.6}\t{:.6}\
                 \t{sd_new}\t{sd_other}",
                r.round,
                run.policy,
                run.seed,
                r.requests,
                r.clicks,
                r.expected_clicks,
                r.regret,
                r.new_impressions,
                r.new_candidates,
                r.candidates,
                share(r.new_impressions, r.requests),
                share(r.new_candidates, r.candidates),
            );
        }
    }
    s
}

/// The summary as TSV text.
pub fn summary_tsv(summary: &[PolicySummary]) -> String {
    let mut s = String::from(
        "policy\tseeds\tregret_mean\tregret_sd\tclicks_mean\tclicks_sd\
         \tnew_impression_share\tnew_candidate_share\treference\tvs_reference_mean\tvs_reference_sd\tseeds_higher\tbelief_sd_new\tbelief_sd_other\n",
    );
    for p in summary {
        let vs = match &p.vs_reference {
            Some(v) => format!(
                "{}\t{:.3}\t{:.3}\t{}",
                v.reference, v.difference.0, v.difference.1, v.higher.0
            ),
            None => "\t\t\t".into(),
        };
        let sd = match p.belief_sd {
            Some((new, other)) => format!("{new:.4}\t{other:.4}"),
            None => "\t".into(),
        };
        let _ = writeln!(
            s,
            "{}\t{}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\t{:.4}\t{:.4}\t{vs}\t{sd}",
            p.policy,
            p.seeds,
            p.regret.0,
            p.regret.1,
            p.clicks.0,
            p.clicks.1,
            p.new_impression_share,
            p.new_candidate_share
        );
    }
    s
}

/// The summary as a Markdown table.
pub fn summary_markdown(summary: &[PolicySummary]) -> String {
    let mut s = String::from(
        "| policy | seeds | cumulative regret (mean ± sd) | regret − reference's, paired by seed \
         (mean ± sd; seeds higher) | clicks (mean ± sd) | new ads' share of impressions | of \
         candidates | belief sd, new / other candidates (logits) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for p in summary {
        let vs = match &p.vs_reference {
            Some(v) => format!(
                "{:+.1} ± {:.1} vs {}; {} of {}",
                v.difference.0, v.difference.1, v.reference, v.higher.0, v.higher.1
            ),
            None => "—".into(),
        };
        let sd = match p.belief_sd {
            Some((new, other)) => format!("{new:.3} / {other:.3}"),
            None => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} ± {:.1} | {vs} | {:.1} ± {:.1} | {:.1} % | {:.1} % | {sd} |",
            p.policy,
            p.seeds,
            p.regret.0,
            p.regret.1,
            p.clicks.0,
            p.clicks.1,
            100.0 * p.new_impression_share,
            100.0 * p.new_candidate_share
        );
    }
    s
}

/// Writes `text` to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |tmp| {
        std::fs::write(tmp, text).map_err(|e| Error::Output {
            file: path.to_path_buf(),
            message: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::Policy;

    fn record(round: u32, clicks: u32, regret: f64, new: (u32, u32)) -> RoundRecord {
        RoundRecord {
            round,
            requests: 4,
            clicks,
            expected_clicks: 0.5,
            regret,
            new_impressions: new.0,
            new_candidates: new.1,
            candidates: 8,
            belief_sd: None,
        }
    }

    fn run(policy: SimPolicy, seed: u64, regret: f64) -> RunLog {
        RunLog {
            policy,
            seed,
            rounds: vec![record(0, 1, regret, (1, 2)), record(1, 2, 0.25, (0, 2))],
        }
    }

    #[test]
    fn mean_and_sd_match_hand_computed_values() {
        assert_eq!(mean_sd(&[1.0, 2.0, 3.0, 4.0]), (2.5, (5.0f64 / 3.0).sqrt()));
        assert_eq!(mean_sd(&[7.0]), (7.0, 0.0));
    }

    #[test]
    fn the_summary_is_per_policy_over_seeds_in_first_seen_order() {
        let greedy = SimPolicy::Model(Policy::Greedy);
        let runs = [
            run(greedy, 1, 1.0),
            run(SimPolicy::Oracle, 1, 0.0),
            run(greedy, 2, 2.0),
        ];
        let s = summarise(&runs);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].policy, s[0].seeds), (greedy, 2));
        // Regret per seed: 1.25 and 2.25.
        assert_eq!(s[0].regret, (1.75, 0.5f64.sqrt()));
        assert_eq!(s[0].clicks, (3.0, 0.0));
        // 1 new impression of 8, 4 new slots of 16.
        assert_eq!(s[0].new_impression_share, 0.125);
        assert_eq!(s[0].new_candidate_share, 0.25);
        assert_eq!(s[1].regret, (0.25, 0.0));
        // Greedy is the reference (the first model policy); the oracle is paired with seed 1.
        assert_eq!(s[0].vs_reference, None);
        let vs = s[1]
            .vs_reference
            .as_ref()
            .expect("the oracle against greedy");
        assert_eq!(
            (vs.reference, vs.difference, vs.higher),
            (greedy, (-1.0, 0.0), (0, 1))
        );
    }

    #[test]
    fn the_belief_spread_is_averaged_per_candidate_slot() {
        let mut r = run(SimPolicy::Model(Policy::Thompson), 1, 0.0);
        // Round 0: 2 new slots (sd sum 1.0), 6 others (sum 3.0); round 1: 2 new (sum 2.0), 6 (0).
        r.rounds[0].belief_sd = Some((1.0, 3.0));
        r.rounds[1].belief_sd = Some((2.0, 0.0));
        assert_eq!(r.belief_sd(), Some((0.75, 0.25)));
        r.rounds[1].belief_sd = None;
        assert_eq!(r.belief_sd(), None, "a round without a belief: no mean");
    }

    #[test]
    fn the_log_accumulates_clicks_and_regret_per_run() {
        let text = rounds_tsv(&[run(SimPolicy::Oracle, 3, 0.5)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], ROUNDS_HEADER);
        assert_eq!(
            lines[2],
            "1\toracle\t3\t4\t2\t3\t0.500000\t0.250000\t0.750000\t0\t2\t8\t0.000000\t0.250000\t\t"
        );
        assert_eq!(lines.len(), 3);
    }
}
