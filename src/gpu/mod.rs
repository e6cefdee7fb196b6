//! The device layer: adapter choice, the negotiated device, the pipeline cache, buffers, readback,
//! error capture and GPU timestamps, and the scaffolding every kernel launcher is built from
//! ([`Launch`], [`Uniform`]). Everything above this layer talks to the GPU through [`Gpu`].
//!
//! Two ways in: [`Gpu::new`] picks an adapter itself (best type first, environment overrides), and
//! [`Gpu::from_wgpu`] wraps a device a host program already owns. wgpu's default uncaptured-error
//! handler panics; `Gpu` replaces it with one that records the error, and [`Gpu::sync`] returns it as
//! an [`Error`], so a bad dispatch never takes the host process down.

pub mod adapter;
mod launch;
mod pipeline;
mod readback;
mod timer;
pub mod variants;

use std::sync::{Arc, Mutex};

pub use adapter::AdapterChoice;
pub(crate) use launch::rows_field;
pub use launch::{check_rows, Grid, Launch, Rows, Uniform};
pub use pipeline::{Access, Kernel, Pipeline};
pub use timer::PassTimer;
pub use variants::{size_class, Family, Source, Variant};

use crate::error::{Error, Result};

/// A wgpu device and queue, with what wgrec needs around them.
pub struct Gpu {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    pipelines: pipeline::PipelineCache,
    uncaptured: Arc<Mutex<Option<String>>>,
    dispatches: std::sync::atomic::AtomicU64,
    submits: std::sync::atomic::AtomicU64,
    allocated: std::sync::atomic::AtomicU64,
    choices: Mutex<variants::Choices>,
}

/// Optional features wgrec uses when the adapter has them.
fn wanted_features() -> wgpu::Features {
    wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
        | wgpu::Features::SHADER_F16
        | wgpu::Features::SUBGROUP
}

impl Gpu {
    /// Picks the best adapter (discrete > integrated > virtual > CPU), honouring `WGREC_BACKEND` and
    /// `WGREC_ADAPTER`, and opens it with the adapter's own limits.
    pub fn new() -> Result<Self> {
        Self::with_choice(&AdapterChoice::from_env()?)
    }

    /// As [`Gpu::new`], with the choice given explicitly.
    /// `WGREC_VARIANT` (`family=variant,…`) forces kernel variants ([`variants`]).
    pub fn with_choice(choice: &AdapterChoice) -> Result<Self> {
        let (_instance, adapters) = adapter::enumerate(choice);
        let adapter = adapters
            .into_iter()
            .find(|a| choice.accepts(&a.get_info()))
            .ok_or_else(|| adapter::no_adapter(choice))?;
        let gpu = Self::open(&adapter)?;
        gpu.force_from_env()?;
        Ok(gpu)
    }

    fn force_from_env(&self) -> Result<()> {
        let Ok(value) = std::env::var("WGREC_VARIANT") else {
            return Ok(());
        };
        let bad = |reason: String| Error::BadEnv {
            name: "WGREC_VARIANT",
            value: value.clone(),
            reason,
        };
        for (family, variant) in variants::parse_forced(&value).map_err(bad)? {
            self.force_variant(family, Some(variant.name))
                .map_err(|e| bad(e.to_string()))?;
        }
        Ok(())
    }

    /// Opens a device on `adapter`, requesting its own limits rather than WebGPU's defaults.
    pub fn open(adapter: &wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgrec"),
            required_features: adapter.features() & wanted_features(),
            required_limits: adapter.limits(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            Error::RequestDevice {
                adapter: info.name.clone(),
                message: e.to_string(),
            }
        })?;
        Ok(Self::wrap(device, queue, info))
    }

    /// Wraps a device and queue that a host program already owns. wgrec uses the device's limits as
    /// they were negotiated; kernels that need more say so in their errors.
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        let info = device.adapter_info();
        Ok(Self::wrap(device, queue, info))
    }

    fn wrap(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        let limits = device.limits();
        Gpu {
            device,
            queue,
            info,
            limits,
            pipelines: pipeline::PipelineCache::default(),
            uncaptured,
            dispatches: std::sync::atomic::AtomicU64::new(0),
            submits: std::sync::atomic::AtomicU64::new(0),
            allocated: std::sync::atomic::AtomicU64::new(0),
            choices: Mutex::new(variants::Choices::default()),
        }
    }

    /// The adapter this device runs on.
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The device's negotiated limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// One line naming the adapter, backend and device type.
    pub fn describe(&self) -> String {
        adapter::describe(&self.info)
    }

    /// Whether GPU timestamps can be written around compute passes.
    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Whether kernels can use subgroup operations (the device has `wgpu::Features::SUBGROUP`).
    pub fn has_subgroups(&self) -> bool {
        self.device.features().contains(wgpu::Features::SUBGROUP)
    }

    /// The variant a launcher of `family` at shape class `class` compiles: forced, else tuned, else
    /// the default ([`variants`] has the rules); the question is recorded
    /// ([`Gpu::asked_variants`]).
    pub fn variant(&self, family: Family, class: &str) -> &'static Variant {
        let subgroups = self.has_subgroups();
        match self.choices.lock() {
            Ok(mut c) => c.pick(family, class, subgroups),
            Err(_) => &family.variants()[0],
        }
    }

    /// What [`Gpu::variant`] answers for `family` at `class` now, and why, without recording the
    /// question.
    pub fn variant_in_force(&self, family: Family, class: &str) -> (&'static Variant, Source) {
        let subgroups = self.has_subgroups();
        match self.choices.lock() {
            Ok(c) => c.resolve(family, class, subgroups),
            Err(_) => (&family.variants()[0], Source::Default),
        }
    }

    /// Forces `family` to the variant named `name` on this device (`None` lifts the force).
    /// Launchers built afterwards use it. `Err` for an unknown name or a variant the device cannot
    /// run.
    pub fn force_variant(&self, family: Family, name: Option<&str>) -> Result<()> {
        let variant = name.map(|n| family.variant(n)).transpose()?;
        if variant.is_some_and(|v| v.subgroups && !self.has_subgroups()) {
            return Err(Error::Variant(format!(
                "{} variant {:?} needs subgroup operations, which {} does not have",
                family.name(),
                name.unwrap_or_default(),
                self.info.name
            )));
        }
        if let Ok(mut c) = self.choices.lock() {
            c.force(family, variant);
        }
        Ok(())
    }

    /// Replaces the tuned choices, keyed by (family, shape class) (from the tune cache).
    pub fn set_tuned(&self, tuned: std::collections::BTreeMap<(Family, String), &'static Variant>) {
        if let Ok(mut c) = self.choices.lock() {
            c.set_tuned(tuned);
        }
    }

    /// The tuned choices in force.
    pub fn tuned_variants(&self) -> std::collections::BTreeMap<(Family, String), &'static Variant> {
        self.choices.lock().map(|c| c.tuned()).unwrap_or_default()
    }

    /// Every (family, shape class) launchers on this device have asked about since it opened (or
    /// since [`Gpu::clear_asked`]), sorted.
    pub fn asked_variants(&self) -> Vec<(Family, String)> {
        self.choices.lock().map(|c| c.asked()).unwrap_or_default()
    }

    /// Forgets the questions recorded so far (the tuner clears them before compiling a model to
    /// learn which choices that model makes).
    pub fn clear_asked(&self) {
        if let Ok(mut c) = self.choices.lock() {
            c.clear_asked();
        }
    }

    /// The variant forced for `family`, if any.
    pub fn forced_variant(&self, family: Family) -> Option<&'static Variant> {
        self.choices.lock().ok().and_then(|c| c.forced(family))
    }

    /// Runs `f` inside a validation and an out-of-memory error scope; any error wgpu reports while it
    /// runs comes back as `Err` naming `context`.
    pub fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
        ];
        match errors.into_iter().flatten().next() {
            Some(e) => Err(Error::Gpu {
                context: context.to_string(),
                message: e.to_string(),
            }),
            None => Ok(value),
        }
    }

    /// Waits for all submitted work and returns the first error wgpu reported outside a scope.
    pub fn sync(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu {
                context: "waiting for the device".into(),
                message: e.to_string(),
            })?;
        self.take_uncaptured()
    }

    /// Submits the queued buffer writes (`queue.write_buffer`) and waits for them: each write
    /// holds a staging copy of its bytes until the next submission, so a caller writing gigabytes
    /// block by block (a 10^8-row table's initialisation or restore) flushes between blocks to
    /// keep one block staged, not the whole table.
    pub fn flush_writes(&self) -> Result<()> {
        self.queue.submit([]);
        self.sync()
    }

    fn take_uncaptured(&self) -> Result<()> {
        let taken = self.uncaptured.lock().ok().and_then(|mut slot| slot.take());
        match taken {
            Some(message) => Err(Error::Gpu {
                context: "executing submitted work".into(),
                message,
            }),
            None => Ok(()),
        }
    }

    /// Creates a buffer of `size` bytes (at least 16, so empty inputs still bind).
    pub fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let size = size.max(16).next_multiple_of(4);
        self.allocated
            .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    /// A storage buffer initialised from `data` (padded to at least 16 bytes).
    pub fn storage_from<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = self.buffer(label, bytes.len() as u64, storage_usage());
        if !bytes.is_empty() {
            self.queue.write_buffer(&buffer, 0, bytes);
        }
        buffer
    }

    /// A uniform buffer holding `value`.
    pub fn uniform_from<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        let buffer = self.buffer(
            label,
            std::mem::size_of::<T>() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        self.queue
            .write_buffer(&buffer, 0, bytemuck::bytes_of(value));
        buffer
    }

    /// The pipeline for `kernel` with `constants` as override values, compiled on first use.
    pub fn pipeline(&self, kernel: &Kernel, constants: &[(&str, f64)]) -> Result<Arc<Pipeline>> {
        self.pipelines.get(self, kernel, constants)
    }

    /// Number of dispatches recorded through [`Pipeline::dispatch`] and [`Pipeline::dispatch_3d`]
    /// since the device was opened: tests read it before and after recording a step to count them.
    pub fn dispatches(&self) -> u64 {
        self.dispatches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Finishes `encoder` and submits it, counting the submit (see [`Gpu::submits`]).
    pub fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.submits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.queue.submit([encoder.finish()]);
    }

    /// Number of command buffers submitted through [`Gpu::submit`] (the training step's one
    /// submit is counted here; read-backs and uploads are not).
    pub fn submits(&self) -> u64 {
        self.submits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes of every buffer created through [`Gpu::buffer`] (and so [`Gpu::storage_from`],
    /// [`Gpu::uniform_from`]) since the device was opened, as sized there (padded). Never decremented:
    /// wgpu frees a dropped buffer without telling the `Gpu`, so this is the peak of wgrec's own
    /// allocations when nothing was dropped, and an upper bound on it otherwise. Read it before and
    /// after building something to measure what it allocated.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_dispatch(&self) {
        self.dispatches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Number of pipelines compiled so far (a training step must not add any).
    pub fn pipelines_compiled(&self) -> usize {
        self.pipelines.len()
    }
}

/// Usage of a storage buffer that can be written from the host and read back.
pub fn storage_usage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC
}

/// Splits `workgroups` into an (x, y) grid under the per-dimension limit; shaders rebuild the linear
/// workgroup index as `id.x + id.y * num_workgroups.x`.
pub fn grid(workgroups: u32, max_per_dim: u32) -> (u32, u32) {
    if workgroups <= max_per_dim {
        (workgroups, 1)
    } else {
        let y = workgroups.div_ceil(max_per_dim);
        (workgroups.div_ceil(y), y)
    }
}
