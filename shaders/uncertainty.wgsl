// uncertainty.wgsl — the loss and logit gradient of the uncertainty heads (METHODS.md §4.4).
//
// Launcher: src/kernels/loss/uncertainty.rs (its docs hold the formulas). Tests:
// kernels_tests/uncertainty.rs.
//
// The heads write `width` values per (row b, output u) at y[u·stride_u + b·stride_b + h]:
//   bootstrap (kind 0 Poisson, 1 Bernoulli): K logits z_k; the loss is
//     Σ_k m_k · s_bu · BCE(z_k, y_bu),   dz_k = m_k · s_bu · (σ(z_k) − y_bu)
//   with m_k the (sample, head) mask: Poisson(1) by inversion against the integer CDF thresholds
//   in `poisson` (m = #{i : bits ≥ T_i}, truncated at 12: P(m > 12) < 10⁻⁹), or 2·Bernoulli(½);
//   gaussian (kind 2): μ and v = log s²; z = μ + s·ε, s = exp(½ clamp(v)), ε ~ N(0, 1);
//     s_bu · BCE(z, y_bu),   dμ = s_bu · (σ(z) − y),   dv = dμ · ε · s / 2 (0 where clamped).
// s_bu (`scale`, from the host) is the sample's weight over the output's weight sum, 0 for a
// missing label or an output without a head: the main loss's normalisation.
//
// Draws: Philox4x32-10 (prelude) with key (seed_lo, seed_hi) and counter (b, u·16 + c, step,
// STREAM); call c gives the masks of heads 4c..4c+3, or (c = 0) the two uniforms of ε by
// Box–Muller: u₁ = (bits₀ >> 8 + 1)·2⁻²⁴ ∈ (0, 1], u₂ = (bits₁ >> 8)·2⁻²⁴.
//
// Bindings: 0 y (read), 1 labels [rows_cap, outputs] (read), 2 scale [rows_cap, outputs] (read),
//   3 grad (read_write, y's layout), 4 loss [outputs, rows_cap] (read_write), 5 params (uniform).
// Geometry: one invocation per (row, output), folded into (x, y) (gpu::grid).

override WG: u32 = 64u;

const STREAM: u32 = 0x756E6365u; // "unce": apart from every dropout layer's stream
const TWO_PI: f32 = 6.283185307179586;
const INV_2_24: f32 = 5.9604644775390625e-8;

struct UncertaintyParams {
    rows: u32,
    outputs: u32,
    width: u32,
    kind: u32,
    stride_u: u32,
    stride_b: u32,
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    rows_cap: u32,
    log_var_lo: f32,
    log_var_hi: f32,
    poisson: array<vec4<u32>, 3>,
}

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<uniform> params: UncertaintyParams;

fn sigmoid(z: f32) -> f32 {
    let e = exp(-abs(z));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), z >= 0.0);
}

// BCE with logits, the stable form max(z, 0) − z·y + log(1 + e^{−|z|}).
fn bce(z: f32, label: f32) -> f32 {
    return max(z, 0.0) - z * label + log(1.0 + exp(-abs(z)));
}

fn poisson_mask(bits: u32) -> f32 {
    var m = 0u;
    for (var i = 0u; i < 12u; i++) {
        m += select(0u, 1u, bits >= params.poisson[i / 4u][i % 4u]);
    }
    return f32(m);
}

fn draws(b: u32, u: u32, c: u32) -> vec4<u32> {
    let counter = vec4<u32>(b, u * 16u + c, params.step, STREAM);
    return philox4x32_10(counter, vec2<u32>(params.seed_lo, params.seed_hi));
}

// Bootstrap: every head's masked loss and gradient; returns the loss.
fn bootstrap(b: u32, u: u32, base: u32, label: f32, s: f32) -> f32 {
    var total = 0.0;
    var bits = vec4<u32>();
    for (var k = 0u; k < params.width; k++) {
        if k % 4u == 0u {
            bits = draws(b, u, k / 4u);
        }
        let word = bits[k % 4u];
        let m = select(poisson_mask(word), select(0.0, 2.0, word >= 0x80000000u), params.kind == 1u);
        let z = y[base + k];
        grad[base + k] = m * s * (sigmoid(z) - label);
        total += m * s * bce(z, label);
    }
    return total;
}

// Gaussian: the reparameterised logit's loss and the gradients of μ and log s².
fn gaussian(b: u32, u: u32, base: u32, label: f32, s: f32) -> f32 {
    let bits = draws(b, u, 0u);
    let u1 = (f32(bits.x >> 8u) + 1.0) * INV_2_24;
    let u2 = f32(bits.y >> 8u) * INV_2_24;
    let eps = sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
    let v = y[base + 1u];
    let inside = v >= params.log_var_lo && v <= params.log_var_hi;
    let sd = exp(0.5 * clamp(v, params.log_var_lo, params.log_var_hi));
    let z = y[base] + sd * eps;
    let g = s * (sigmoid(z) - label);
    grad[base] = g;
    grad[base + 1u] = select(0.0, g * eps * sd * 0.5, inside);
    return s * bce(z, label);
}

@compute @workgroup_size(WG)
fn uncertainty_loss(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let lin = (wid.x + wid.y * nwg.x) * WG + lid;
    if lin >= params.rows * params.outputs { return; }
    let b = lin / params.outputs;
    let u = lin % params.outputs;
    let base = u * params.stride_u + b * params.stride_b;
    let label = labels[b * params.outputs + u];
    let s = scale[b * params.outputs + u];
    var value = 0.0;
    if params.kind == 2u {
        value = gaussian(b, u, base, label, s);
    } else {
        value = bootstrap(b, u, base, label, s);
    }
    loss[u * params.rows_cap + b] = value;
}
