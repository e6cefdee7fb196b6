// dropout.wgsl — inverted dropout over table-batched tensors [tables, rows_cap, cols], no mask buffer.
//
// Launcher: src/kernels/dense/dropout.rs. Tests: kernels_tests/dense_dropout.rs.
//
//   dst[e] = keep(e) ? src[e] · scale : 0,   scale = 1 / (1 − p),   keep(e) = draw(e) ≥ threshold
// with threshold = floor(p · 2³²) (p = 0: threshold 0, every element kept, scale 1: the identity).
// Forward (src = x, dst = y) and backward (src = dy, dst = dx) are this same kernel: the mask is
// recomputed from the counter, so nothing is stored between them.
//
// The draws come from Philox4x32-10 (Salmon et al., SC'11; the generator of cuRAND and PyTorch's
// CUDA dropout): counter-based, so an element's bits are a pure function of (seed, step, table,
// element, stream); it passes TestU01 BigCrush, and ten rounds of 32×32→64 multiplies are cheap next
// to the memory traffic. key = (seed_lo, seed_hi); counter = (element / 4, table, step, stream);
// output word (element mod 4) decides element, so one Philox call serves four consecutive elements
// of a table's slab (element = row · cols + col, rows < rows this step).
//
// Bindings: 0 src (read), 1 dst (read_write), 2 params (uniform).
// Geometry: one invocation per group of four elements of one table, linear index folded into (x, y)
//   (gpu::grid); rows past `rows` are not touched.

override WG: u32 = 64u; // lavapipe runs 8 lanes, GPUs 32–64: a multiple of both

struct DropoutParams {
    rows: u32,
    cols: u32,
    rows_cap: u32,
    tables: u32,
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    stream: u32,    // distinguishes dropout layers sharing one seed
    threshold: u32, // drop when the 32-bit draw < threshold
    scale: f32,     // 1 / (1 − p)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: DropoutParams;

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u; // key schedule: golden ratio
const PHILOX_W1: u32 = 0xBB67AE85u; // key schedule: sqrt(3) − 1

// High 32 bits of a·b from 16-bit halves (WGSL has no widening multiply).
fn mul_hi(a: u32, b: u32) -> u32 {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let m1 = ah * bl + ((al * bl) >> 16u);
    let m2 = al * bh + (m1 & 0xffffu);
    return ah * bh + (m1 >> 16u) + (m2 >> 16u);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var i = 0u; i < 10u; i++) {
        let hi0 = mul_hi(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mul_hi(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k += vec2<u32>(PHILOX_W0, PHILOX_W1);
    }
    return c;
}

@compute @workgroup_size(WG)
fn dropout(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let quads = (p.rows_cap * p.cols + 3u) / 4u; // per table
    let lin = (wid.x + wid.y * nwg.x) * WG + lid;
    if lin >= quads * p.tables { return; }
    let t = lin / quads;
    let q = lin % quads;
    let n = p.rows * p.cols;
    if 4u * q >= n { return; }
    let bits = philox4x32_10(vec4<u32>(q, t, p.step, p.stream), vec2<u32>(p.seed_lo, p.seed_hi));
    let base = t * p.rows_cap * p.cols;
    for (var k = 0u; k < 4u; k++) {
        let e = 4u * q + k;
        if e < n {
            dst[base + e] = select(0.0, src[base + e] * p.scale, bits[k] >= p.threshold);
        }
    }
}
