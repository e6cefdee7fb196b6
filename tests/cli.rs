//! The binary as a user meets it: `wgrec devices`, `wgrec bench`, `wgrec data` and the no-adapter error.

#[path = "cli/analyze.rs"]
mod analyze;
#[path = "cli/bench.rs"]
mod bench;
#[path = "cli/content.rs"]
mod content;
#[path = "cli/entangle.rs"]
mod entangle;
#[path = "cli/online.rs"]
mod online;
#[path = "cli/ope.rs"]
mod ope;
#[path = "cli/plan.rs"]
mod plan;
#[path = "cli/policy.rs"]
mod policy;
#[path = "cli/policy_rank.rs"]
mod policy_rank;
#[path = "cli/pretrain.rs"]
mod pretrain;
#[path = "cli/profile.rs"]
mod profile;
#[path = "cli/scenarios.rs"]
mod scenarios;
#[path = "cli/simulate.rs"]
mod simulate;
#[path = "cli/tune.rs"]
mod tune;

use std::process::Command;

fn wgrec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wgrec"))
}

#[test]
fn devices_json_lists_at_least_one_adapter_as_one_array() {
    let out = wgrec()
        .args(["devices", "--json"])
        .output()
        .expect("run wgrec");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let parsed: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON value");
    let list = parsed.as_array().expect("an array");
    assert!(!list.is_empty());
    for key in [
        "name",
        "backend",
        "device_type",
        "max_storage_buffer_binding_size",
        "features",
    ] {
        assert!(list[0].get(key).is_some(), "missing {key}");
    }
}

#[test]
fn no_adapter_is_a_clear_error_with_a_non_zero_exit_and_no_panic() {
    let out = wgrec()
        .arg("devices")
        .env("WGREC_BACKEND", "vulkan")
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .output()
        .expect("run wgrec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no usable GPU adapter: any adapter on Vulkan"),
        "{stderr}"
    );
    assert!(
        stderr.contains("apt-get install mesa-vulkan-drivers"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn a_bad_backend_name_is_an_error_naming_the_variable() {
    let out = wgrec()
        .arg("devices")
        .env("WGREC_BACKEND", "cuda")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("WGREC_BACKEND=\"cuda\""), "{stderr}");
}

#[test]
fn bench_json_reports_every_kernel_beside_its_ceiling() {
    let out = wgrec()
        .args(["bench", "--quick", "--json", "--repeats", "2"])
        .output()
        .expect("run wgrec");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let last = stdout.lines().last().expect("a line");
    let report: serde_json::Value = serde_json::from_str(last).expect("one JSON object");
    assert!(report["adapter"].as_str().is_some_and(|a| !a.is_empty()));
    let results = report["results"].as_array().expect("results");
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["kernel"].as_str().expect("kernel"))
        .collect();
    for kernel in [
        "copy_ceiling",
        "fma_ceiling",
        "gemm",
        "embedding_gather",
        "embedding_update_adagrad",
        "tim_forward",
        "tim_backward",
        "expert_dcn",
        "expert_gwpfm",
        "expert_fm",
        "expert_ipnn",
        "loss_bce",
        "loss_combined_pair",
        "loss_combined_list",
        "content_simhash",
        "content_similarity",
    ] {
        assert!(names.contains(&kernel), "{kernel} missing from {names:?}");
    }
    for r in results {
        let (ms, rate, share) = (
            r["median_ms"].as_f64().expect("ms"),
            r["rate"].as_f64().expect("rate"),
            r["of_ceiling"].as_f64().expect("share"),
        );
        assert!(ms > 0.0 && rate > 0.0 && share > 0.0, "{r}");
    }
    assert_eq!(results[0]["of_ceiling"].as_f64(), Some(1.0));
}

#[test]
fn bench_filter_keeps_the_ceilings_and_bad_repeats_are_refused() {
    let out = wgrec()
        .args([
            "bench",
            "--quick",
            "--json",
            "--repeats",
            "1",
            "--filter",
            "gemm",
        ])
        .output()
        .expect("run wgrec");
    assert!(out.status.success());
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("JSON");
    let names: Vec<String> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["kernel"].as_str().expect("kernel").to_string())
        .collect();
    assert_eq!(names, ["copy_ceiling", "fma_ceiling", "gemm"]);
    let out = wgrec()
        .args(["bench", "--repeats", "0"])
        .output()
        .expect("run wgrec");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--repeats"), "{stderr}");
}

#[test]
fn data_synth_writes_splits_and_schema_and_reports_the_rate() {
    let dir = std::env::temp_dir().join(format!("wgrec-cli-synth-{}", std::process::id()));
    let out = wgrec()
        .args([
            "data",
            "synth",
            "--rows",
            "2000",
            "--criteo",
            "--seed",
            "3",
            "--positive-rate",
            "0.1",
            "--out",
        ])
        .arg(&dir)
        .output()
        .expect("run wgrec");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2000 rows (train 1600, valid 200, test 200)"),
        "{stdout}"
    );
    assert!(stdout.contains("rows/s"), "{stdout}");
    let train = std::fs::read_to_string(dir.join("train.tsv")).expect("train.tsv");
    assert_eq!(train.lines().count(), 1600);
    assert!(train.lines().all(|l| l.split('\t').count() == 40));
    assert!(dir.join("schema.toml").is_file() && dir.join("test.tsv").is_file());
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn data_synth_with_a_bad_rate_is_an_error_line_and_exit_1() {
    let out = wgrec()
        .args([
            "data",
            "synth",
            "--rows",
            "10",
            "--out",
            "/nonexistent/never",
            "--positive-rate",
            "1.5",
        ])
        .output()
        .expect("run wgrec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: dataset synth: positive rate 1.5 is not in (0, 1)"),
        "{stderr}"
    );
}

#[test]
fn data_fetch_without_pip_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("wgrec-cli-nopip-{}", std::process::id()));
    let out = wgrec()
        .args(["data", "fetch", "ml-100k", "--into"])
        .arg(&dir)
        .env("PATH", "")
        .output()
        .expect("run wgrec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("pip is needed to download recbole==1.2.1"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small model for the synthetic sample table (`wgrec data synth` without --criteo).
const SYNTH_MODEL: &str = r#"
[model]
tables = 2
dim = 8
experts = [{ type = "dcn", layers = 1 }, { type = "gwpfm", groups = [["user_id"], ["item_id", "item_cat", "history"]] }]
expert_width = 16
hidden = [16]

[[feature]]
name = "user_id"
kind = "categorical"

[[feature]]
name = "item_id"
kind = "categorical"

[[feature]]
name = "item_cat"
kind = "categorical"

[[feature]]
name = "n0"
kind = "numeric"

[[feature]]
name = "history"
kind = "sequence"
column = "hist_item"
item = "item_id"
side = ["item_cat"]
side_columns = ["hist_cat"]
max_len = 10
buckets = 16

[[task]]
name = "click"

[train]
batch_size = 256
epochs = 2
group = "user_id"
"#;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

/// `wgrec data synth --rows ROWS --out DATA`, which must succeed.
fn synth_data(data: &std::path::Path, rows: u32) {
    ok(&wgrec()
        .args(["data", "synth", "--rows", &rows.to_string(), "--out"])
        .arg(data)
        .output()
        .expect("run"));
}

/// The last line of stdout as one JSON object.
fn last_json(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().last().expect("a line on stdout");
    serde_json::from_str(line).expect("the last line is one JSON object")
}

#[test]
fn train_eval_predict_end_to_end_on_synthetic_data() {
    let dir = temp("e2e");
    let data = dir.join("data");
    ok(&wgrec()
        .args(["data", "synth", "--rows", "3000", "--out"])
        .arg(&data)
        .output()
        .expect("run"));
    let model = dir.join("model.toml");
    std::fs::write(&model, SYNTH_MODEL).unwrap();
    let run = dir.join("run");
    let out = wgrec()
        .args(["train", "--json", "--verbose", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .output()
        .expect("run");
    let stdout = ok(&out);
    let report = last_json(&stdout);
    for key in [
        "test_auc",
        "test_gauc",
        "test_logloss",
        "train_samples_per_sec",
        "adapter",
    ] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    let auc = report["test_auc"].as_f64().expect("one task: a number");
    assert!((0.0..=1.0).contains(&auc));
    assert!(report["train_samples_per_sec"].as_f64().unwrap() > 0.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dispatches and 1 submit per training step"),
        "{stderr}"
    );
    for f in [
        "config.toml",
        "schema.toml",
        "best.safetensors",
        "last.safetensors",
        "encoder",
    ] {
        assert!(run.join(f).exists(), "{f} written");
    }

    // eval finds the data the run used and reproduces the test metrics.
    let eval = last_json(&ok(&wgrec()
        .args(["eval", "--json", "--checkpoint"])
        .arg(&run)
        .output()
        .expect("run")));
    assert_eq!(eval["test_auc"], report["test_auc"]);
    assert_eq!(eval["test_logloss"], report["test_logloss"]);

    let scores = dir.join("scores.tsv");
    ok(&wgrec()
        .args(["predict", "--checkpoint"])
        .arg(&run)
        .arg("--input")
        .arg(data.join("test.tsv"))
        .arg("--output")
        .arg(&scores)
        .output()
        .expect("run"));
    let text = std::fs::read_to_string(&scores).unwrap();
    assert_eq!(
        text.lines().count(),
        1 + 300,
        "header + one line per test row"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn train_json_on_a_criteo_layout_file_from_its_three_line_schema() {
    let dir = temp("criteo");
    let data = dir.join("data");
    ok(&wgrec()
        .args(["data", "synth", "--criteo", "--rows", "2000", "--out"])
        .arg(&data)
        .output()
        .expect("run"));
    let schema = std::fs::read_to_string(data.join("schema.toml")).unwrap();
    let lines: Vec<&str> = schema
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(lines.len(), 3, "the three-line schema: {schema}");
    let mut model = String::from(
        "[model]\ntables = 2\ndim = 8\nexperts = [{ type = \"dcn\", layers = 1 }, { type = \"ipnn\" }]\nexpert_width = 16\nhidden = [16]\n",
    );
    for j in 1..=13 {
        model.push_str(&format!(
            "[[feature]]\nname = \"I{j}\"\nkind = \"numeric\"\n"
        ));
    }
    for f in 1..=26 {
        model.push_str(&format!(
            "[[feature]]\nname = \"C{f}\"\nkind = \"categorical\"\nhash_rows = 512\n"
        ));
    }
    model.push_str("[train]\nbatch_size = 256\nepochs = 1\n");
    let path = dir.join("criteo.toml");
    std::fs::write(&path, model).unwrap();
    let report = last_json(&ok(&wgrec()
        .args(["train", "--json", "--config"])
        .arg(&path)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.join("run"))
        .output()
        .expect("run")));
    assert!(report["test_auc"].as_f64().is_some(), "{report}");
    assert!(report["test_gauc"].is_null(), "no group column: no GAUC");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_row_names_file_line_and_column_and_skip_bad_rows_counts_it() {
    let dir = temp("badrow");
    let data = dir.join("data");
    ok(&wgrec()
        .args(["data", "synth", "--rows", "2000", "--out"])
        .arg(&data)
        .output()
        .expect("run"));
    // Break the n1 value (0-based field 13, column 14) of the 5th data row (line 6) of train.
    let train = data.join("train.tsv");
    let text = std::fs::read_to_string(&train).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut fields: Vec<String> = lines[5].split('\t').map(String::from).collect();
    fields[13] = "twelve".into();
    lines[5] = fields.join("\t");
    std::fs::write(&train, lines.join("\n") + "\n").unwrap();
    let model = dir.join("model.toml");
    std::fs::write(&model, SYNTH_MODEL.replace("epochs = 2", "epochs = 1")).unwrap();
    let out = wgrec()
        .args(["train", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.join("run"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("train.tsv:6"), "{stderr}");
    assert!(stderr.contains("column 14 \"n1\""), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Two epochs read the bad row twice; it is one bad row.
    let two = dir.join("two.toml");
    std::fs::write(&two, SYNTH_MODEL).unwrap();
    let report = last_json(&ok(&wgrec()
        .args(["train", "--json", "--skip-bad-rows", "--config"])
        .arg(&two)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.join("run2"))
        .output()
        .expect("run")));
    assert_eq!(report["bad_rows"], 1, "{report}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn data_sequences_turns_a_log_into_a_sample_table_with_histories() {
    let dir = std::env::temp_dir().join(format!("wgrec-cli-sequences-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    std::fs::write(
        dir.join("log.csv"),
        "user,item,t,click\nu1,a,5,1\nu2,b,3,0\nu1,c,1,1\nu1,d,9,0\n",
    )
    .expect("log");
    std::fs::write(
        dir.join("schema.toml"),
        "delimiter = \",\"\ncolumns = \"categorical:user, categorical:item, timestamp:t, label:click\"\n",
    )
    .expect("schema");
    let run = |extra: &[&str]| {
        wgrec()
            .args([
                "data",
                "sequences",
                "--user",
                "user",
                "--item",
                "item",
                "--time",
                "t",
            ])
            .arg("--events")
            .arg(dir.join("log.csv"))
            .arg("--schema")
            .arg(dir.join("schema.toml"))
            .arg("--out")
            .arg(dir.join("samples.csv"))
            .args(extra)
            .output()
            .expect("run wgrec")
    };
    let out = run(&["--behaviours", "positive", "--label", "click"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("sequences: 4 rows, 2 users, mean history 0.75"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("samples.csv")).expect("samples"),
        "user,item,t,click,hist_item,hist_time\nu1,c,1,1,,\nu2,b,3,0,,\nu1,a,5,1,c,1\nu1,d,9,0,c|a,1|5\n"
    );
    assert!(dir.join("samples.schema.toml").is_file());
    let out = run(&["--behaviours", "positive"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("error: --behaviours positive needs --label <column>"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn bench_scaling_writes_json_and_three_charts_with_every_curve() {
    let dir = std::env::temp_dir().join(format!("wgrec-cli-scaling-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = wgrec()
        .args(["bench", "--quick", "--repeats", "1", "--scaling"])
        .arg(&dir)
        .output()
        .expect("run wgrec");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let training: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("training.json")).expect("training.json"),
    )
    .expect("JSON");
    let sweeps = training.as_array().expect("sweeps");
    let names: Vec<&str> = sweeps
        .iter()
        .map(|s| s["sweep"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["batch", "tables", "seq_len", "rows"]);
    for s in sweeps {
        for p in s["points"].as_array().expect("points") {
            assert!(p["train_samples_per_sec"].as_f64().unwrap() > 0.0, "{p}");
            assert!(p["model_bytes"].as_u64().unwrap() > 0, "{p}");
        }
        // More tables or rows never take less memory.
        if matches!(s["sweep"].as_str(), Some("tables" | "rows")) {
            let mem: Vec<u64> = s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["model_bytes"].as_u64().unwrap())
                .collect();
            assert!(mem.windows(2).all(|w| w[0] < w[1]), "{mem:?}");
        }
    }
    for png in [
        "scaling_rows.png",
        "scaling_batch.png",
        "scaling_tim.png",
        "training_batch.png",
        "training_tables.png",
        "training_seq_len.png",
        "training_rows.png",
        "training_rows_memory.png",
    ] {
        let bytes = std::fs::read(dir.join(png)).expect(png);
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
    }
    let text = std::fs::read_to_string(dir.join("scaling.json")).expect("scaling.json");
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let limit = report["max_binding_bytes"].as_f64().expect("limit");
    let curves = report["curves"].as_array().expect("curves");
    let mut seen = Vec::new();
    for c in curves {
        let (sweep, kernel) = (c["sweep"].as_str().unwrap(), c["kernel"].as_str().unwrap());
        seen.push(format!("{sweep}/{kernel}"));
        let points = c["points"].as_array().expect("points");
        assert!(points.len() >= 2, "{sweep}/{kernel}: {points:?}");
        let xs: Vec<f64> = points.iter().map(|p| p["x"].as_f64().unwrap()).collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        for p in points {
            assert!(p["median_ms"].as_f64().unwrap() > 0.0, "{p}");
            assert!(p["allocated_bytes"].as_u64().unwrap() > 0, "{p}");
        }
        if sweep == "rows" {
            // The sweep goes past one storage binding: the largest table is chunked.
            let last = points.last().unwrap()["allocated_bytes"].as_f64().unwrap();
            assert!(
                last > limit,
                "largest table {last} B within the {limit} B binding"
            );
        }
    }
    for want in [
        "rows/embedding_gather",
        "rows/embedding_update_adagrad",
        "batch/embedding_gather",
        "batch/embedding_update_adagrad",
        "tim/tim_forward",
        "tim/tim_backward",
    ] {
        assert!(
            seen.iter().any(|s| s == want),
            "{want} missing from {seen:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two tasks over users and items; `buy` is missing on one row in three.
const TWO_TASK_MODEL: &str = r#"
[model]
tables = 1
dim = 4
experts = [{ type = "dcn", layers = 1 }]
expert_width = 8
hidden = [8]
dropout = 0.0

[[feature]]
name = "user"
kind = "categorical"

[[feature]]
name = "item"
kind = "categorical"

[[task]]
name = "click"

[[task]]
name = "buy"

[train]
batch_size = 64
epochs = 2
group = "user"
monitor = "mean"
"#;

/// A 64-bit LCG (Knuth's MMIX constants) from `seed`: enough randomness for test labels.
fn lcg(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    }
}

/// A CSV split of `rows` rows: click and buy (empty on rows i ≡ 0 mod 3), user and item ids.
/// Returns the text and the number of rows with a buy label.
fn two_task_split(rows: usize, seed: u64) -> (String, usize) {
    let mut next = lcg(seed);
    let mut text = String::from("click,buy,user,item\n");
    let mut labelled = 0;
    for i in 0..rows {
        let (user, item) = (next() % 12, next() % 20);
        let p = (user + item) % 4;
        let click = (next() % 4 < p) as u8;
        let buy = if i % 3 == 0 {
            String::new()
        } else {
            labelled += 1;
            ((next() % 4 < p.min(2) + click as u64) as u8).to_string()
        };
        text.push_str(&format!("{click},{buy},u{user},i{item}\n"));
    }
    (text, labelled)
}

#[test]
fn two_tasks_with_missing_labels_train_and_eval_with_metrics_keyed_by_task() {
    let dir = temp("missing-labels");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("schema.toml"),
        "delimiter = \",\"\ncolumns = \"label:click, label:buy, categorical:user, categorical:item\"\n",
    )
    .unwrap();
    let mut buy_rows = std::collections::BTreeMap::new();
    for (split, rows, seed) in [("train", 600, 1), ("valid", 150, 2), ("test", 151, 3)] {
        let (text, labelled) = two_task_split(rows, seed);
        std::fs::write(data.join(format!("{split}.csv")), text).unwrap();
        buy_rows.insert(split, (rows, labelled));
    }
    let model = dir.join("model.toml");
    std::fs::write(&model, TWO_TASK_MODEL).unwrap();
    let run = dir.join("run");
    let out = wgrec()
        .args(["train", "--json", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .output()
        .expect("run");
    let report = last_json(&ok(&out));
    for prefix in ["test", "valid"] {
        let (rows, labelled) = buy_rows[prefix];
        let counted = &report[format!("{prefix}_rows")];
        assert_eq!(counted["click"], rows, "{report}");
        assert_eq!(
            counted["buy"], labelled,
            "missing buy labels excluded: {report}"
        );
        for metric in ["auc", "gauc", "logloss", "calibration"] {
            for task in ["click", "buy"] {
                let v = &report[format!("{prefix}_{metric}")][task];
                assert!(
                    v.as_f64().is_some_and(f64::is_finite),
                    "{prefix}_{metric}.{task}: {report}"
                );
            }
        }
    }
    // The end-of-epoch lines name both tasks with the rows each covers.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (_, valid_buy) = buy_rows["valid"];
    assert!(
        stderr.contains("click: auc") && stderr.contains("(150 rows)"),
        "{stderr}"
    );
    assert!(stderr.contains("buy: auc"), "{stderr}");
    assert!(stderr.contains(&format!("({valid_buy} rows)")), "{stderr}");

    // eval reproduces the test metrics, keyed by task, with the same rows per task.
    let eval = last_json(&ok(&wgrec()
        .args(["eval", "--json", "--checkpoint"])
        .arg(&run)
        .output()
        .expect("run")));
    for key in [
        "test_auc",
        "test_gauc",
        "test_logloss",
        "test_calibration",
        "test_rows",
    ] {
        assert_eq!(eval[key], report[key], "{key}: {eval}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
