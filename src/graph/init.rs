//! A model's initial values, drawn from one generator seeded by `train.seed` in a fixed order (the
//! order is part of every trained model's bits): every table in storage order (Xavier-uniform
//! over `[rows, width]`), then each group's expert ([`Expert::init`]), then the dense tensors in
//! flat order as the plan says ([`Init`]: Xavier weights, zero biases, BatchNorm's γ = 1).

use super::params::FlatParams;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::dense::expert::Expert;
use crate::kernels::embedding::EmbeddingStorage;
use crate::model::{Init, ModelPlan};
use crate::rng::Rng;

/// Xavier-uniform values for a `[fan_out, fan_in]` weight (`n` values, several tables).
fn xavier(rng: &mut Rng, n: u64, fan_in: u32, fan_out: u32) -> Vec<f32> {
    let bound = (6.0 / (fan_in as f32 + fan_out as f32)).sqrt();
    (0..n).map(|_| rng.uniform(-bound, bound)).collect()
}

/// Writes every initial value (see the module docs) and copies the owned tensors into the flat
/// buffers.
pub(super) fn initialise(
    gpu: &Gpu,
    plan: &ModelPlan,
    storage: &EmbeddingStorage,
    experts: &[&Expert],
    params: &FlatParams,
) -> Result<()> {
    let mut rng = Rng::new(plan.config.train.seed);
    for (t, table) in plan.tables.iter().enumerate() {
        let n = table.rows as u64 * table.width as u64;
        storage.write_weights(gpu, t, &xavier(&mut rng, n, table.rows, table.width))?;
    }
    for expert in experts {
        expert.init(gpu, &mut rng);
    }
    for p in &plan.dense {
        let values = match p.init {
            Init::ByExpert => continue,
            Init::Zeros => vec![0.0; p.len as usize],
            Init::Ones => vec![1.0; p.len as usize],
            Init::Xavier { fan_in, fan_out } => xavier(&mut rng, p.len, fan_in, fan_out),
        };
        params.write(gpu, &p.name, &values)?;
    }
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    params.gather_values(&mut encoder);
    gpu.queue.submit([encoder.finish()]);
    Ok(())
}
