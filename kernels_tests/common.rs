//! Shared test harness: one device for the whole binary, tolerances, poisoning.

use std::sync::OnceLock;

use wgrec::Gpu;

/// The device every test uses. No adapter is a failure, never a skip.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(gpu) => gpu,
        Err(e) => panic!("kernel tests need a GPU adapter (lavapipe will do): {e}"),
    })
}

/// A tolerance on |gpu − reference| ≤ absolute + relative · magnitude, where magnitude is the f64
/// sum of the absolute values of the terms that made the reference value (so cancellation in a sum
/// does not make the check unfair), each tolerance with its reason at the use site.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    pub relative: f64,
    pub absolute: f64,
}

impl Tolerance {
    pub fn check(&self, what: &str, index: usize, got: f32, want: f64, magnitude: f64) {
        let err = (got as f64 - want).abs();
        let bound = self.absolute + self.relative * magnitude.max(want.abs());
        assert!(
            got.is_finite() && err <= bound,
            "{what}[{index}]: gpu {got} vs reference {want} (error {err:e} > bound {bound:e})"
        );
    }
}

/// Fills `buffer` with NaN so that an element the kernel fails to write fails the comparison.
pub fn poison(gpu: &Gpu, buffer: &wgpu::Buffer) {
    let nan = vec![f32::NAN; (buffer.size() / 4) as usize];
    gpu.queue
        .write_buffer(buffer, 0, bytemuck::cast_slice(&nan));
}

/// Central finite differences in f64 of `loss` at `x`, compared with `analytic` (the reference's
/// own backward): |fd − analytic| ≤ 1e-6 · (1 + |analytic|). With h = 1e-6 in f64 the truncation
/// error is O(h²) and the rounding error O(ε/h) ≈ 1e-10 relative to the loss, so 1e-6 leaves three
/// orders of margin while still catching any wrong term.
pub fn check_gradient(what: &str, x: &[f64], analytic: &[f64], loss: impl Fn(&[f64]) -> f64) {
    assert_eq!(x.len(), analytic.len(), "{what}: gradient length");
    let h = 1e-6;
    let mut probe = x.to_vec();
    for i in 0..x.len() {
        probe[i] = x[i] + h;
        let up = loss(&probe);
        probe[i] = x[i] - h;
        let down = loss(&probe);
        probe[i] = x[i];
        let fd = (up - down) / (2.0 * h);
        assert!(
            (fd - analytic[i]).abs() <= 1e-6 * (1.0 + analytic[i].abs()),
            "{what}[{i}]: finite difference {fd} vs analytic {}",
            analytic[i]
        );
    }
}

/// Seeded values in [-1, 1) rounded to f32, never all zero.
pub fn random_f32(rng: &mut wgrec::rng::Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// Uploads `data` into a fresh storage buffer.
pub fn upload(gpu: &Gpu, label: &str, data: &[f32]) -> wgpu::Buffer {
    gpu.storage_from(label, data)
}

/// Reads `n` f32 back from `buffer`.
pub fn download(gpu: &Gpu, buffer: &wgpu::Buffer, n: usize) -> Vec<f32> {
    gpu.read::<f32>(buffer, 0, n as u64).expect("readback")
}

/// A device of the test's own, for counting dispatches: the shared device's counter moves with
/// every test running in parallel.
pub fn private_gpu() -> Gpu {
    Gpu::new().expect("kernel tests need a GPU adapter (lavapipe will do)")
}
