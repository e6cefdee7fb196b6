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
