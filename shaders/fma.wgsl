// fma.wgsl — work in progress.
@compute @workgroup_size(1)
fn stub_fma() {}
