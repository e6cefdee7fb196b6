//! A host program that owns its wgpu device hands it to wgrec and runs a table-batched gather.
//!
//!     cargo run --release --example host_device

use wgrec::kernels::embedding::{
    Bags, EmbeddingStorage, FeatureSet, Pooling, SparseOptimizer, TableSpec, TbeForward,
};
use wgrec::kernels::run_once;
use wgrec::Gpu;

fn main() -> anyhow::Result<()> {
    // The host's own device, opened however the host likes.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))?;
    let gpu = Gpu::from_wgpu(device, queue)?;
    println!("running on {}", gpu.describe());

    // Two tables: 10 users × 8 floats, 5 genres × 8 floats.
    let tables = [
        TableSpec { rows: 10, width: 8 },
        TableSpec { rows: 5, width: 8 },
    ];
    let storage = EmbeddingStorage::new(&gpu, &tables, SparseOptimizer::Sgd, None)?;
    storage.write_weights(&gpu, 0, &(0..80).map(|i| i as f32).collect::<Vec<_>>())?;
    storage.write_weights(&gpu, 1, &(0..40).map(|i| -(i as f32)).collect::<Vec<_>>())?;
    let features = [(0, Pooling::Sum, vec![]), (1, Pooling::Mean, vec![])];
    let fs = FeatureSet::concatenated(&storage.layout, &features, 2, 1)?;
    let mut forward = TbeForward::new(&gpu, &storage, fs, 16)?;

    // Two samples: users 3 and 7; genres {0, 4} and {} (an empty bag pools to zeros).
    let bags = Bags {
        batch_size: 2,
        offsets: vec![0, 1, 2, 4, 4],
        indices: vec![3, 7, 0, 4],
        weights: None,
    };
    forward.upload(&gpu, &storage, &bags)?;
    run_once(&gpu, |pass| forward.record(&gpu, pass));
    let out: Vec<f32> = gpu.read(forward.output(), 0, 32)?;
    for (b, row) in out.chunks(16).enumerate() {
        println!("sample {b}: user {:?} genres {:?}", &row[..8], &row[8..]);
    }
    Ok(())
}
