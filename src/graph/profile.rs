//! The per-layer profiler (issue 20): a window of training steps in which every section of the
//! step — each layer's forward, backward and update, the loss, the gradient gather, the dense
//! optimizer, the value scatter — is timed on its own, and the median over the window reported.
//!
//! A profiled step is recorded by the same walk as every step ([`Graph::record_step`]) into a
//! timing [`Sink`]: the same dispatches in the same order, so the same parameters bit for bit
//! (`kernels_tests` … `profile_keeps_bits` checks it). Two timings:
//! - **GPU timestamps** where the adapter has `TIMESTAMP_QUERY`: each section its own compute pass
//!   with timestamps at its boundaries (buffer copies between an empty pass's beginning and
//!   another's end), one query set, one resolve, one read-back per step. Only pass-boundary writes,
//!   never the `INSIDE_PASSES` feature many adapters lack.
//! - **Host submits** otherwise: each section its own submit, waited for and timed on the host.
//!
//! Splitting the step into passes costs the barriers between them, so a profiled step is slower
//! than a real one; the window therefore alternates profiled steps with plain ones, each plain
//! step waited for and timed whole on the host, and reports their median wall time beside the sum
//! of the sections. Between the sections, inside the step, nothing else runs: the sum is the GPU
//! time of the step's work, the difference to the wall time the host's recording, uploads and
//! the submit.
//!
//! [`Graph::record_step`]: super::Graph

use std::time::Instant;

use super::layer::{Cost, Layer, Phase};
use super::Graph;
use crate::error::Result;
use crate::gpu::{Gpu, PassTimer};

mod sinks;

use sinks::{Count, Stamped, Submits};
pub(super) use sinks::{OneSubmit, Section, Sink};

/// How the sections were timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingMethod {
    /// GPU timestamps at the boundaries of each section's own compute pass.
    GpuTimestamps,
    /// A submit per section, waited for and timed on the host (no `TIMESTAMP_QUERY`).
    HostSubmits,
}

impl TimingMethod {
    /// In words, for the table.
    pub fn describe(self) -> &'static str {
        match self {
            TimingMethod::GpuTimestamps => "GPU timestamps at each section's own compute pass",
            TimingMethod::HostSubmits => "a submit + wait per section, timed on the host",
        }
    }
}

/// Which steps to profile: `steps` profiled steps from step `first`, alternating with as many
/// plain steps timed whole (steps `first ..= first + 2·steps − 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileRequest {
    /// The first profiled step (1-based; the steps before it warm up).
    pub first: u64,
    /// Profiled steps (as many plain steps alternate with them).
    pub steps: u32,
    /// Time each section by a submit on the host even where the device has timestamps (the
    /// fallback's own test; a comparison of the two).
    pub host_timing: bool,
}

/// What a step in the window does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Profiled,
    Plain,
}

/// One section's median over the profiled steps.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionTime {
    /// The layer (or "loss", "dense optimizer", …).
    pub layer: String,
    /// "forward", "backward", "update", "loss" or "copy".
    pub phase: String,
    /// Median milliseconds.
    pub ms: f64,
    /// The section's ideal work at the profiled batch.
    pub cost: Cost,
    /// Dispatches it records (0 for the copies).
    pub dispatches: u64,
}

/// A finished profile window.
#[derive(Debug, Clone, PartialEq)]
pub struct StepProfile {
    /// How the sections were timed.
    pub method: TimingMethod,
    /// Profiled steps (the medians' sample count).
    pub steps: usize,
    /// Samples of the last profiled batch.
    pub rows: u32,
    /// Every section in step order.
    pub sections: Vec<SectionTime>,
    /// Median wall milliseconds of the plain steps of the window (`None` when none ran).
    pub step_wall_ms: Option<f64>,
}

/// The profile window's state, held by the graph between [`Graph::start_profile`] and
/// [`Graph::take_profile`].
pub(super) struct Profiler {
    request: ProfileRequest,
    timer: Option<PassTimer>,
    sections: Vec<Section>,
    /// Nanoseconds per section, one vector per profiled step.
    samples: Vec<Vec<f64>>,
    walls_ms: Vec<f64>,
    rows: u32,
}

impl Profiler {
    /// The role of `step` in the window, or `None` outside it.
    pub(super) fn role(&self, step: u64) -> Option<Role> {
        let first = self.request.first.max(1);
        let k = step.checked_sub(first)?;
        (k < 2 * self.request.steps as u64).then_some(if k % 2 == 0 {
            Role::Profiled
        } else {
            Role::Plain
        })
    }

    /// Records, submits, waits for and times the step whose inputs were uploaded from `start`.
    pub(super) fn step(
        &mut self,
        gpu: &Gpu,
        graph: &Graph,
        role: Role,
        start: Instant,
    ) -> Result<()> {
        match role {
            Role::Plain => {
                let mut sink = OneSubmit::new(gpu);
                graph.record_step(gpu, &mut sink);
                sink.submit(gpu);
                gpu.sync()?;
                self.walls_ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
            Role::Profiled => {
                let ns = self.profiled(gpu, graph)?;
                self.samples.push(ns);
                self.rows = graph.rows;
            }
        }
        Ok(())
    }

    fn profiled(&mut self, gpu: &Gpu, graph: &Graph) -> Result<Vec<f64>> {
        let mut count = Count(Vec::new());
        graph.record_step(gpu, &mut count);
        if count.0 != self.sections {
            let stamps = gpu.has_timestamps() && !self.request.host_timing;
            self.timer = stamps
                .then(|| PassTimer::with_passes(gpu, count.0.len() as u32))
                .transpose()?
                .flatten();
            self.sections = count.0;
        }
        if let Some(timer) = &self.timer {
            let mut sink = Stamped {
                timer,
                encoder: gpu.device.create_command_encoder(&Default::default()),
                next: 0,
            };
            graph.record_step(gpu, &mut sink);
            timer.resolve(&mut sink.encoder);
            gpu.submit(sink.encoder);
            return timer.all_elapsed_ns(gpu);
        }
        // Flush the uploads first, so that the first section does not time them.
        gpu.submit(gpu.device.create_command_encoder(&Default::default()));
        gpu.sync()?;
        let mut sink = Submits {
            gpu,
            ns: Vec::new(),
            failed: None,
        };
        graph.record_step(gpu, &mut sink);
        sink.failed.map_or(Ok(sink.ns), Err)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Graph {
    /// Opens a profile window (see the module docs): from step `request.first`, `request.steps`
    /// profiled steps alternate with as many plain ones, each waited for. Replaces an open window.
    pub fn start_profile(&mut self, request: ProfileRequest) {
        self.profiler = Some(Profiler {
            request,
            timer: None,
            sections: Vec::new(),
            samples: Vec::new(),
            walls_ms: Vec::new(),
            rows: self.rows,
        });
    }

    /// Closes the window and returns its medians; `None` when no window was open or no step of it
    /// ran (training ended first).
    pub fn take_profile(&mut self) -> Option<StepProfile> {
        let p = self.profiler.take()?;
        if p.samples.is_empty() {
            return None;
        }
        let sections = (p.sections.iter().enumerate())
            .map(|(i, &at)| {
                let ms = median(p.samples.iter().map(|s| s[i]).collect()) * 1e-6;
                let (layer, phase) = self.section_name(at);
                let cost = self.section_cost(at, p.rows);
                let dispatches = self.section_dispatches(at);
                SectionTime {
                    layer,
                    phase,
                    ms,
                    cost,
                    dispatches,
                }
            })
            .collect();
        Some(StepProfile {
            method: match p.timer {
                Some(_) => TimingMethod::GpuTimestamps,
                None => TimingMethod::HostSubmits,
            },
            steps: p.samples.len(),
            rows: p.rows,
            sections,
            step_wall_ms: (!p.walls_ms.is_empty()).then(|| median(p.walls_ms)),
        })
    }

    fn section_name(&self, at: Section) -> (String, String) {
        let (layer, phase) = match at {
            Section::Layer(i, phase) => (self.layer_name(i), phase.name()),
            Section::Heads => ("uncertainty heads".into(), "forward"),
            Section::Loss => (self.objective.name.clone(), "loss"),
            Section::GatherGrads => ("gradients → flat".into(), "copy"),
            Section::Optimizer => ("dense optimizer".into(), "update"),
            Section::ScatterValues => ("flat → values".into(), "copy"),
        };
        (layer, phase.into())
    }

    /// Layer `i`'s name, with " #i" when another layer has the same one.
    fn layer_name(&self, i: usize) -> String {
        let name = self.layers[i].name();
        let twins = self.layers.iter().filter(|l| l.name() == name).count();
        match twins {
            1 => name,
            _ => format!("{name} #{i}"),
        }
    }

    fn section_dispatches(&self, at: Section) -> u64 {
        match at {
            Section::Layer(i, phase) => {
                let d = self.layers[i].dispatches();
                match phase {
                    Phase::Forward => d.train_forward,
                    Phase::Backward => d.backward,
                    Phase::Update => d.update,
                }
            }
            Section::Heads => (self.heads.as_ref()).map_or(0, |h| h.dispatches().train_forward),
            Section::Loss => self.objective.loss.dispatches() as u64,
            Section::GatherGrads | Section::ScatterValues => 0,
            Section::Optimizer => 1 + 2 * self.optimizer.norm_buffer().is_some() as u64,
        }
    }

    fn section_cost(&self, at: Section, rows: u32) -> Cost {
        let owned: u64 = (self.params.layout.params.iter())
            .filter(|p| p.owned.is_some())
            .map(|p| p.len)
            .sum();
        let flat = self.params.layout.len();
        match at {
            Section::Layer(i, phase) => self.layers[i].cost(phase, rows),
            Section::Heads => {
                (self.heads.as_ref()).map_or(Cost::default(), |h| h.cost(Phase::Forward, rows))
            }
            Section::Loss => Cost::elementwise(rows as u64 * self.tasks() as u64, 3, 1),
            Section::GatherGrads | Section::ScatterValues => Cost::elementwise(owned, 1, 1),
            // Adam-like: value, gradient and two moments read, value and moments written.
            Section::Optimizer => Cost::elementwise(flat, 4, 3),
        }
    }
}
