//! The binary as a user meets it: `wgrec devices`, `wgrec bench`, `wgrec data` and the no-adapter error.

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
    for png in ["scaling_rows.png", "scaling_batch.png", "scaling_tim.png"] {
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
