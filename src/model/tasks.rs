//! How a model's tasks share it (METHODS.md §3, docs/multitask.md): the embedding sets, one tower
//! and head per task, and the gradient routes from each tower to each set.
//!
//! Every table `m` has one expert (multi-embedding), so an *expert* and a *table* are one thing
//! here; a **set** is the `model.tables` consecutive tables `s·M .. (s+1)·M`. Set 0 is shared; the
//! `stem` and `ple` architectures add one per task (set `1 + t` for task `t`).
//!
//! | architecture | sets | tower `t` reads | routes |
//! |---|---|---|---|
//! | `single` | shared | one tower for all tasks | train |
//! | `shared`, `mmoe`, `ame` | shared | shared | train |
//! | `ple` | shared + one per task | shared, own | train, train |
//! | `stem` | shared + one per task | shared, own, others | train, train, stop-gradient |
//! | `stem`, auxiliary task `t` | shared + one per task | own | train |
//!
//! With scenarios (`model.scenario`), every (task, scenario) is an output with its own tower, and
//! the sets of `stem` and `ple` are the scenarios' instead of the tasks': an output's own set is its
//! scenario's ("STEM with scenario in place of task").
//!
//! A route's mode decides two things in the mixture of a tower (see [`ModelPlan::mix_routes`]):
//! whether the expert is in the tower's gate at all, and whether the tower's loss reaches the
//! expert (its output and, through the gate's input, its gradient). Under stop-gradient the gate
//! weights on the expert still learn: "All Forward, Task-specific Backward".

use super::{bad, HeadPlan, ModelPlan, Route, RouteMode, TowerPlan};
use crate::config::{Architecture, ModelConfig, Output};
use crate::error::Result;

/// A mix route flag: the expert is in the tower's mixture.
pub const PRESENT: u32 = 1;
/// A mix route flag: the tower's loss reaches the expert's output through the mixture.
pub const TRAIN: u32 = 2;
/// A mix route flag: the gradient of the tower's gate input reaches the expert's output.
pub const READ: u32 = 4;

/// Who a set's tables belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOwner {
    /// Every task.
    Shared,
    /// One task (config index).
    Task(usize),
    /// One scenario (index into `model.scenarios`): "STEM with scenario in place of task".
    Scenario(usize),
}

/// One embedding set: `model.tables` tables, one expert each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPlan {
    /// `shared`, the task's or the scenario's name.
    pub name: String,
    /// Its owner.
    pub owner: SetOwner,
    /// Its tables `m`, ascending.
    pub tables: Vec<u32>,
}

/// The shared set, then a set per task for `stem` and `ple`.
pub(super) fn plan_sets(config: &ModelConfig) -> Vec<SetPlan> {
    let m = config.model.tables;
    let set = |s: u32, name: String, owner| SetPlan {
        name,
        owner,
        tables: (s * m..(s + 1) * m).collect(),
    };
    let mut sets = vec![set(0, "shared".into(), SetOwner::Shared)];
    if !config.model.architecture.task_sets() {
        return sets;
    }
    let scenarios = &config.model.scenarios;
    if scenarios.is_empty() {
        for (t, task) in config.tasks.iter().enumerate() {
            sets.push(set(1 + t as u32, task.name.clone(), SetOwner::Task(t)));
        }
    } else {
        for (s, name) in scenarios.iter().enumerate() {
            sets.push(set(1 + s as u32, name.clone(), SetOwner::Scenario(s)));
        }
    }
    sets
}

/// The towers, heads and routes: one tower and a head of every task for `single` (its input the
/// combine's width `combined`), else a tower and a head per output (task, or task in a scenario)
/// over the expert width.
pub(super) fn plan_towers(
    config: &ModelConfig,
    combined: u32,
) -> (Vec<TowerPlan>, Vec<HeadPlan>, Vec<Route>) {
    let arch = config.model.architecture;
    let tower = |input, reads| TowerPlan {
        input,
        hidden: config.model.hidden.clone(),
        dropout: config.model.dropout,
        reads,
    };
    if !arch.multitask() {
        let head = HeadPlan {
            tower: 0,
            outputs: (0..config.tasks.len()).collect(),
        };
        let route = Route {
            tower: 0,
            set: 0,
            mode: RouteMode::Train,
        };
        return (vec![tower(combined, vec![0])], vec![head], vec![route]);
    }
    let (mut towers, mut heads, mut routes) = (Vec::new(), Vec::new(), Vec::new());
    for (u, output) in config.outputs().iter().enumerate() {
        let reads = output_routes(config, output);
        let sets = reads.iter().map(|&(s, _)| s).collect();
        towers.push(tower(config.model.expert_width, sets));
        heads.push(HeadPlan {
            tower: u,
            outputs: vec![u],
        });
        routes.extend(reads.into_iter().map(|(set, mode)| Route {
            tower: u,
            set,
            mode,
        }));
    }
    (towers, heads, routes)
}

/// The sets an output's tower reads and how (the table in the module docs); the owner of its own
/// set is its scenario when the model has scenarios, else its task.
fn output_routes(config: &ModelConfig, output: &Output) -> Vec<(usize, RouteMode)> {
    let (owner, owners) = match output.scenario {
        Some(s) => (s, config.model.scenarios.len()),
        None => (output.task, config.tasks.len()),
    };
    let own = 1 + owner;
    match config.model.architecture {
        Architecture::Ple => vec![(0, RouteMode::Train), (own, RouteMode::Train)],
        Architecture::Stem if config.tasks[output.task].auxiliary => {
            vec![(own, RouteMode::Train)]
        }
        Architecture::Stem => {
            let mut reads = vec![(0, RouteMode::Train)];
            for other in 0..owners {
                let mode = if other == owner {
                    RouteMode::Train
                } else {
                    RouteMode::StopGradient
                };
                reads.push((1 + other, mode));
            }
            reads
        }
        _ => vec![(0, RouteMode::Train)],
    }
}

/// The sets partition the tables `0..M_total` in order; a task set's task exists.
pub(super) fn check_sets(plan: &ModelPlan) -> Result<()> {
    let mut next = 0;
    for (s, set) in plan.sets.iter().enumerate() {
        for &m in &set.tables {
            if m != next {
                return Err(bad(format!(
                    "set {s} ({}) lists table {m} where table {next} comes next",
                    set.name
                )));
            }
            next += 1;
        }
        if let SetOwner::Task(t) = set.owner {
            if t >= plan.config.tasks.len() {
                return Err(bad(format!(
                    "set {s} belongs to task {t}, which does not exist"
                )));
            }
        }
    }
    if next != plan.n_tables() {
        return Err(bad(format!(
            "the sets hold {next} tables of {}",
            plan.n_tables()
        )));
    }
    Ok(())
}

impl ModelPlan {
    /// The set of table `m`.
    pub fn set_of(&self, m: u32) -> usize {
        (m / self.config.model.tables) as usize
    }

    /// The slot of table `m` in the experts' `[M, B, W]` output (groups in order).
    pub fn slot_of(&self, m: u32) -> u32 {
        self.groups
            .iter()
            .find_map(|g| {
                let i = g.tables.iter().position(|&t| t == m)?;
                Some(g.slot + i as u32)
            })
            .expect("every table is in a group")
    }

    /// The route flags of every (tower, expert slot), `[towers, M_total]` row-major: [`PRESENT`]
    /// where the tower reads the expert's set, with [`TRAIN`] and [`READ`] where the route trains.
    pub fn mix_routes(&self) -> Vec<u32> {
        let e = self.n_tables();
        let mut flags = vec![0u32; self.towers.len() * e as usize];
        for r in &self.routes {
            let bits = match r.mode {
                RouteMode::Train => PRESENT | TRAIN | READ,
                RouteMode::StopGradient => PRESENT,
            };
            for &m in &self.sets[r.set].tables {
                flags[r.tower * e as usize + self.slot_of(m) as usize] = bits;
            }
        }
        flags
    }
}
