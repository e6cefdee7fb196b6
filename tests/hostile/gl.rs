//! What the user sees about the backend: every report names the backend that ran (llvmpipe trains
//! through Vulkan and through GL with slightly different floats), GL training works and matches
//! Vulkan, and Mesa's runtime-dir complaint stays off the screen.

use crate::common::{model_file, ok, refused, stderr, synth_data, temp, wgrec, SMALL_MODEL};

/// Whether `wgrec devices` sees an adapter on `backend`; under CI=true a missing one fails.
fn has_backend(backend: &str) -> bool {
    let out = wgrec()
        .args(["devices", "--json"])
        .env("WGREC_BACKEND", backend)
        .output()
        .expect("run");
    let seen = out.status.success();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        seen || !ci,
        "CI=true but no {backend} adapter:\n{}",
        stderr(&out)
    );
    seen
}

fn test_auc_and_adapter(backend: &str, dir: &std::path::Path) -> (f64, String) {
    let data = synth_data(dir, 3000);
    let model = model_file(dir, "small.toml", SMALL_MODEL);
    let out = ok(&wgrec()
        .args(["train", "--json", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.join("run"))
        .env("WGREC_BACKEND", backend)
        .output()
        .expect("run"));
    let last = out.lines().last().expect("a JSON line");
    let report: serde_json::Value = serde_json::from_str(last).expect("JSON");
    let auc = report["test_auc"].as_f64().expect("test_auc (one task)");
    let adapter = report["adapter"].as_str().expect("adapter").to_string();
    (auc, adapter)
}

#[test]
fn devices_names_the_backend_of_every_adapter() {
    let out = ok(&wgrec().arg("devices").output().expect("run"));
    let first = out.lines().next().expect("one adapter line");
    assert!(
        [" · Vulkan · ", " · GL · ", " · Metal · ", " · DX12 · "]
            .iter()
            .any(|b| first.contains(b)),
        "no backend in {first:?}"
    );
}

#[test]
fn gl_training_names_gl_and_matches_vulkan_on_synthetic_data() {
    if !(has_backend("gl") && has_backend("vulkan")) {
        eprintln!("skipped: needs both a GL and a Vulkan adapter (CI installs both)");
        return;
    }
    let (gl_auc, gl_adapter) = test_auc_and_adapter("gl", &temp("gl-train"));
    let (vk_auc, vk_adapter) = test_auc_and_adapter("vulkan", &temp("vk-train"));
    assert!(gl_adapter.contains(" · GL · "), "{gl_adapter}");
    assert!(vk_adapter.contains(" · Vulkan · "), "{vk_adapter}");
    // The two backends compile the same WGSL through different compilers (GLSL vs SPIR-V), so the
    // floats differ in the last bits; on one short epoch the AUC agrees far tighter than 1e-3.
    assert!(
        (gl_auc - vk_auc).abs() < 1e-3,
        "GL {gl_auc} vs Vulkan {vk_auc}"
    );
}

#[test]
fn no_runtime_dir_complaint_when_xdg_runtime_dir_is_unset() {
    let out = wgrec()
        .arg("devices")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("run");
    ok(&out);
    assert!(
        !stderr(&out).contains("XDG_RUNTIME_DIR"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unknown_backend_is_refused_naming_the_variable_and_the_choices() {
    let out = wgrec()
        .arg("devices")
        .env("WGREC_BACKEND", "opengles-ish")
        .output()
        .expect("run");
    refused(
        &out,
        &["WGREC_BACKEND", "opengles-ish", "vulkan, metal, dx12, gl"],
    );
}
