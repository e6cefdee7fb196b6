//! `wgrec devices`: every adapter wgpu sees, with the limits and features wgrec cares about.

use serde::Serialize;
use wgrec::gpu::adapter::{self, AdapterChoice};
use wgrec::gpu::Family;
use wgrec::tune::{self, DeviceKey, TuneCache};

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
    /// With `--verbose`: each kernel family's variants this adapter runs, and the tune cache's
    /// choices for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    kernels: Option<KernelReport>,
}

/// The kernel variants of one adapter (`--verbose`).
#[derive(Debug, Serialize)]
struct KernelReport {
    /// Family name → the variants this adapter can run, default first.
    variants: std::collections::BTreeMap<String, Vec<String>>,
    /// The tune cache's entries for this adapter, driver and wgrec version.
    tuned: Vec<wgrec::tune::Entry>,
    /// Problems reading the cache (corrupt, unusable entries).
    warnings: Vec<String>,
}

fn kernels(adapter: &wgpu::Adapter) -> KernelReport {
    let subgroups = adapter.features().contains(wgpu::Features::SUBGROUP);
    let variants = Family::ALL
        .iter()
        .map(|f| {
            let names = f.variants().iter().filter(|v| subgroups || !v.subgroups);
            (
                f.name().to_string(),
                names.map(|v| v.name.to_string()).collect(),
            )
        })
        .collect();
    let key = DeviceKey::of_info(&adapter.get_info());
    let (cache, mut warnings) = match tune::cache::default_path() {
        Some(path) => TuneCache::load(&path),
        None => Default::default(),
    };
    warnings.extend(cache.choices_for(&key).1);
    let tuned = cache
        .entries
        .into_iter()
        .filter(|e| e.device == key)
        .collect();
    KernelReport {
        variants,
        tuned,
        warnings,
    }
}

fn print_kernels(k: &KernelReport) {
    for (family, names) in &k.variants {
        println!("    {family} variants: {}", names.join(", "));
    }
    match tune::cache::default_path() {
        Some(p) if k.tuned.is_empty() => println!("    tuned: none in {}", p.display()),
        Some(p) => println!("    tuned ({}):", p.display()),
        None => println!("    tuned: no cache path (set WGREC_TUNE_CACHE or HOME)"),
    }
    for e in &k.tuned {
        let ms: Vec<String> = e.ms.iter().map(|(v, t)| format!("{v} {t:.3} ms")).collect();
        println!(
            "      {} {}: {} ({})",
            e.family,
            e.class,
            e.variant,
            ms.join(", ")
        );
    }
    for w in &k.warnings {
        println!("    warning: {w}");
    }
}

fn report(adapter: &wgpu::Adapter, verbose: bool) -> (String, DeviceReport) {
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
        kernels: verbose.then(|| kernels(adapter)),
    };
    (line, report)
}

/// Lists adapters (best first); an error when there are none.
pub fn run(json: bool, verbose: bool) -> anyhow::Result<()> {
    let choice = AdapterChoice::from_env()?;
    let (_instance, adapters) = adapter::enumerate(&choice);
    let (lines, reports): (Vec<String>, Vec<DeviceReport>) = adapters
        .iter()
        .filter(|a| choice.accepts(&a.get_info()))
        .map(|a| report(a, verbose))
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
        if let Some(k) = &r.kernels {
            print_kernels(k);
        }
    }
    println!("(* = the adapter wgrec picks; WGREC_ADAPTER / WGREC_BACKEND change it)");
    Ok(())
}
