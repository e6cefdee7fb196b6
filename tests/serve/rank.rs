//! Ranking in `POST /score`: without a policy the answer has no `"ranking"`; with one, `order`
//! and `scores` follow the policy over the same probabilities the unranked answer gives, bids
//! multiply, a seed repeats ε's random orders, and a policy the model cannot serve is refused
//! (at start-up for `--policy`, with a 400 for a request's own).

use std::sync::Arc;

use serde_json::{json, Value};
use wgrec::explore::Policy;
use wgrec::serve::http::{Ranking, Server};

use crate::common::*;

/// `POST /score` of `rows` with `extra` keys merged into the body: (status, answer).
fn score_with(server: &Server, rows: &[usize], extra: Value) -> (u16, Value) {
    let mut body: Value = serde_json::from_str(&score_body(&row_texts(), rows)).expect("json");
    for (k, v) in extra.as_object().expect("an object") {
        body[k] = v.clone();
    }
    let (status, answer) = http(server.addr(), "POST", "/score", &body.to_string());
    (
        status,
        serde_json::from_str(&answer).expect("a JSON answer"),
    )
}

fn ranked(policy: Option<Policy>, seed: u64) -> Server {
    ranked_on(&fixture().run, policy, seed)
}

fn ranked_on(model: &std::path::Path, policy: Option<Policy>, seed: u64) -> Server {
    let ranking = Ranking { policy, seed };
    let gpu = Arc::clone(&fixture().gpu);
    Server::start_ranked(gpu, options(model, 1000), ranking).expect("start")
}

fn numbers(v: &Value) -> Vec<f64> {
    let list = v.as_array().expect("an array");
    list.iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn order_of(answer: &Value) -> Vec<usize> {
    let order = answer["ranking"]["order"].as_array().expect("an order");
    order
        .iter()
        .map(|v| v.as_u64().expect("an index") as usize)
        .collect()
}

#[test]
fn without_a_policy_the_answer_has_no_ranking_and_with_greedy_it_orders_by_p() {
    let reference = reference_of(&fixture().run);
    let rows = [3, 1, 4, 1, 5, 9, 2, 6];
    let plain = ranked(None, 1);
    let (status, answer) = score_with(&plain, &rows, json!({}));
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("ranking").is_none(), "{answer}");
    plain.shutdown().expect("stop");
    let greedy = ranked(Some(Policy::Greedy), 1);
    let (status, answer) = score_with(&greedy, &rows, json!({}));
    assert_eq!(status, 200, "{answer}");
    assert_scores(&answer.to_string(), &rows, &reference);
    let p: Vec<f64> = rows.iter().map(|&r| reference[r] as f64).collect();
    let mut want: Vec<usize> = (0..rows.len()).collect();
    want.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    assert_eq!(order_of(&answer), want);
    // Greedy's scores are the probabilities (compared as f32: serde_json's f64 reading may be
    // an ulp off the f64 written).
    let scores = answer["ranking"]["scores"].as_array().expect("scores");
    let scores: Vec<f32> = scores
        .iter()
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect();
    assert_eq!(scores, rows.map(|r| reference[r]));
    assert_eq!(answer["ranking"]["policy"], "greedy");
    assert_eq!(answer["ranking"]["task"], "click");
    assert!(
        answer["ranking"].get("mean").is_none(),
        "no head, no belief"
    );
    let (_, batch) = http(
        greedy.addr(),
        "POST",
        "/batch",
        &batch_body(&row_texts(), &rows),
    );
    assert!(
        !batch.contains("ranking"),
        "/batch is never ranked: {batch}"
    );
    greedy.shutdown().expect("stop");
}

#[test]
fn bids_multiply_and_bad_bids_or_policies_are_400s_naming_them() {
    let server = ranked(None, 1);
    let rows = [0, 1, 2];
    // A zero bid puts a candidate last, a huge one first, whatever p says.
    let (status, answer) = score_with(&server, &rows, json!({"bids": [0.0, 1e6, 1.0]}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(order_of(&answer), [1, 2, 0]);
    assert_eq!(
        answer["ranking"]["policy"], "greedy",
        "bids alone rank greedily"
    );
    let cases = [
        (json!({"bids": [1.0]}), "1 bids for 3 candidates"),
        (json!({"bids": [1.0, -1.0, 1.0]}), "bid 1 is -1.0"),
        (json!({"bids": "high"}), "bids must be an array"),
        (json!({"policy": "softmax"}), "\"softmax\""),
        (json!({"policy": "epsilon:2"}), "\"epsilon:2\""),
        (json!({"policy": "thompson"}), "uncertainty head"),
        (json!({"policy": "ucb:1"}), "uncertainty head"),
    ];
    for (extra, message) in cases {
        let (status, answer) = score_with(&server, &rows, extra.clone());
        let text = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{extra}: {answer}");
        assert!(
            text.contains(message),
            "{extra}: {text:?} lacks {message:?}"
        );
    }
    server.shutdown().expect("stop");
}

#[test]
fn a_belief_policy_on_a_model_without_a_head_is_refused_at_start_up() {
    let f = fixture();
    for policy in [Policy::Thompson, Policy::Ucb(1.0)] {
        let ranking = Ranking {
            policy: Some(policy),
            seed: 1,
        };
        let e = Server::start_ranked(Arc::clone(&f.gpu), options(&f.run, 1000), ranking)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("uncertainty head") && e.contains("--policy"),
            "{e}"
        );
    }
}

/// The orders of eight ε = 1 requests sent one after another to a server seeded `seed`.
fn random_orders(seed: u64) -> Vec<Vec<usize>> {
    let server = ranked(Some(Policy::EpsilonGreedy(1.0)), seed);
    let orders = (0..8)
        .map(|_| order_of(&score_with(&server, &[0, 1, 2, 3, 4, 5], json!({})).1))
        .collect();
    server.shutdown().expect("stop");
    orders
}

#[test]
fn a_seed_repeats_the_random_orders_of_requests_sent_one_at_a_time() {
    let first = random_orders(5);
    for order in &first {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3, 4, 5], "a permutation: {order:?}");
    }
    assert!(first.windows(2).any(|w| w[0] != w[1]), "{first:?}");
    assert_eq!(random_orders(5), first);
    assert_ne!(random_orders(6), first);
}

#[test]
fn on_a_model_with_heads_thompson_draws_within_the_belief_and_ucb_zero_ranks_by_its_mean() {
    let run = head_run();
    let reference = reference_of(run);
    let rows = [0, 2, 4, 6, 8, 10];
    let server = ranked_on(run, Some(Policy::Thompson), 7);
    for _ in 0..5 {
        let (status, answer) = score_with(&server, &rows, json!({}));
        assert_eq!(status, 200, "{answer}");
        assert_scores(&answer.to_string(), &rows, &reference);
        let r = &answer["ranking"];
        let (scores, mean, sd) = (
            numbers(&r["scores"]),
            numbers(&r["mean"]),
            numbers(&r["sd"]),
        );
        assert_eq!((scores.len(), mean.len(), sd.len()), (6, 6, 6), "{r}");
        // One head's logit is within (K − 1)/√K sample deviations of the heads' mean (K = 4).
        for j in 0..6 {
            let z = (scores[j] / (1.0 - scores[j])).ln();
            let bound = sd[j] * 3.0 / 2.0 + 1e-4;
            assert!(sd[j] >= 0.0 && (z - mean[j]).abs() <= bound, "{j}: {r}");
        }
    }
    let (status, answer) = score_with(&server, &rows, json!({"policy": "ucb:0"}));
    assert_eq!(status, 200, "{answer}");
    let mean = numbers(&answer["ranking"]["mean"]);
    let mut want: Vec<usize> = (0..6).collect();
    want.sort_by(|&a, &b| mean[b].total_cmp(&mean[a]));
    assert_eq!(order_of(&answer), want);
    server.shutdown().expect("stop");
}

/// The orders of six requests of six candidates sent one at a time to a server of `model` and
/// `policy`, seeded 9, batching up to `max_batch` rows for `wait_ms`.
fn batched_orders(
    model: &std::path::Path,
    policy: Policy,
    max_batch: u32,
    wait_ms: u64,
) -> Vec<Vec<usize>> {
    let mut o = options(model, 1000);
    (o.max_batch, o.max_wait) = (max_batch, std::time::Duration::from_millis(wait_ms));
    let ranking = Ranking {
        policy: Some(policy),
        seed: 9,
    };
    let server = Server::start_ranked(Arc::clone(&fixture().gpu), o, ranking).expect("start");
    let rows = [0, 1, 2, 3, 4, 5];
    let list = (0..6)
        .map(|_| order_of(&score_with(&server, &rows, json!({})).1))
        .collect();
    server.shutdown().expect("stop");
    list
}

#[test]
fn a_seed_repeats_the_orders_whatever_the_micro_batching() {
    // Six candidates in submissions of 4 rows (a request and its belief straddle two), or of
    // 32 after a 20 ms wait: the same rankings, for ε's shuffles and for Thompson's draws.
    let (run, head) = (&fixture().run, head_run());
    let eps = Policy::EpsilonGreedy(1.0);
    assert_eq!(
        batched_orders(run, eps, 4, 0),
        batched_orders(run, eps, 32, 20)
    );
    let ts = Policy::Thompson;
    let small = batched_orders(head, ts, 4, 0);
    assert_eq!(small, batched_orders(head, ts, 32, 20));
    assert!(
        small.windows(2).any(|w| w[0] != w[1]),
        "Thompson draws vary: {small:?}"
    );
}

#[test]
fn a_reloaded_snapshot_without_a_head_is_refused_under_a_belief_policy() {
    let f = fixture();
    let publish = scratch("rank-reload");
    publish_run(&publish, 1, head_run(), Weights::Trained);
    let ranking = Ranking {
        policy: Some(Policy::Thompson),
        seed: 1,
    };
    let server = Server::start_ranked(Arc::clone(&f.gpu), options(&publish, 20), ranking)
        .expect("start on the model with heads");
    publish_run(&publish, 2, &f.run, Weights::Trained);
    wait_until("the refused reload", || {
        server.metrics().reloads() == (0, 1)
    });
    assert_eq!(server.metrics().version(), Some(1));
    let (status, answer) = score_with(&server, &[0, 1], json!({}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model_version"], 1);
    assert_eq!(answer["ranking"]["policy"], "thompson");
    server.shutdown().expect("stop");
}
