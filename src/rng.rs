//! A small seeded generator (SplitMix64) and a Zipf sampler. Test data, benches and synthetic data use
//! it so a seed means the same numbers on every platform and every version of every dependency.

/// SplitMix64: tiny, fast, and good enough for test data and weight initialisation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit() as f32
    }

    /// Standard normal N(0, 1): the cosine branch of [`Self::normal_pair`] (the sine one dropped).
    /// The one Gaussian of the crate, with the pair: synthetic data and content vectors draw from
    /// it, SimHash's hyperplanes from the pair.
    pub fn normal(&mut self) -> f64 {
        self.normal_pair().0
    }

    /// Two independent N(0, 1) draws by Box–Muller over two uniforms, `(r·cos θ, r·sin θ)` with
    /// `r = √(−2 ln u)`, `u = 1 − unit()` in (0, 1] so the logarithm is finite, `θ = 2π·unit()`.
    pub fn normal_pair(&mut self) -> (f64, f64) {
        let r = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        let angle = std::f64::consts::TAU * self.unit();
        (r * angle.cos(), r * angle.sin())
    }

    /// Uniform integer in [0, n); n > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Philox4x32-10 (Salmon et al. 2011) with 64-bit multiplies, as Random123 writes it: the CPU
/// twin of `shaders/prelude/philox.wgsl`, so a test (or the host) can recompute any draw a
/// shader made from its counter and key.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for _ in 0..10 {
        let p0 = 0xD251_1F53u64 * c[0] as u64;
        let p1 = 0xCD9E_8D57u64 * c[2] as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [
            k[0].wrapping_add(0x9E37_79B9),
            k[1].wrapping_add(0xBB67_AE85),
        ];
    }
    c
}

/// Zipf(α) over `0..n` by inverse CDF (binary search in the cumulative weights): exact, O(log n) per
/// draw after O(n) set-up. Rank 0 is the most frequent.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution P(k) ∝ 1 / (k + 1)^alpha over `0..n` (n ≥ 1; α = 0 is uniform).
    pub fn new(n: u64, alpha: f64) -> Self {
        let mut total = 0.0;
        let cdf = (0..n.max(1))
            .map(|k| {
                total += 1.0 / ((k + 1) as f64).powf(alpha);
                total
            })
            .collect::<Vec<_>>();
        let cdf = cdf.into_iter().map(|c| c / total).collect();
        Zipf { cdf }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1) as u64
    }
}
