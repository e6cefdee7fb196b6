//! `wgrec devices`: every adapter wgpu sees, with the limits and features wgrec cares about.

use serde::Serialize;
use wgrec::gpu::adapter::{self, AdapterChoice};

/// One adapter as printed.
#[derive(Debug, Serialize)]
pub struct DeviceReport {
    name: String,
    backend: String,
    device_type: String,
    driver: String,
    driver_info: String,
    vendor: u32,
    device: u32,
    max_buffer_size: u64,
    max_storage_buffer_binding_size: u64,
    max_storage_buffers_per_shader_stage: u32,
    max_compute_invocations_per_workgroup: u32,
    max_compute_workgroup_storage_size: u32,
    max_compute_workgroups_per_dimension: u32,
    features: Vec<String>,
}

fn report(adapter: &wgpu::Adapter) -> (String, DeviceReport) {
    let info = adapter.get_info();
    let limits = adapter.limits();
    let have = adapter.features();
    let named = [
        (wgpu::Features::TIMESTAMP_QUERY, "timestamp-query"),
        (wgpu::Features::SHADER_F16, "shader-f16"),
        (wgpu::Features::SUBGROUP, "subgroup"),
        (
            wgpu::Features::SHADER_FLOAT32_ATOMIC,
            "shader-float32-atomic",
        ),
        (wgpu::Features::SHADER_F64, "shader-f64"),
    ];
    let line = adapter::describe(&info);
    let report = DeviceReport {
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        vendor: info.vendor,
        device: info.device,
        max_buffer_size: limits.max_buffer_size,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        features: named
            .iter()
            .filter(|(f, _)| have.contains(*f))
            .map(|(_, n)| n.to_string())
            .collect(),
    };
    (line, report)
}

/// Lists adapters (best first); an error when there are none.
pub fn run(json: bool) -> anyhow::Result<()> {
    let choice = AdapterChoice::from_env()?;
    let (_instance, adapters) = adapter::enumerate(&choice);
    let (lines, reports): (Vec<String>, Vec<DeviceReport>) = adapters
        .iter()
        .filter(|a| choice.accepts(&a.get_info()))
        .map(report)
        .unzip();
    if reports.is_empty() {
        return Err(adapter::no_adapter(&choice).into());
    }
    if json {
        println!("{}", serde_json::to_string(&reports)?);
        return Ok(());
    }
    for (i, r) in reports.iter().enumerate() {
        let mark = if i == 0 { "*" } else { " " };
        println!("{mark} {}", lines[i]);
        println!(
            "    buffer ≤ {} MiB, storage binding ≤ {} MiB, {} storage buffers/stage, \
             {} invocations/workgroup, {} KiB workgroup memory",
            r.max_buffer_size >> 20,
            r.max_storage_buffer_binding_size >> 20,
            r.max_storage_buffers_per_shader_stage,
            r.max_compute_invocations_per_workgroup,
            r.max_compute_workgroup_storage_size >> 10
        );
        println!("    features: {}", r.features.join(", "));
    }
    println!("(* = the adapter wgrec picks; WGREC_ADAPTER / WGREC_BACKEND change it)");
    Ok(())
}
