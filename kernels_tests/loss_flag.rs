//! The loss kernel's divergence flag (`loss.wgsl`): with a `[5 · tasks]` loss buffer, each run
//! counts itself per task and keeps, sticky, the count at the first non-finite loss; the loss and
//! dz it computes are bit for bit those of a `[tasks]` buffer, which gets no flag at all.

use wgrec::kernels::loss::{first_non_finite, Loss, LossBuffers, LossKind, LOSS_WITH_FLAG};
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::{download, gpu, upload};
use crate::dense_norm::run;

const ROWS: usize = 40;
const KINDS: [LossKind; 2] = [LossKind::Bce, LossKind::CombinedPair { alpha: 0.6 }];

/// One prepared loss over `z` (rewritable) with a loss buffer of `loss_len` floats.
struct Setup {
    z: wgpu::Buffer,
    loss: wgpu::Buffer,
    dz: wgpu::Buffer,
    op: Loss,
}

fn setup(gpu: &Gpu, z: &[f32], loss: &[f32]) -> Setup {
    let mut rng = Rng::new(17);
    let y: Vec<f32> = (0..z.len())
        .map(|_| (rng.unit() < 0.3) as u8 as f32)
        .collect();
    let (zb, yb) = (upload(gpu, "z", z), upload(gpu, "y", &y));
    let loss = upload(gpu, "loss", loss);
    let dz = upload(gpu, "dz", &vec![f32::NAN; z.len()]);
    let bufs = LossBuffers {
        logits: &zb,
        labels: &yb,
        weights: None,
        loss: &loss,
        grad_logits: &dz,
    };
    let op = Loss::new(gpu, &KINDS, ROWS as u32, &bufs).expect("loss");
    Setup {
        z: zb,
        loss,
        dz,
        op,
    }
}

fn logits() -> Vec<f32> {
    let mut rng = Rng::new(5);
    (0..ROWS * KINDS.len())
        .map(|_| rng.uniform(-4.0, 4.0))
        .collect()
}

/// A `[5 · tasks]` loss buffer: the loss poisoned, the flag part zero.
fn flagged() -> Vec<f32> {
    let mut v = vec![0.0; LOSS_WITH_FLAG * KINDS.len()];
    v[..KINDS.len()].fill(f32::NAN);
    v
}

fn step(gpu: &Gpu, s: &Setup) -> Vec<f32> {
    run(gpu, |pass| s.op.record(gpu, pass));
    download(gpu, &s.loss, LOSS_WITH_FLAG * KINDS.len())
}

#[test]
fn the_flag_keeps_the_first_non_finite_step_of_each_task_and_changes_no_value() {
    let gpu = gpu();
    let z = logits();
    let plain = setup(gpu, &z, &[f32::NAN; 2]);
    run(gpu, |pass| plain.op.record(gpu, pass));
    let s = setup(gpu, &z, &flagged());
    let first = step(gpu, &s);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&first[..2]),
        bits(&download(gpu, &plain.loss, 2)),
        "loss"
    );
    assert_eq!(
        bits(&download(gpu, &s.dz, z.len())),
        bits(&download(gpu, &plain.dz, z.len())),
        "dz"
    );
    assert_eq!(
        &first[2..],
        &[1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "counts, no flag"
    );
    assert_eq!(first_non_finite(&first, 2), None);

    // Step 2: a NaN logit in task 1; step 3: an infinite one in task 0 as well.
    let mut bad = z.clone();
    bad[3 * 2 + 1] = f32::NAN;
    gpu.queue.write_buffer(&s.z, 0, bytemuck::cast_slice(&bad));
    let second = step(gpu, &s);
    assert!(second[1].is_nan() && second[0].is_finite());
    assert_eq!(&second[2..], &[2.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0, 0.0]);
    assert_eq!(first_non_finite(&second, 2), Some((1, 2)));
    bad[5 * 2] = f32::INFINITY;
    gpu.queue.write_buffer(&s.z, 0, bytemuck::cast_slice(&bad));
    let third = step(gpu, &s);
    assert_eq!(
        &third[2..],
        &[3.0, 0.0, 3.0, 0.0, 3.0, 0.0, 2.0, 0.0],
        "sticky"
    );
    assert_eq!(
        first_non_finite(&third, 2),
        Some((1, 2)),
        "the earliest step wins"
    );
}

#[test]
fn the_step_count_carries_past_2_16_exactly() {
    let gpu = gpu();
    let mut z = logits();
    z[0] = f32::NAN;
    let mut loss = flagged();
    loss[2..6].copy_from_slice(&[65535.0, 3.0, 65535.0, 3.0]);
    let s = setup(gpu, &z, &loss);
    let out = step(gpu, &s);
    assert_eq!(&out[2..6], &[0.0, 4.0, 0.0, 4.0]);
    assert_eq!(first_non_finite(&out, 2), Some((0, 4 * 65536)));
}
