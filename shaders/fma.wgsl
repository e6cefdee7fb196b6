// fma.wgsl — the arithmetic ceiling: independent FMA chains, no memory traffic in the loop.
//
// Launcher: src/kernels/dense/fma.rs. Tests: kernels_tests/dense_gemm.rs.
//
// Benches divide the GEMM's GFLOP/s by this kernel's, measured in the same run on the same device.
// Each invocation runs `iters` rounds of CHAINS independent vec4 chains x = x·mul + add (4 vec4
// chains = 16 scalar chains: enough to cover FMA latency × issue width on a GPU and on llvmpipe's
// 8-lane AVX2, where each scalar chain is one lane-vector register), then writes the sum so the
// compiler cannot drop the loop. mul and add are uniforms, so nothing folds at compile time.
//
// Bindings: 0 out (read_write, one f32 per invocation), 1 params (uniform).
// Geometry: one invocation per output; workgroups fold into (x, y) past 65,535 (gpu::grid).
// FLOPs per invocation: iters · 4 chains · 4 lanes · 2.

override WG: u32 = 64u; // invocations per workgroup

struct FmaParams {
    invocations: u32,
    iters: u32,
    mul: f32, // close to 1 so the chains stay finite for any iteration count
    add: f32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> params: FmaParams;

@compute @workgroup_size(WG)
fn fma_ceiling(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= params.invocations {
        return;
    }
    let m = vec4<f32>(params.mul);
    let a = vec4<f32>(params.add);
    let seed = f32(i) * 1e-6;
    var x0 = vec4<f32>(seed, seed + 0.1, seed + 0.2, seed + 0.3);
    var x1 = x0 + 0.4;
    var x2 = x0 + 0.8;
    var x3 = x0 + 1.2;
    for (var r = 0u; r < params.iters; r++) {
        x0 = fma(x0, m, a);
        x1 = fma(x1, m, a);
        x2 = fma(x2, m, a);
        x3 = fma(x3, m, a);
    }
    let s = x0 + x1 + x2 + x3;
    out[i] = s.x + s.y + s.z + s.w;
}
