//! The GraphSAGE model on the GPU: input embeddings in the table-batched embedding storage (the
//! gather is a [`TbeForward`] with two features over one table — the row's own node, pooled by sum
//! over one lookup, and its S₁ sample, pooled by mean — so its output is `a¹ = [x ‖ mean x]`; the
//! fused [`TbeUpdate`] applies dL/da¹ to the touched rows with its sparse optimizer), both layers'
//! products through the [`Gemm`], the glue through `graphsage.wgsl` ([`SageKernels`]), and W¹, W²
//! (one flat buffer `[W¹ | W²]`) through the [`DenseOptimizer`].
//!
//! One step (one submission): gather a¹; h¹ = ReLU(a¹ W¹ᵀ); a²; y = a² W²ᵀ; z; loss and dL/dz;
//! dL/dy; dW² = dyᵀ a²; da² = dy W²; dpre¹; dW¹ = dpre¹ᵀ a¹; da¹ = dpre¹ W¹; sparse update of x;
//! dense step of W. Per-edge losses land in an epoch-long buffer, read once per epoch.

use super::kernels::{SageBuffers, SageKernels};
use super::reference::Params;
use super::sample::Computation;
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::dense::gemm::{Epilogue, Gemm, GemmSpec};
use crate::kernels::dense::optim::{DenseOptimizer, DenseOptimizerKind};
use crate::kernels::embedding::{
    Bags, EmbeddingStorage, FeatureSet, Pooling, SparseOptimizer, SparseStep, SparseUpdatePlan,
    TableSpec, TbeForward, TbeUpdate,
};

/// Largest batch the buffers are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Targets per batch.
    pub targets: u32,
    /// Layer-1 rows (distinct nodes) per batch.
    pub rows: u32,
    /// Layer-1 members per batch (targets × (1 + S₂) at most).
    pub members: u32,
    /// Input-embedding lookups per batch (own + sampled).
    pub lookups: u32,
    /// Per-edge losses kept (an epoch's edges).
    pub losses: u32,
}

/// The optimisers of the input embeddings and of the weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimizers {
    /// Of the input-embedding rows.
    pub sparse: SparseOptimizer,
    /// Of W¹ and W².
    pub dense: DenseOptimizerKind,
    /// Learning rate of both.
    pub lr: f32,
}

/// Activations and gradients, each at capacity.
struct Activations {
    structure: wgpu::Buffer,
    h1: wgpu::Buffer,
    a2: wgpu::Buffer,
    y: wgpu::Buffer,
    z: wgpu::Buffer,
    dz: wgpu::Buffer,
    dy: wgpu::Buffer,
    da2: wgpu::Buffer,
    dpre1: wgpu::Buffer,
    da1: wgpu::Buffer,
    losses: wgpu::Buffer,
}

impl Activations {
    fn new(gpu: &Gpu, d: u64, cap: Capacity) -> Self {
        let f = |label: &str, floats: u64| gpu.buffer(label, floats.max(4) * 4, storage_usage());
        let (t, r) = (cap.targets as u64, cap.rows as u64);
        Activations {
            structure: f("graphsage structure", t + 2 * cap.members as u64 + r + 2),
            h1: f("graphsage h1", r * d),
            a2: f("graphsage a2", t * 2 * d),
            y: f("graphsage y", t * d),
            z: f("graphsage z", t * d),
            dz: f("graphsage dz", t * d),
            dy: f("graphsage dy", t * d),
            da2: f("graphsage da2", t * 2 * d),
            dpre1: f("graphsage dpre1", r * d),
            da1: f("graphsage da1", r * 2 * d),
            losses: f("graphsage losses", cap.losses as u64),
        }
    }
}

/// The six products of a step.
struct Products {
    layer1: Gemm,
    layer2: Gemm,
    dw2: Gemm,
    da2: Gemm,
    dw1: Gemm,
    da1: Gemm,
}

/// A prepared GraphSAGE model on the GPU.
pub struct SageGpu {
    dim: u32,
    cap: Capacity,
    storage: EmbeddingStorage,
    forward: TbeForward,
    update: TbeUpdate,
    weights: wgpu::Buffer,
    weight_grads: wgpu::Buffer,
    optimizer: DenseOptimizer,
    act: Activations,
    products: Products,
    kernels: SageKernels,
    lr: f32,
    step: u64,
    rows: u32,
    targets: u32,
}

/// The products over fixed buffers at capacity (see the module docs for the layouts).
fn products(
    gpu: &Gpu,
    d: u32,
    cap: Capacity,
    a1: &wgpu::Buffer,
    w: &wgpu::Buffer,
    wg: &wgpu::Buffer,
    act: &Activations,
) -> Result<Products> {
    let (t, r) = (cap.targets, cap.rows);
    let w2_at = 2 * d as u64 * d as u64;
    let mut layer1 = GemmSpec::new(1, r, d, 2 * d, false, true);
    layer1.epilogue = Epilogue::Relu;
    let mut layer2 = GemmSpec::new(1, t, d, 2 * d, false, true);
    layer2.offset_b = w2_at;
    let mut dw2 = GemmSpec::new(1, d, 2 * d, t, true, false);
    dw2.offset_c = w2_at;
    let mut da2 = GemmSpec::new(1, t, 2 * d, d, false, false);
    da2.offset_b = w2_at;
    let dw1 = GemmSpec::new(1, d, 2 * d, r, true, false);
    let da1 = GemmSpec::new(1, r, 2 * d, d, false, false);
    Ok(Products {
        layer1: Gemm::new(gpu, &layer1, a1, w, None, None, &act.h1)?,
        layer2: Gemm::new(gpu, &layer2, &act.a2, w, None, None, &act.y)?,
        dw2: Gemm::new(gpu, &dw2, &act.dy, &act.a2, None, None, wg)?,
        da2: Gemm::new(gpu, &da2, &act.dy, w, None, None, &act.da2)?,
        dw1: Gemm::new(gpu, &dw1, &act.dpre1, a1, None, None, wg)?,
        da1: Gemm::new(gpu, &da1, &act.dpre1, w, None, None, &act.da1)?,
    })
}

/// The two features' bags of a computation: each row's own node, then its S₁ sample.
pub fn bags_of(c: &Computation) -> Bags {
    let rows = c.rows() as u32;
    let mut offsets: Vec<u32> = (0..=rows).collect();
    offsets.extend(c.l1_offsets[1..].iter().map(|o| rows + o));
    let mut indices = c.l1_nodes.clone();
    indices.extend_from_slice(&c.l1_neighbours);
    Bags {
        batch_size: rows,
        offsets,
        indices,
        weights: None,
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

impl SageGpu {
    /// Uploads `params` and builds every buffer, pipeline and bind group for batches up to `cap`.
    pub fn new(
        gpu: &Gpu,
        params: &Params,
        cap: Capacity,
        tau: f32,
        opt: Optimizers,
    ) -> Result<Self> {
        let d = params.dim as u32;
        let nodes = params.x.len() / params.dim.max(1);
        if d == 0 || !d.is_multiple_of(4) {
            return Err(Error::kernel(
                "graphsage",
                format!("dim {d}: need a multiple of 4 (≥ 4)"),
            ));
        }
        let table = TableSpec {
            rows: nodes as u32,
            width: d,
        };
        let storage = EmbeddingStorage::new(gpu, &[table], opt.sparse, None)?;
        storage.write_weights(gpu, 0, &to_f32(&params.x))?;
        let features = [(0, Pooling::Sum, vec![]), (0, Pooling::Mean, vec![])];
        let features = FeatureSet::concatenated(&storage.layout, &features, cap.rows, 0)?;
        let forward = TbeForward::new(gpu, &storage, features, cap.lookups as u64)?;
        let act = Activations::new(gpu, d as u64, cap);
        let update = TbeUpdate::new(gpu, &storage, &forward, &act.da1, cap.lookups as u64)?;
        let mut w = to_f32(&params.w1);
        w.extend(to_f32(&params.w2));
        let weights = gpu.storage_from("graphsage weights", &w);
        let len = w.len() as u64;
        let weight_grads = gpu.buffer("graphsage weight grads", len * 4, storage_usage());
        let state_len = DenseOptimizer::state_len(opt.dense, len);
        let state = gpu.buffer("graphsage weight state", state_len * 4, storage_usage());
        let optimizer =
            DenseOptimizer::new(gpu, opt.dense, len, &weights, &weight_grads, &state, None)?;
        let products = products(gpu, d, cap, forward.output(), &weights, &weight_grads, &act)?;
        let kernels = SageKernels::new(gpu, d, tau, &sage_buffers(&act))?;
        Ok(SageGpu {
            dim: d,
            cap,
            storage,
            forward,
            update,
            weights,
            weight_grads,
            optimizer,
            act,
            products,
            kernels,
            lr: opt.lr,
            step: 0,
            rows: 0,
            targets: 0,
        })
    }
}

fn sage_buffers(act: &Activations) -> SageBuffers<'_> {
    SageBuffers {
        structure: &act.structure,
        h1: &act.h1,
        a2: &act.a2,
        y: &act.y,
        z: &act.z,
        dz: &act.dz,
        dy: &act.dy,
        da2: &act.da2,
        dpre1: &act.dpre1,
        losses: &act.losses,
    }
}

impl SageGpu {
    /// Writes batch `c` (its bags, structure and sizes); its losses will go to `loss_at..`.
    pub fn upload(&mut self, gpu: &Gpu, c: &Computation, loss_at: u32) -> Result<Bags> {
        let (t, r) = (c.targets.len() as u32, c.rows() as u32);
        let group = 2 + c.negatives;
        let cap = self.cap;
        if t == 0
            || t > cap.targets
            || r > cap.rows
            || c.members.len() as u64 > cap.members as u64
            || loss_at as u64 + c.edges as u64 > cap.losses as u64
            || c.edges * group > t
        {
            return Err(Error::kernel(
                "graphsage",
                format!(
                    "batch of {t} targets, {r} rows, {} members, {} edges at loss {loss_at}: \
                     capacity {cap:?}",
                    c.members.len(),
                    c.edges
                ),
            ));
        }
        let bags = bags_of(c);
        self.forward.upload(gpu, &self.storage, &bags)?;
        let structure = SageKernels::structure(c);
        gpu.queue
            .write_buffer(&self.act.structure, 0, bytemuck::cast_slice(&structure));
        self.kernels.set_batch(gpu, c, loss_at);
        let (d, p) = (self.dim, &self.products);
        p.layer1.set_dims(gpu, r, d, 2 * d)?;
        p.layer2.set_dims(gpu, t, d, 2 * d)?;
        p.dw2.set_dims(gpu, d, 2 * d, t)?;
        p.da2.set_dims(gpu, t, 2 * d, d)?;
        p.dw1.set_dims(gpu, d, 2 * d, r)?;
        p.da1.set_dims(gpu, r, 2 * d, d)?;
        (self.rows, self.targets) = (r, t);
        Ok(bags)
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.forward.record(gpu, pass);
        self.products.layer1.record(gpu, pass);
        self.kernels.record_gather(gpu, pass);
        self.products.layer2.record(gpu, pass);
        self.kernels.record_normalize(gpu, pass);
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        let p = &self.products;
        self.kernels.record_loss_backward(gpu, pass);
        p.dw2.record(gpu, pass);
        p.da2.record(gpu, pass);
        self.kernels.record_scatter(gpu, pass);
        p.dw1.record(gpu, pass);
        p.da1.record(gpu, pass);
    }

    fn submit(&self, gpu: &Gpu, record: impl FnOnce(&mut wgpu::ComputePass<'_>)) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            record(&mut pass);
        }
        gpu.submit(encoder);
    }

    /// One training step on loss-edge batch `c`: forward, backward, the sparse update of the input
    /// embeddings and the dense step of the weights, in one submission.
    pub fn train_step(&mut self, gpu: &Gpu, c: &Computation, loss_at: u32) -> Result<()> {
        let bags = self.upload(gpu, c, loss_at)?;
        let plan = SparseUpdatePlan::build(&self.forward.features, &bags);
        self.step += 1;
        let step = SparseStep {
            lr: self.lr,
            weight_decay: 0.0,
            step: self.step,
        };
        self.update.upload(gpu, &self.forward, &plan, step)?;
        self.optimizer.set_step(gpu, self.lr, self.step)?;
        self.submit(gpu, |pass| {
            self.record_forward(gpu, pass);
            self.record_backward(gpu, pass);
            self.update.record(gpu, pass);
            self.optimizer.record(gpu, pass);
        });
        Ok(())
    }

    /// Forward and backward of `c` without any update (tests read the gradients back).
    pub fn gradients(&mut self, gpu: &Gpu, c: &Computation) -> Result<()> {
        self.upload(gpu, c, 0)?;
        self.submit(gpu, |pass| {
            self.record_forward(gpu, pass);
            self.record_backward(gpu, pass);
        });
        gpu.sync()
    }

    /// z `[targets, D]` of computation `c` (its loss edges are ignored).
    pub fn embed(&mut self, gpu: &Gpu, c: &Computation) -> Result<Vec<f32>> {
        let plain = Computation {
            edges: 0,
            ..c.clone()
        };
        self.upload(gpu, &plain, 0)?;
        self.submit(gpu, |pass| self.record_forward(gpu, pass));
        gpu.read(&self.act.z, 0, self.targets as u64 * self.dim as u64)
    }

    /// The first `n` per-edge losses.
    pub fn losses(&self, gpu: &Gpu, n: u32) -> Result<Vec<f32>> {
        gpu.read(&self.act.losses, 0, n as u64)
    }

    /// dL/d[W¹ | W²] of the last [`gradients`](Self::gradients).
    pub fn weight_gradients(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.read_all(&self.weight_grads)
    }

    /// dL/da¹ `[rows, 2D]` of the last [`gradients`](Self::gradients).
    pub fn input_gradients(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.read(&self.act.da1, 0, self.rows as u64 * 2 * self.dim as u64)
    }

    /// `[W¹ | W²]`.
    pub fn weights(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.read_all(&self.weights)
    }

    /// The input embeddings `[nodes, D]`.
    pub fn inputs(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        self.storage.read_weights(gpu, 0)
    }

    /// The buffers the tests poison before a run: every activation and gradient (the gathered a¹
    /// and the weight gradients included), and the losses.
    pub fn outputs(&self) -> Vec<&wgpu::Buffer> {
        let a = &self.act;
        vec![
            &a.h1,
            &a.a2,
            &a.y,
            &a.z,
            &a.dz,
            &a.dy,
            &a.da2,
            &a.dpre1,
            &a.da1,
            &a.losses,
            &self.weight_grads,
            self.forward.output(),
        ]
    }
}
