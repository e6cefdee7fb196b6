//! `wgrec simulate` end to end on a tiny world and a tiny model: the same seed writes the same
//! bytes; the oracle's regret is 0 and no policy's is negative in any round; the clicks follow
//! the truth; new ads arrive and retire on the schedule; bad world files and flags are clear
//! errors naming the key; UCB and Thompson sampling run over the bootstrap heads (and are refused
//! for a model without them).

use std::path::{Path, PathBuf};

use crate::{ok, temp, wgrec};

const MODEL: &str = r#"
[model]
tables = 1
dim = 4
experts = [{ type = "dcn", layers = 1 }]
expert_width = 8
hidden = [8]

[[feature]]
name = "user_id"
kind = "categorical"
capacity = 64
admit_after = 1

[[feature]]
name = "segment"
kind = "categorical"

[[feature]]
name = "ad_id"
kind = "categorical"
capacity = 32
admit_after = 1

[[feature]]
name = "category"
kind = "categorical"

[[task]]
name = "click"
loss = "bce"
HEAD

[train]
batch_size = 16
sparse_lr = 0.05
dense_lr = 0.003
seed = 1
"#;

/// 12 live ads; 2 arrive (and retire) every 3 rounds; 10 rounds of 8 requests × 4 candidates.
const WORLD: &str = r#"
model = "model.toml"
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
base_logit = -2.5
affinity_sd = 0.8
ad_sd = 0.5
latent_scale = 0.8
seeds = 2
policies = ["oracle", "greedy", "epsilon:0.2"]
"#;

/// A folder with the world file (`world` text) and the model (`head`: a `[[task]]` line or "").
fn setup(name: &str, world: &str, head: &str) -> PathBuf {
    let dir = temp(name);
    std::fs::write(dir.join("model.toml"), MODEL.replace("HEAD", head)).expect("model");
    std::fs::write(dir.join("world.toml"), world).expect("world");
    dir
}

fn simulate(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let world = dir.join("world.toml");
    let out = dir.join(out);
    let mut args = vec!["simulate", "--world", world.to_str().expect("utf-8")];
    args.extend(["--out", out.to_str().expect("utf-8")]);
    args.extend(extra);
    wgrec().args(&args).output().expect("run wgrec")
}

/// The log's rows as maps from column name to text.
fn log_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("rounds.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    lines
        .map(|l| {
            let fields = l.split('\t').map(str::to_string);
            header.iter().map(|h| h.to_string()).zip(fields).collect()
        })
        .collect()
}

fn num(row: &std::collections::HashMap<String, String>, key: &str) -> f64 {
    row[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key}: {:?}", row[key]))
}

#[test]
fn the_same_seed_writes_the_same_log_and_summary_bytes() {
    let dir = setup("sim-determinism", WORLD, "");
    ok(&simulate(&dir, "a", &[]));
    ok(&simulate(&dir, "b", &[]));
    for file in ["rounds.tsv", "summary.tsv", "summary.md"] {
        let a = std::fs::read(dir.join("a").join(file)).expect("a");
        let b = std::fs::read(dir.join("b").join(file)).expect("b");
        assert!(a == b, "{file} differs between two runs of the same seeds");
    }
    for png in ["regret.png", "clicks.png"] {
        let bytes = std::fs::read(dir.join("a").join(png)).expect("png");
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
    let rows = log_rows(&dir.join("a/rounds.tsv"));
    assert_eq!(rows.len(), 2 * 3 * 10, "seeds × policies × rounds");
}

#[test]
fn the_oracle_has_no_regret_and_no_policy_has_negative_regret_in_any_round() {
    let dir = setup("sim-regret", WORLD, "");
    ok(&simulate(&dir, "out", &[]));
    let rows = log_rows(&dir.join("out/rounds.tsv"));
    let mut learners_regret = 0.0;
    for row in &rows {
        let regret = num(row, "regret");
        assert!(regret >= 0.0, "negative regret in {row:?}");
        if row["policy"] == "oracle" {
            assert_eq!(regret, 0.0, "{row:?}");
            assert_eq!(num(row, "cum_regret"), 0.0, "{row:?}");
        } else {
            learners_regret += regret;
        }
    }
    // A model that starts from random weights cannot pick the best of 4 every time for 160 rounds.
    assert!(learners_regret > 0.0);
}

/// Over every row of the log: realised clicks against Σ p of the shown ads (the truth's expected
/// clicks). The z-score uses the variance bound Σp ≥ Σp(1 − p), so |z| > 3.29 has probability
/// below 0.1 % for clicks drawn from the truth (the false-alarm rate); the seeds are fixed, so the
/// test is deterministic.
#[test]
fn clicks_follow_the_truth_within_a_stated_false_alarm_rate() {
    let dir = setup("sim-clicks", WORLD, "");
    ok(&simulate(&dir, "out", &["--seeds", "3"]));
    let rows = log_rows(&dir.join("out/rounds.tsv"));
    let clicks: f64 = rows.iter().map(|r| num(r, "clicks")).sum();
    let expected: f64 = rows.iter().map(|r| num(r, "expected_clicks")).sum();
    let z = (clicks - expected) / expected.sqrt();
    assert!(
        z.abs() < 3.29,
        "clicks {clicks}, expected {expected:.2}, z {z:.2}"
    );
    assert!(
        clicks > 10.0,
        "too few clicks ({clicks}) for the check to mean anything"
    );
}

#[test]
fn new_ads_arrive_on_the_schedule_and_take_candidate_slots() {
    let dir = setup("sim-arrivals", WORLD, "");
    ok(&simulate(&dir, "out", &["--seeds", "1"]));
    for row in log_rows(&dir.join("out/rounds.tsv")) {
        let round = num(&row, "round") as u32;
        assert_eq!(num(&row, "candidates"), 32.0, "8 requests × 4 candidates");
        let new = num(&row, "new_candidates");
        // Arrivals at rounds 3, 6 and 9; each batch is new for 3 rounds: 2 of 12 live ads.
        if round < 3 {
            assert_eq!(new, 0.0, "no ad is new before the first arrival: {row:?}");
        } else {
            assert!(new > 0.0 && new < 32.0, "{row:?}");
        }
        assert!(num(&row, "new_impressions") <= num(&row, "requests"));
    }
}

fn error_of(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_world_keys_and_flags_are_clear_errors_naming_the_key() {
    let unknown = WORLD.replace("rounds = 10", "rounds = 10\nround_count = 3");
    let dir = setup("sim-bad-key", &unknown, "");
    let stderr = error_of(&simulate(&dir, "out", &[]));
    assert!(
        stderr.contains("round_count") && stderr.contains("world.toml"),
        "{stderr}"
    );
    let dir = setup(
        "sim-bad-value",
        &WORLD.replace("candidates = 4", "candidates = 13"),
        "",
    );
    let stderr = error_of(&simulate(&dir, "out", &[]));
    assert!(
        stderr.contains("candidates") && stderr.contains("12 live ads"),
        "{stderr}"
    );
    let dir = setup("sim-bad-flag", WORLD, "");
    let stderr = error_of(&simulate(&dir, "out", &["--policies", "greedy,softmax"]));
    assert!(
        stderr.contains("softmax") && stderr.contains("--policies"),
        "{stderr}"
    );
    let stderr = error_of(&simulate(&dir, "out", &["--rounds", "0"]));
    assert!(stderr.contains("rounds"), "{stderr}");
    assert!(
        !dir.join("out").exists(),
        "nothing written on a bad command"
    );
}

#[test]
fn ucb_and_thompson_need_an_uncertainty_head_and_say_so() {
    let dir = setup("sim-no-head", WORLD, "");
    let stderr = error_of(&simulate(&dir, "out", &["--policies", "thompson"]));
    assert!(
        stderr.contains("thompson")
            && stderr.contains("uncertainty")
            && stderr.contains("model.toml"),
        "{stderr}"
    );
}

#[test]
fn ucb_and_thompson_run_over_the_bootstrap_heads_and_repeat_bit_for_bit() {
    let head = r#"uncertainty = { kind = "bootstrap", heads = 4 }"#;
    let dir = setup("sim-heads", WORLD, head);
    let policies = ["--policies", "ucb:1,thompson,greedy", "--seeds", "1"];
    ok(&simulate(&dir, "a", &policies));
    ok(&simulate(&dir, "b", &policies));
    let a = std::fs::read(dir.join("a/rounds.tsv")).expect("a");
    assert!(
        a == std::fs::read(dir.join("b/rounds.tsv")).expect("b"),
        "same seed, same bytes"
    );
    let rows = log_rows(&dir.join("a/rounds.tsv"));
    assert_eq!(rows.len(), 3 * 10);
    assert!(rows.iter().all(|r| num(r, "regret") >= 0.0));
    for r in &rows {
        let with_belief = r["policy"] != "greedy";
        assert_eq!(!r["belief_sd_other"].is_empty(), with_belief, "{r:?}");
        if with_belief {
            assert!(num(r, "belief_sd_other") > 0.0, "the heads disagree: {r:?}");
        }
    }
    // Thompson's draws and UCB's bonus change what is shown: their logs differ from greedy's.
    let shown = |policy: &str| -> Vec<String> {
        let mine = rows.iter().filter(|r| r["policy"] == policy);
        mine.map(|r| r["expected_clicks"].clone()).collect()
    };
    assert_ne!(shown("thompson"), shown("greedy"));
    assert_ne!(shown("ucb:1"), shown("greedy"));
}
