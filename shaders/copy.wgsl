// copy.wgsl — the bandwidth ceiling: dst[i] = src[i] over vec4s.
//
// Launcher: src/kernels/copy.rs. Tests: kernels_tests/device.rs.
//
// Benches divide every kernel's effective GB/s by this kernel's GB/s, measured in the same run on the
// same device, so the ratio is a property of the kernel rather than of the machine.
//
// Bindings: 0 src (read), 1 dst (read_write), 2 params (uniform).
// Geometry: one invocation per vec4; workgroups fold into (x, y) past 65,535 (gpu::grid).

override WG: u32 = 256u; // wide enough to keep a GPU's memory pipes busy; lavapipe ignores it

struct CopyParams {
    n4: u32,   // vec4s to copy
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> params: CopyParams;

@compute @workgroup_size(WG)
fn copy_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i < params.n4 {
        dst[i] = src[i];
    }
}
