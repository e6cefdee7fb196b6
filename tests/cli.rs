//! The binary as a user meets it: `wgrec devices` and the no-adapter error.

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
