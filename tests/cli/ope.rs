//! `wgrec ope` on a tiny log (table and JSON, the same seed the same numbers, a bad policy file a
//! clear error) and `wgrec data fetch obd` on a machine without pip. No network.

use crate::{last_json, ok, temp, wgrec};

const SCHEMA: &str =
    "delimiter = \"\\t\"\nheader = true\ncolumns = \"label:clicked, categorical:ad, \
categorical:slot, numeric:pscore\"\n";
const LOG: &str =
    "clicked\tad\tslot\tpscore\n1\ta\t1\t0.5\n0\tb\t1\t0.5\n1\tb\t2\t0.5\n0\ta\t2\t0.5\n";
// Always ad a: w = 2, 0, 0, 2; rewards 1, 0, 1, 0 → IPS = 2/4 = 0.5, SNIPS = 2/4 = 0.5.
const POLICY: &str = "p_a\tp_b\n1\t0\n1\t0\n1\t0\n1\t0\n";
// q̂ = 0.2 for a, 0.6 for b: DR terms 0.2 + 2·0.8, 0.2, 0.2, 0.2 + 2·(−0.2) = 1.8, 0.2, 0.2, −0.2 → 0.5.
const MODEL: &str = "q_a\tq_b\n0.2\t0.6\n0.2\t0.6\n0.2\t0.6\n0.2\t0.6\n";

fn ope(dir: &std::path::Path, policy: &str, extra: &[&str]) -> std::process::Output {
    std::fs::write(dir.join("p.tsv"), policy).expect("write policy");
    wgrec()
        .arg("ope")
        .args([
            "--log",
            "log.tsv",
            "--schema",
            "schema.toml",
            "--policy",
            "p.tsv",
            "--reward-model",
            "q.tsv",
        ])
        .args([
            "--action",
            "ad",
            "--position",
            "slot",
            "--reward",
            "clicked",
            "--propensity",
            "pscore",
        ])
        .args(["--bootstrap", "200"])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("run wgrec")
}

#[test]
fn ope_prints_ips_snips_and_dr_with_intervals_and_json() {
    let dir = temp("ope");
    for (name, text) in [("schema.toml", SCHEMA), ("log.tsv", LOG), ("q.tsv", MODEL)] {
        std::fs::write(dir.join(name), text).expect("write fixture");
    }
    let table = ok(&ope(&dir, POLICY, &[]));
    assert!(
        table.contains("4 rounds, 2 actions, 2 positions"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ips ") && l.contains("0.500000")),
        "{table}"
    );
    let json = last_json(&ok(&ope(&dir, POLICY, &["--json"])));
    let estimates = json["estimates"].as_array().expect("estimates");
    let names: Vec<&str> = estimates
        .iter()
        .map(|e| e["estimator"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["on-policy", "ips", "snips", "dr"]);
    for e in estimates {
        let (v, lo, hi) = (
            e["estimate"].as_f64().unwrap(),
            e["lower"].as_f64().unwrap(),
            e["upper"].as_f64().unwrap(),
        );
        assert!((v - 0.5).abs() < 1e-12 && lo <= v && v <= hi, "{e}");
    }
    assert_eq!(
        json,
        last_json(&ok(&ope(&dir, POLICY, &["--json"]))),
        "same seed, same numbers"
    );
    let unsummed = POLICY.replace("1\t0\n1\t0\n1\t0\n1\t0\n", "1\t0\n1\t0\n0.5\t0.2\n1\t0\n");
    let out = ope(&dir, &unsummed, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("p.tsv:4: the probabilities sum to 0.7"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn data_fetch_obd_without_pip_is_a_clear_error() {
    let dir = temp("obd-nopip");
    let out = wgrec()
        .args(["data", "fetch", "obd", "--campaign", "men", "--into"])
        .arg(&dir)
        .env("PATH", "")
        .output()
        .expect("run wgrec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("pip is needed to download obp==0.4.1"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
