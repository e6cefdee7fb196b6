//! The kernels of the suite, one function per family: each builds its inputs (random values from
//! the run's one stream, so a filtered run draws what the full run draws up to that point), times
//! its kernels with the [`Runner`] and returns their figures. [`super::run`] calls them in a fixed
//! order and sets each figure's share of its ceiling.

use super::{gather_setup, tim_setup, BenchResult, Runner, Unit};
use crate::error::Result;
use crate::gpu::storage_usage;
use crate::kernels::copy::CopyVec4;
use crate::kernels::dense::expert::{Expert, ExpertKind, ExpertSpec};
use crate::kernels::dense::fma::FmaCeiling;
use crate::kernels::dense::gemm::{Gemm, GemmSpec};
use crate::kernels::dense::pairwise::PairwiseKind;
use crate::kernels::embedding::{
    Bags, Element, EmbeddingStorage, FeatureSet, SparseStep, SparseUpdatePlan, TbeForward,
    TbeUpdate,
};
use crate::kernels::loss::{Loss, LossBuffers, LossKind};
use crate::rng::Rng;

/// Uniform values in [-1, 1) from the run's stream, `n` at a time.
pub(super) type Random<'a> = &'a mut dyn FnMut(u64) -> Vec<f32>;

/// A figure of `amount` bytes or FLOPs in `seconds` (its share of the ceiling set later).
pub(super) fn figure(
    kernel: &str,
    shape: String,
    seconds: f64,
    amount: f64,
    unit: Unit,
) -> BenchResult {
    BenchResult {
        kernel: kernel.into(),
        shape,
        median_ms: seconds * 1e3,
        rate: amount / seconds / 1e9,
        unit,
        of_ceiling: f64::NAN,
    }
}

/// The vec4 copy (bandwidth) and independent FMA chains (arithmetic) ceilings.
pub(super) fn ceilings(runner: &Runner, q: bool) -> Result<Vec<BenchResult>> {
    let gpu = runner.gpu;
    let copy_bytes: u64 = if q { 4 << 20 } else { 64 << 20 };
    let copy = CopyVec4::new(
        gpu,
        copy_bytes.min(gpu.limits().max_storage_buffer_binding_size),
    )?;
    let s = runner.time(&|p| copy.record(gpu, p))?;
    let copy = figure(
        "copy_ceiling",
        format!("{} MiB", copy_bytes >> 20),
        s,
        copy.traffic_bytes() as f64,
        Unit::GbPerS,
    );
    let (invocations, iters) = if q { (4096, 1024) } else { (16384, 4096) };
    let fma = FmaCeiling::new(gpu, invocations, iters)?;
    let s = runner.time(&|p| fma.record(gpu, p))?;
    let fma = figure(
        "fma_ceiling",
        format!("{invocations} × {iters} vec4 FMA chains"),
        s,
        fma.flops() as f64,
        Unit::GflopPerS,
    );
    Ok(vec![copy, fma])
}

/// The batched GEMM on a CTR shape.
pub(super) fn gemm(runner: &Runner, q: bool, random: Random<'_>) -> Result<BenchResult> {
    let gpu = runner.gpu;
    let (m, n, k) = if q { (512, 128, 128) } else { (4096, 400, 400) };
    let spec = GemmSpec::new(1, m, n, k, false, true);
    let a = gpu.storage_from("bench a", &random(m as u64 * k as u64));
    let b = gpu.storage_from("bench b", &random(n as u64 * k as u64));
    let c = gpu.buffer("bench c", m as u64 * n as u64 * 4, storage_usage());
    let gemm = Gemm::new(gpu, &spec, &a, &b, None, None, &c)?;
    let s = runner.time(&|p| gemm.record(gpu, p))?;
    Ok(figure(
        "gemm",
        format!("{m} × {n} × {k}, Y = X·Wᵀ"),
        s,
        gemm.flops() as f64,
        Unit::GflopPerS,
    ))
}

/// The table-batched gather and its fused backward + row-wise Adagrad update, on f32 tables and
/// then on the same shape in f16 (`…_f16`; zeroed tables and the f32 run's gradient, so the run's
/// random stream is what it was before f16 existed). Effective bytes as FBGEMM counts them: rows
/// read (and written) as stored, 4 or 2 bytes a weight, plus the f32 outputs (gradients) once.
pub(super) fn embedding(runner: &Runner, q: bool, random: Random<'_>) -> Result<Vec<BenchResult>> {
    let (t, rows, d, batch, bag) = if q {
        (4u32, 10_000u32, 32u32, 512u32, 4u32)
    } else {
        (8, 100_000, 64, 2048, 8)
    };
    let shape = format!("{t} tables × {rows} × {d}, batch {batch}, bags of {bag}, Zipf 1.05");
    let sizes = (shape, [t, d, batch, bag]);
    let f32_setup = gather_setup(
        runner.gpu,
        t,
        rows,
        d,
        batch,
        (bag, Element::F32),
        Some(random),
    )?;
    let grad = random(f32_setup.1.out_len);
    let mut results = embedding_figures(runner, f32_setup, &grad, sizes.clone(), Element::F32)?;
    let f16_setup = gather_setup(runner.gpu, t, rows, d, batch, (bag, Element::F16), None)?;
    results.extend(embedding_figures(
        runner,
        f16_setup,
        &grad,
        sizes,
        Element::F16,
    )?);
    Ok(results)
}

/// The gather and update figures of one element type (`_f16` names for f16).
fn embedding_figures(
    runner: &Runner,
    (storage, fs, forward, bags): (EmbeddingStorage, FeatureSet, TbeForward, Bags),
    grad: &[f32],
    (shape, [t, d, batch, bag]): (String, [u32; 4]),
    element: Element,
) -> Result<Vec<BenchResult>> {
    let gpu = runner.gpu;
    let suffix = if element == Element::F16 { "_f16" } else { "" };
    let (row, out) = (d as u64 * element.bytes(), d as u64 * 4);
    let lookups = batch as u64 * t as u64 * bag as u64;
    let bt = batch as u64 * t as u64;
    let s = runner.time(&|p| forward.record(gpu, p))?;
    let gather = figure(
        &format!("embedding_gather{suffix}"),
        shape.clone(),
        s,
        (bt * bag as u64 * row + bt * out) as f64,
        Unit::GbPerS,
    );
    let grad = gpu.storage_from("bench grad", grad);
    let mut update = TbeUpdate::new(gpu, &storage, &forward, &grad, lookups)?;
    let plan = SparseUpdatePlan::build(&fs, &bags);
    let step = SparseStep {
        lr: 0.01,
        weight_decay: 0.0,
        step: 1,
    };
    update.upload(gpu, &forward, &plan, step)?;
    let s = runner.time(&|p| update.record(gpu, p))?;
    let update = figure(
        &format!("embedding_update_adagrad{suffix}"),
        shape,
        s,
        (bt * out + 2 * bt * bag as u64 * row) as f64,
        Unit::GbPerS,
    );
    Ok(vec![gather, update])
}

/// TIM forward and backward.
pub(super) fn tim(runner: &Runner, q: bool, random: Random<'_>) -> Result<Vec<BenchResult>> {
    let gpu = runner.gpu;
    let (batch, len, d) = if q {
        (32u32, 50u32, 32u32)
    } else {
        (256, 100, 64)
    };
    let (_storage, tim) = tim_setup(gpu, batch, len, d, Some(random))?;
    let lookups = batch as u64 * 3 * (len as u64 + 1);
    let shape = format!("batch {batch}, length {len}, D {d}, item + category + time rows");
    let s = runner.time(&|p| tim.record_forward(gpu, p))?;
    let forward = figure(
        "tim_forward",
        shape.clone(),
        s,
        ((lookups + batch as u64) * d as u64 * 4) as f64,
        Unit::GbPerS,
    );
    let s = runner.time(&|p| tim.record_backward(gpu, p))?;
    let backward = figure(
        "tim_backward",
        shape,
        s,
        ((2 * lookups + batch as u64) * d as u64 * 4) as f64,
        Unit::GbPerS,
    );
    Ok(vec![forward, backward])
}

/// The interaction experts (DCNv2, GwPFM, FM, IPNN) that `wanted` keeps, forward + backward.
pub(super) fn experts(
    runner: &Runner,
    q: bool,
    wanted: &dyn Fn(&str) -> bool,
    random: Random<'_>,
) -> Result<Vec<BenchResult>> {
    let gpu = runner.gpu;
    let (rows, fields, dim, tables) = if q { (128, 8, 8, 2) } else { (1024, 16, 10, 4) };
    let experts = [
        (
            "expert_dcn",
            ExpertKind::Dcn {
                layers: 2,
                rank: None,
            },
        ),
        (
            "expert_gwpfm",
            ExpertKind::Pairwise(PairwiseKind::GwPfm {
                blocks: 4,
                partition: (0..fields).map(|f| f % 4).collect(),
            }),
        ),
        ("expert_fm", ExpertKind::Pairwise(PairwiseKind::Fm)),
        ("expert_ipnn", ExpertKind::Pairwise(PairwiseKind::Ipnn)),
    ];
    let mut results = Vec::new();
    for (name, kind) in experts {
        if !wanted(name) {
            continue;
        }
        let spec = ExpertSpec {
            kind,
            tables,
            rows_cap: rows,
            fields,
            dim,
            relu: true,
        };
        let n = tables as u64 * rows as u64 * spec.in_cols() as u64;
        let x = gpu.storage_from("bench expert x", &random(n));
        let dx = gpu.buffer("bench expert dx", n * 4, storage_usage());
        let expert = Expert::new(gpu, &spec, &x, &dx)?;
        expert.init(gpu, &mut Rng::new(8));
        let out = tables as u64 * rows as u64 * spec.out_cols() as u64;
        gpu.queue
            .write_buffer(expert.grad_output(), 0, bytemuck::cast_slice(&random(out)));
        let s = runner.time(&|p| {
            expert.record_forward(gpu, p);
            expert.record_backward(gpu, p);
        })?;
        results.push(figure(
            name,
            format!("{tables} tables, batch {rows}, {fields} fields × {dim}, forward + backward"),
            s,
            expert_flops(&spec),
            Unit::GflopPerS,
        ));
    }
    Ok(results)
}

/// Useful FLOPs of an expert's forward + backward: the cross network's GEMMs (forward + backward
/// = 3 × forward); the pair products of GwPFM and IPNN (2 FLOPs per pair and element forward, 4
/// backward); FM's sum-square form (4 per field and element forward, 8 backward).
fn expert_flops(spec: &ExpertSpec) -> f64 {
    let samples = (spec.tables * spec.rows_cap) as f64;
    match &spec.kind {
        ExpertKind::Dcn { layers, .. } => {
            let d = spec.in_cols() as f64;
            3.0 * 2.0 * (*layers as f64) * samples * d * d
        }
        ExpertKind::Pairwise(PairwiseKind::Fm) => 12.0 * (spec.fields * spec.dim) as f64 * samples,
        _ => {
            let pairs = (spec.fields * (spec.fields - 1) / 2) as f64;
            6.0 * pairs * spec.dim as f64 * samples
        }
    }
}

/// The three losses that `wanted` keeps (BCE, combined-pair, combined-list), loss + d(logits).
pub(super) fn losses(
    runner: &Runner,
    q: bool,
    wanted: &dyn Fn(&str) -> bool,
    random: Random<'_>,
) -> Result<Vec<BenchResult>> {
    let gpu = runner.gpu;
    let n = if q { 1024u32 } else { 4096 };
    let mut results = Vec::new();
    for (name, kind) in [
        ("loss_bce", LossKind::Bce),
        ("loss_combined_pair", LossKind::CombinedPair { alpha: 0.6 }),
        ("loss_combined_list", LossKind::CombinedList { alpha: 0.9 }),
    ] {
        if !wanted(name) {
            continue;
        }
        let logits: Vec<f32> = random(n as u64).iter().map(|z| 3.0 * z).collect();
        let mut rng = Rng::new(9);
        let labels: Vec<f32> = (0..n)
            .map(|_| f32::from(rng.uniform(0.0, 1.0) < 0.25))
            .collect();
        let z = gpu.storage_from("bench loss z", &logits);
        let y = gpu.storage_from("bench loss y", &labels);
        let loss_out = gpu.buffer("bench loss", 4, storage_usage());
        let dz = gpu.buffer("bench loss dz", n as u64 * 4, storage_usage());
        let buffers = LossBuffers {
            logits: &z,
            labels: &y,
            weights: None,
            loss: &loss_out,
            grad_logits: &dz,
        };
        let loss = Loss::new(gpu, &[kind], n, &buffers)?;
        let s = runner.time(&|p| loss.record(gpu, p))?;
        // Bytes: logits and labels read, d(logits) written; the pair loss's O(n²) walk re-reads
        // the batch from cache and is not counted.
        results.push(figure(
            name,
            format!("{n} rows, 1 task, loss + d(logits)"),
            s,
            (3 * n as u64 * 4) as f64,
            Unit::GbPerS,
        ));
    }
    Ok(results)
}
