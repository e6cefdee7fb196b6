//! Gate usage: per tower, how the mixture weighs each expert over a split (docs/multitask.md).
//!
//! The read-back ([`Predictor::gate_weights`](crate::serve::Predictor::gate_weights)) gives each
//! sample's weights `g[u, b, e]` `[towers, rows, experts]`, experts in slot order. Per tower this
//! accumulates, in f64 and in row order (so the same run gives the same bits), the mean weight on
//! each expert, the share of samples whose largest weight is on each expert (a tie shares the
//! sample equally, so a shared bottom's uniform weights give every expert `1 / experts`), and the mean per-sample entropy `−Σ_e g ln g` in nats (0: one expert takes everything;
//! `ln k`: uniform over `k` experts). A shared bottom's weights are its uniform mean `1 / experts`.

use crate::error::{Error, Result};
use crate::model::{ModelPlan, SetOwner};

/// The running sums of one split's gate weights.
#[derive(Debug, Clone)]
pub struct GateTally {
    towers: usize,
    experts: usize,
    rows: u64,
    sum: Vec<f64>,
    top: Vec<f64>,
    entropy: Vec<f64>,
}

/// Per-tower means of a [`GateTally`].
#[derive(Debug, Clone, PartialEq)]
pub struct GateMeans {
    /// Samples averaged over.
    pub rows: u64,
    /// `[towers][experts]` mean weight.
    pub mean: Vec<Vec<f64>>,
    /// `[towers][experts]` share of samples whose largest weight is on the expert (ties shared).
    pub top_share: Vec<Vec<f64>>,
    /// `[towers]` mean per-sample entropy (nats).
    pub entropy: Vec<f64>,
}

impl GateTally {
    /// An empty tally of `towers × experts` weights.
    pub fn new(towers: usize, experts: usize) -> Self {
        GateTally {
            towers,
            experts,
            rows: 0,
            sum: vec![0.0; towers * experts],
            top: vec![0.0; towers * experts],
            entropy: vec![0.0; towers],
        }
    }

    /// Adds one batch of `rows` samples' weights `[towers, rows, experts]`. A length that does not
    /// match, or a weight that is not a finite number in [0, 1], is an error naming the place.
    pub fn push(&mut self, gates: &[f32], rows: usize) -> Result<()> {
        let (u_n, e_n) = (self.towers, self.experts);
        if gates.len() != u_n * rows * e_n {
            return Err(Error::Metrics(format!(
                "gate weights hold {} values, towers {u_n} × rows {rows} × experts {e_n} expected",
                gates.len()
            )));
        }
        for u in 0..u_n {
            for b in 0..rows {
                let row = &gates[(u * rows + b) * e_n..][..e_n];
                self.push_row(u, b, row)?;
            }
        }
        self.rows += rows as u64;
        Ok(())
    }

    fn push_row(&mut self, u: usize, b: usize, row: &[f32]) -> Result<()> {
        let mut entropy = 0.0;
        for (e, &g) in row.iter().enumerate() {
            if !(0.0..=1.0).contains(&g) {
                return Err(Error::Metrics(format!(
                    "gate weight of tower {u}, batch row {b}, expert {e} is {g}, not in [0, 1]"
                )));
            }
            let g = f64::from(g);
            self.sum[u * self.experts + e] += g;
            if g > 0.0 {
                entropy -= g * g.ln();
            }
        }
        let best = row.iter().copied().fold(0.0f32, f32::max);
        let ties = row.iter().filter(|&&g| g == best).count();
        for (e, &g) in row.iter().enumerate() {
            if g == best {
                self.top[u * self.experts + e] += 1.0 / ties as f64;
            }
        }
        self.entropy[u] += entropy;
        Ok(())
    }

    /// The means so far; `None` before any sample.
    pub fn means(&self) -> Option<GateMeans> {
        if self.rows == 0 {
            return None;
        }
        let n = self.rows as f64;
        let per_tower = |v: &dyn Fn(usize) -> f64| -> Vec<Vec<f64>> {
            (0..self.towers)
                .map(|u| (0..self.experts).map(|e| v(u * self.experts + e)).collect())
                .collect()
        };
        Some(GateMeans {
            rows: self.rows,
            mean: per_tower(&|i| self.sum[i] / n),
            top_share: per_tower(&|i| self.top[i] / n),
            entropy: self.entropy.iter().map(|h| h / n).collect(),
        })
    }
}

/// Each expert slot's label `<set owner>/t<table within the set>` (`shared/t0`, `click/t1`), in
/// slot order, as the gate weights' last axis.
pub fn expert_labels(plan: &ModelPlan) -> Vec<String> {
    let n = plan.n_tables();
    let mut labels = vec![String::new(); n as usize];
    for m in 0..n {
        let set = &plan.sets[plan.set_of(m)];
        let first = set.tables.first().copied().unwrap_or(m);
        let owner = match set.owner {
            SetOwner::Shared => "shared",
            SetOwner::Task(_) | SetOwner::Scenario(_) => set.name.as_str(),
        };
        labels[plan.slot_of(m) as usize] = format!("{owner}/t{}", m - first);
    }
    labels
}
