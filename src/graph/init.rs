//! A model's initial values, drawn from one generator seeded by `train.seed` in a fixed order (the
//! order is part of every trained model's bits): every table in storage order (Xavier-uniform
//! over `[rows, width]`, row-major, written [`INIT_BLOCK_ROWS`] rows at a time so a 10^8-row
//! table never needs a whole host copy — the draws are the same either way), then each group's expert ([`Expert::init`]), then the dense tensors in
//! flat order as the plan says ([`Init`]: Xavier weights, zero biases, BatchNorm's γ = 1).

use super::params::FlatParams;
use super::slabs::Slabs;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::dense::expert::Expert;
use crate::model::{Init, ModelPlan};
use crate::rng::Rng;

/// Rows of a table drawn and written at once.
pub(super) const INIT_BLOCK_ROWS: u32 = 1 << 20;

/// Xavier-uniform values for a `[fan_out, fan_in]` weight (`n` values, several tables).
fn xavier(rng: &mut Rng, n: u64, fan_in: u32, fan_out: u32) -> Vec<f32> {
    let bound = (6.0 / (fan_in as f32 + fan_out as f32)).sqrt();
    (0..n).map(|_| rng.uniform(-bound, bound)).collect()
}

/// Draws table `t`'s weights block by block (zero optimizer state) and writes them.
fn init_table(gpu: &Gpu, storage: &Slabs, t: usize, plan: &ModelPlan, rng: &mut Rng) -> Result<()> {
    let table = &plan.tables[t];
    let bound = (6.0 / (table.rows as f32 + table.width as f32)).sqrt();
    let (w, s) = (table.width as usize, storage.raw_stride(t));
    let mut first = 0u32;
    while first < table.rows {
        let n = INIT_BLOCK_ROWS.min(table.rows - first);
        let mut raw = vec![0f32; n as usize * s];
        for row in raw.chunks_mut(s) {
            row[..w]
                .iter_mut()
                .for_each(|x| *x = rng.uniform(-bound, bound));
        }
        storage.write_raw_rows(gpu, t, first, &raw)?;
        first += n;
    }
    Ok(())
}

/// Writes every initial value (see the module docs) and copies the owned tensors into the flat
/// buffers.
pub(super) fn initialise(
    gpu: &Gpu,
    plan: &ModelPlan,
    storage: &Slabs,
    experts: &[&Expert],
    params: &FlatParams,
) -> Result<()> {
    let mut rng = Rng::new(plan.config.train.seed);
    for t in 0..plan.tables.len() {
        init_table(gpu, storage, t, plan, &mut rng)?;
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
