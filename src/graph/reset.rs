//! Online learning's row re-initialisation: when an id takes over a table row (a new id admitted
//! into a free row, or into the row of an evicted or expired id), that row of each of the
//! feature's matrices (one per table `m`; the TIM item table is the item feature's matrix, so it
//! follows) gets fresh initial weights and zeroed optimizer state, so the new id starts where a
//! fresh model would and inherits nothing from the row's last owner.
//!
//! The values are Xavier-uniform with the bound of the model's own initialisation
//! (`init.rs`: fan-in = the table's rows, fan-out = its width), drawn from a generator keyed by
//! (`train.seed`, matrix, row, `nonce`) — the caller passes the online step as `nonce` — so they
//! depend on nothing but the stream: a resumed run re-initialises the same rows to the same bits.

use super::Graph;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::Owner;
use crate::rng::Rng;

/// One 64-bit key from several (each step through SplitMix64, so nearby inputs give unrelated
/// keys).
fn key(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x243F_6A88_85A3_08D3, |k, &p| Rng::new(k ^ p).next_u64())
}

impl Graph {
    /// Re-initialises rows `rows` of config feature `feature`'s matrices (see the module docs).
    /// A feature with no matrix of its own (numeric MNS digits share theirs; a sequence reads
    /// its item's) or a row past the table is an error.
    pub fn reset_rows(&self, gpu: &Gpu, feature: usize, rows: &[u32], nonce: u64) -> Result<()> {
        let seed = self.plan.config.train.seed;
        let mut found = false;
        for (t, table) in self.plan.tables.iter().enumerate() {
            if table.feature != feature || table.owner != Owner::Shared {
                continue;
            }
            found = true;
            let stride = self.storage.raw_stride(t);
            let width = table.width as usize;
            let bound = (6.0 / (table.rows as f32 + table.width as f32)).sqrt();
            let values: Vec<Vec<f32>> = rows
                .iter()
                .map(|&row| {
                    let mut rng = Rng::new(key(&[seed, t as u64, u64::from(row), nonce]));
                    let mut v = vec![0f32; stride];
                    v[..width]
                        .iter_mut()
                        .for_each(|x| *x = rng.uniform(-bound, bound));
                    v
                })
                .collect();
            let pairs: Vec<(u32, &[f32])> = rows
                .iter()
                .zip(&values)
                .map(|(&r, v)| (r, v.as_slice()))
                .collect();
            self.storage.write_rows(gpu, t, &pairs)?;
        }
        if !found {
            return Err(Error::Layout(format!(
                "feature {feature} has no embedding matrix of its own to re-initialise"
            )));
        }
        Ok(())
    }
}
