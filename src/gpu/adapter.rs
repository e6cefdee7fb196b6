//! Adapter choice: which backends to look at, which adapter to take, and the environment overrides
//! (`WGREC_BACKEND`, `WGREC_ADAPTER`).

use crate::error::{Error, Result};

/// What `Gpu::new` looks for.
#[derive(Debug, Clone)]
pub struct AdapterChoice {
    /// Backends to enumerate.
    pub backends: wgpu::Backends,
    /// Case-insensitive substring the adapter name must contain.
    pub name_contains: Option<String>,
}

impl Default for AdapterChoice {
    fn default() -> Self {
        AdapterChoice {
            backends: wgpu::Backends::all(),
            name_contains: None,
        }
    }
}

impl AdapterChoice {
    /// Reads `WGREC_BACKEND=vulkan|metal|dx12|gl` and `WGREC_ADAPTER=<name substring>`.
    pub fn from_env() -> Result<Self> {
        let mut choice = AdapterChoice::default();
        if let Ok(value) = std::env::var("WGREC_BACKEND") {
            choice.backends = parse_backend(&value)?;
        }
        if let Ok(value) = std::env::var("WGREC_ADAPTER") {
            if !value.trim().is_empty() {
                choice.name_contains = Some(value);
            }
        }
        Ok(choice)
    }

    /// A sentence describing the search, for error messages.
    pub fn describe(&self) -> String {
        let backends = backend_names(self.backends);
        match &self.name_contains {
            Some(name) => format!("an adapter whose name contains {name:?} on {backends}"),
            None => format!("any adapter on {backends}"),
        }
    }

    /// Whether an adapter passes the name filter.
    pub fn accepts(&self, info: &wgpu::AdapterInfo) -> bool {
        match &self.name_contains {
            Some(name) => info.name.to_lowercase().contains(&name.to_lowercase()),
            None => true,
        }
    }
}

/// Parses a `WGREC_BACKEND` value.
pub fn parse_backend(value: &str) -> Result<wgpu::Backends> {
    match value.trim().to_lowercase().as_str() {
        "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
        "metal" => Ok(wgpu::Backends::METAL),
        "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
        "" | "all" => Ok(wgpu::Backends::all()),
        _ => Err(Error::BadEnv {
            name: "WGREC_BACKEND",
            value: value.to_string(),
            reason: "expected one of vulkan, metal, dx12, gl".into(),
        }),
    }
}

fn backend_names(backends: wgpu::Backends) -> String {
    let named = [
        (wgpu::Backends::VULKAN, "Vulkan"),
        (wgpu::Backends::METAL, "Metal"),
        (wgpu::Backends::DX12, "DX12"),
        (wgpu::Backends::GL, "GL"),
    ];
    let names: Vec<&str> = named
        .iter()
        .filter(|(b, _)| backends.contains(*b))
        .map(|(_, n)| *n)
        .collect();
    names.join(", ")
}

/// One line naming the adapter, its backend and device type, and the driver: the same adapter can
/// train through two backends (llvmpipe under Vulkan and under GL) with slightly different floats, so
/// every report says which one ran, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) · Vulkan · cpu · …`.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    let backend = match info.backend {
        wgpu::Backend::Vulkan => "Vulkan",
        wgpu::Backend::Metal => "Metal",
        wgpu::Backend::Dx12 => "DX12",
        wgpu::Backend::Gl => "GL",
        wgpu::Backend::BrowserWebGpu => "WebGPU",
        _ => "no backend",
    };
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete gpu",
        wgpu::DeviceType::IntegratedGpu => "integrated gpu",
        wgpu::DeviceType::VirtualGpu => "virtual gpu",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    };
    let driver = format!("{} {}", info.driver, info.driver_info);
    match driver.trim() {
        "" => format!("{} · {backend} · {device}", info.name),
        d => format!("{} · {backend} · {device} · driver {d}", info.name),
    }
}

/// Lower is better: discrete > integrated > virtual > CPU, and a native API before GL.
pub fn preference(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (device, backend)
}

/// Every adapter wgpu can see on the chosen backends, best first.
pub fn enumerate(choice: &AdapterChoice) -> (wgpu::Instance, Vec<wgpu::Adapter>) {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
    desc.backends = choice.backends;
    let instance = wgpu::Instance::new(desc);
    let mut adapters = pollster::block_on(instance.enumerate_adapters(choice.backends));
    adapters.sort_by_key(|a| preference(&a.get_info()));
    (instance, adapters)
}

/// The message shown when nothing usable was found.
pub fn no_adapter(choice: &AdapterChoice) -> Error {
    Error::NoAdapter {
        looked_for: choice.describe(),
        hint: "wgrec needs a Vulkan, Metal, DX12 or GL adapter. On Linux without a GPU, install \
               Mesa's software Vulkan driver (lavapipe): `apt-get install mesa-vulkan-drivers`. \
               `wgrec devices` lists what is visible; WGREC_BACKEND and WGREC_ADAPTER narrow the choice."
            .into(),
    }
}
