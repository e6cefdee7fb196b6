//! The sinks the training step is recorded into ([`super::super::Graph`]'s `record_step`): the
//! real step's one open pass, the profiler's timestamped pass per section, the host-timed submit
//! per section, and a counter that records nothing.

use std::time::Instant;

use super::super::layer::Phase;
use crate::gpu::{Gpu, PassTimer};

/// A section of the recorded training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::graph) enum Section {
    /// Layer `i` (in forward order), one phase.
    Layer(usize, Phase),
    /// The uncertainty heads (forward, loss and weight gradients at once).
    Heads,
    /// The loss and the logits' gradient.
    Loss,
    /// The owned gradients copied into the flat gradient buffer.
    GatherGrads,
    /// The dense optimizer over the flat parameters.
    Optimizer,
    /// The flat values copied back into the owned tensors.
    ScatterValues,
}

/// Where [`Graph::record_step`](super::Graph) records the step's sections.
pub(in crate::graph) trait Sink {
    /// Records `body`, a section of dispatches, in a compute pass.
    fn pass(&mut self, at: Section, body: &mut dyn FnMut(&mut wgpu::ComputePass<'_>));
    /// Records `body`, a section of buffer copies, on the encoder outside any pass.
    fn copies(&mut self, at: Section, body: &mut dyn FnMut(&mut wgpu::CommandEncoder));
}

/// The real step: one encoder, one compute pass kept open across consecutive sections, one submit.
pub(in crate::graph) struct OneSubmit {
    // Declared first: a pass must end before its encoder is used or finished.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: wgpu::CommandEncoder,
}

impl OneSubmit {
    pub(in crate::graph) fn new(gpu: &Gpu) -> Self {
        OneSubmit {
            pass: None,
            encoder: gpu.device.create_command_encoder(&Default::default()),
        }
    }

    /// Ends the open pass and submits the encoder.
    pub(in crate::graph) fn submit(mut self, gpu: &Gpu) {
        self.pass = None;
        gpu.submit(self.encoder);
    }
}

impl Sink for OneSubmit {
    fn pass(&mut self, _: Section, body: &mut dyn FnMut(&mut wgpu::ComputePass<'_>)) {
        let encoder = &mut self.encoder;
        let pass = (self.pass).get_or_insert_with(|| {
            encoder
                .begin_compute_pass(&Default::default())
                .forget_lifetime()
        });
        body(pass);
    }

    fn copies(&mut self, _: Section, body: &mut dyn FnMut(&mut wgpu::CommandEncoder)) {
        self.pass = None;
        body(&mut self.encoder);
    }
}

/// Counts the sections of a step without recording anything (sizes the timer).
pub(super) struct Count(pub(super) Vec<Section>);

impl Sink for Count {
    fn pass(&mut self, at: Section, _: &mut dyn FnMut(&mut wgpu::ComputePass<'_>)) {
        self.0.push(at);
    }

    fn copies(&mut self, at: Section, _: &mut dyn FnMut(&mut wgpu::CommandEncoder)) {
        self.0.push(at);
    }
}

/// Each section its own pass with timestamps at its boundaries, all in one encoder.
pub(super) struct Stamped<'t> {
    pub(super) timer: &'t PassTimer,
    pub(super) encoder: wgpu::CommandEncoder,
    pub(super) next: u32,
}

impl Sink for Stamped<'_> {
    fn pass(&mut self, _: Section, body: &mut dyn FnMut(&mut wgpu::ComputePass<'_>)) {
        let mut pass = self
            .encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("profiled section"),
                timestamp_writes: Some(self.timer.writes_of(self.next, true, true)),
            });
        body(&mut pass);
        drop(pass);
        self.next += 1;
    }

    fn copies(&mut self, _: Section, body: &mut dyn FnMut(&mut wgpu::CommandEncoder)) {
        let mark = |encoder: &mut wgpu::CommandEncoder, begin: bool| {
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("profiled copies"),
                timestamp_writes: Some(self.timer.writes_of(self.next, begin, !begin)),
            });
        };
        mark(&mut self.encoder, true);
        body(&mut self.encoder);
        mark(&mut self.encoder, false);
        self.next += 1;
    }
}

/// Each section its own submit, waited for and timed on the host.
pub(super) struct Submits<'g> {
    pub(super) gpu: &'g Gpu,
    pub(super) ns: Vec<f64>,
    pub(super) failed: Option<crate::error::Error>,
}

impl Submits<'_> {
    fn timed(&mut self, record: &mut dyn FnMut(&mut wgpu::CommandEncoder)) {
        let start = Instant::now();
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        record(&mut encoder);
        self.gpu.submit(encoder);
        if let Err(e) = self.gpu.sync() {
            self.failed.get_or_insert(e);
        }
        self.ns.push(start.elapsed().as_nanos() as f64);
    }
}

impl Sink for Submits<'_> {
    fn pass(&mut self, _: Section, body: &mut dyn FnMut(&mut wgpu::ComputePass<'_>)) {
        self.timed(&mut |e| body(&mut e.begin_compute_pass(&Default::default())));
    }

    fn copies(&mut self, _: Section, body: &mut dyn FnMut(&mut wgpu::CommandEncoder)) {
        self.timed(body);
    }
}
