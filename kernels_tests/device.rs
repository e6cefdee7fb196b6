//! The device layer: host-owned devices, errors caught as `Err`, the copy ceiling kernel, grid folding,
//! and the launch scaffolding (`Launch`, `Uniform::set_rows`).

use wgrec::gpu::{grid, storage_usage, AdapterChoice};
use wgrec::kernels::copy::CopyVec4;
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::{gpu, poison, private_gpu};

/// Copies random data (never zeros) and checks every element, destination poisoned first.
fn check_copy(gpu: &Gpu, bytes: u64) {
    let copy = CopyVec4::new(gpu, bytes).expect("copy");
    let mut rng = Rng::new(bytes);
    let data: Vec<f32> = (0..bytes / 4).map(|_| rng.uniform(-1.0, 1.0)).collect();
    gpu.queue
        .write_buffer(&copy.src, 0, bytemuck::cast_slice(&data));
    poison(gpu, &copy.dst);
    run_once(gpu, |pass| copy.record(gpu, pass));
    let got: Vec<f32> = gpu.read(&copy.dst, 0, bytes / 4).expect("read");
    assert!(got
        .iter()
        .zip(&data)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn copy_kernel_copies_every_element_of_awkward_sizes() {
    // One vec4, one past a workgroup, and a size that is no workgroup multiple. Dispatches past
    // 65,535 workgroups are exercised by forward_folds_grids_past_65535_workgroups.
    for bytes in [16, 16 * 257, 16 * 3001] {
        check_copy(gpu(), bytes);
    }
}

#[test]
fn host_owned_device_runs_kernels_through_from_wgpu() {
    let choice = AdapterChoice::from_env().expect("env");
    let (_instance, adapters) = wgrec::gpu::adapter::enumerate(&choice);
    let adapter = adapters.first().expect("an adapter");
    // A host program with WebGPU-default limits: the kernels must still fit.
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: wgpu::Limits::default(),
        ..Default::default()
    }))
    .expect("device");
    let gpu = Gpu::from_wgpu(device, queue).expect("wrap");
    assert_eq!(gpu.info().name, adapter.get_info().name);
    check_copy(&gpu, 16 * 1000);
}

#[test]
fn validation_errors_come_back_as_err_not_panics() {
    let gpu = gpu();
    let too_big = gpu.limits().max_buffer_size + 4;
    let err = gpu
        .scoped("allocating an oversized buffer", || {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("too big"),
                size: too_big,
                usage: storage_usage(),
                mapped_at_creation: false,
            })
        })
        .map(|_| ())
        .unwrap_err();
    assert!(
        err.to_string().contains("allocating an oversized buffer"),
        "{err}"
    );
    assert!(
        CopyVec4::new(gpu, 20).is_err(),
        "non-multiple of 16 is refused"
    );
}

#[test]
fn grids_fold_into_two_dimensions_past_the_limit() {
    assert_eq!(grid(10, 65_535), (10, 1));
    for n in [65_536u32, 100_000, 4_000_000] {
        let (x, y) = grid(n, 65_535);
        assert!(x <= 65_535 && y <= 65_535 && x as u64 * y as u64 >= n as u64);
        assert!(
            (x as u64 * y as u64) < n as u64 + y as u64,
            "no more than one partial row"
        );
    }
}

#[test]
fn unknown_backend_names_are_refused_with_the_variable_named() {
    let err = wgrec::gpu::adapter::parse_backend("cuda")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("WGREC_BACKEND") && err.contains("vulkan, metal, dx12, gl"),
        "{err}"
    );
}

#[test]
fn allocated_bytes_counts_every_buffer_as_sized() {
    // A device of its own: tests running beside this one allocate through the shared device.
    let gpu = Gpu::new().expect("gpu");
    let start = gpu.allocated_bytes();
    let _a = gpu.buffer("a", 10, storage_usage()); // padded to 16
    assert_eq!(gpu.allocated_bytes() - start, 16);
    let _b = gpu.buffer("b", 18, storage_usage()); // rounded up to 20
    assert_eq!(gpu.allocated_bytes() - start, 36);
    let _c = gpu.storage_from("c", &[1.0f32; 1000]);
    assert_eq!(gpu.allocated_bytes() - start, 4036);
    let _d = gpu.uniform_from("d", &[0u32; 8]);
    assert_eq!(gpu.allocated_bytes() - start, 4068);
    // Dropping does not decrement: the counter bounds the peak from above.
    drop(_c);
    assert_eq!(gpu.allocated_bytes() - start, 4068);
}

#[test]
fn launch_records_one_dispatch_per_non_empty_grid_and_none_for_an_empty_one() {
    use wgrec::gpu::{Grid, Launch, Uniform};
    use wgrec::kernels::copy::{CopyParams, COPY_VEC4, COPY_WG};
    let gpu = private_gpu();
    let pipeline = gpu
        .pipeline(&COPY_VEC4, &[("WG", COPY_WG as f64)])
        .expect("pipeline");
    let src = gpu.storage_from("src", &[1.0f32; 4]);
    let dst = gpu.buffer("dst", 16, storage_usage());
    let params = Uniform::new(
        &gpu,
        "copy params",
        &CopyParams {
            n4: 1,
            _pad: [0; 3],
        },
    );
    let buffers = [&src, &dst, params.buffer()];
    let mut launch = Launch::new(&gpu, &pipeline, &buffers, Grid::Folded(0)).expect("launch");
    let count = |launch: &Launch| {
        let before = gpu.dispatches();
        run_once(&gpu, |pass| launch.record(&gpu, pass));
        gpu.sync().expect("sync");
        gpu.dispatches() - before
    };
    assert_eq!(count(&launch), 0, "empty folded grid");
    launch.set_grid(Grid::Dims([1, 0, 1]));
    assert_eq!(count(&launch), 0, "3-D grid with an empty dimension");
    launch.set_grid(Grid::Folded(1));
    assert_eq!(count(&launch), 1, "one workgroup");
    let got: Vec<f32> = gpu.read(&dst, 0, 4).expect("read");
    assert_eq!(got, [1.0; 4], "the launch ran the copy");
    assert!(
        Launch::new(&gpu, &pipeline, &buffers[..2], Grid::Folded(1)).is_err(),
        "a binding short"
    );
}

#[test]
fn uniform_set_rows_takes_rows_up_to_capacity_and_refuses_more() {
    use wgrec::gpu::Uniform;
    use wgrec::kernels::dense::combine::CombineParams;
    let gpu = gpu();
    let mut params = CombineParams {
        tables: 2,
        rows: 8,
        rows_cap: 8,
        cols: 3,
    };
    let uniform = Uniform::new(gpu, "combine params", &params);
    uniform
        .set_rows(gpu, "combine_mean", &mut params, 5, 8)
        .expect("5 of 8 rows");
    assert_eq!(params.rows, 5);
    uniform
        .set_rows(gpu, "combine_mean", &mut params, 8, 8)
        .expect("all 8 rows");
    let err = uniform
        .set_rows(gpu, "combine_mean", &mut params, 9, 8)
        .expect_err("9 of 8 rows");
    assert!(err.to_string().contains("combine_mean"), "{err}");
    assert_eq!(
        params.rows, 8,
        "a refused batch leaves the params as they were"
    );
}
