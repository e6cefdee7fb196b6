//! The plan as plain JSON, for other implementations of the same model: the PyTorch side of
//! `scripts/bench-vs-torch.sh` (`benches/torch/model.py`) builds itself from it. The tensors
//! themselves are the graph's `save_state`.

use serde_json::{json, Value};

use super::{ModelPlan, RouteMode};
use crate::config::{
    Architecture, BagPooling, Combine, Feature, FeatureKind, Loss, SequencePooling,
};
use crate::kernels::dense::expert::ExpertKind;
use crate::kernels::dense::pairwise::PairwiseKind;

impl ModelPlan {
    /// Tables in storage order, the field order, the features, the expert groups with their kinds,
    /// the dense shapes, and `batch` (the largest batch the graph was compiled for).
    pub fn describe(&self, batch: u32) -> Value {
        let c = &self.config;
        let features: Vec<Value> = (c.features.iter().enumerate())
            .map(|(f, feature)| self.describe_feature(f, feature))
            .collect();
        let groups: Vec<Value> = (self.groups.iter())
            .map(|g| json!({"tables": g.tables, "dim": g.dim, "width": g.width, "expert": describe_expert(&g.expert)}))
            .collect();
        let tables: Vec<Value> = (self.tables.iter())
            .map(|t| json!({"name": t.name, "rows": t.rows, "width": t.width}))
            .collect();
        let tasks: Vec<Value> = (c.tasks.iter())
            .map(|t| {
                let loss = match t.loss {
                    Loss::Bce => "bce",
                    Loss::Pair => "pair",
                    Loss::List => "list",
                };
                json!({"name": t.name, "loss": loss, "alpha": t.alpha, "auxiliary": t.auxiliary})
            })
            .collect();
        let combine = match c.model.combine {
            Combine::Mean => "mean",
            Combine::Concat => "concat",
            Combine::Gate => "gate",
        };
        let sets: Vec<Value> = (self.sets.iter())
            .map(|s| json!({"name": s.name, "tables": s.tables}))
            .collect();
        let routes: Vec<Value> = (self.routes.iter())
            .map(|r| {
                let mode = match r.mode {
                    RouteMode::Train => "train",
                    RouteMode::StopGradient => "stop_gradient",
                };
                json!({"tower": r.tower, "set": r.set, "mode": mode})
            })
            .collect();
        let slots: Vec<u32> = (0..self.n_tables()).map(|m| self.slot_of(m)).collect();
        json!({
            "architecture": architecture_name(c.model.architecture),
            "sets": sets,
            "routes": routes,
            "slots": slots,
            "towers": self.towers.len(),
            "gated": c.model.architecture.gated(),
            "dim": c.model.dim,
            "tables": tables,
            "fields": self.fields,
            "features": features,
            "groups": groups,
            "expert_width": c.model.expert_width,
            "batch_norm": c.model.batch_norm,
            "combine": combine,
            "hidden": c.model.hidden,
            "dropout": c.model.dropout,
            "tasks": tasks,
            "sparse_lr": c.train.sparse_lr,
            "dense_lr": c.train.dense_lr,
            "batch": batch,
        })
    }

    fn describe_feature(&self, f: usize, feature: &Feature) -> Value {
        match &feature.kind {
            FeatureKind::Categorical { .. } => json!({"name": feature.name, "kind": "categorical"}),
            FeatureKind::Bag { pooling, .. } => json!({
                "name": feature.name, "kind": "bag",
                "pooling": match pooling { BagPooling::Mean => "mean", BagPooling::Sum => "sum" },
            }),
            // HashID and similarity are MNS values to the model, as a numeric feature's.
            FeatureKind::Numeric { .. }
            | FeatureKind::HashId { .. }
            | FeatureKind::Similarity { .. } => {
                let mns: Vec<[u32; 2]> = self.shapes[f]
                    .mns
                    .iter()
                    .map(|b| [b.radix, b.digits])
                    .collect();
                json!({"name": feature.name, "kind": "numeric", "mns": mns})
            }
            FeatureKind::Sequence {
                item,
                side,
                max_len,
                pooling,
                ..
            } => json!({
                "name": feature.name, "kind": "sequence", "item": item, "side": side,
                "max_len": max_len,
                "pooling": match pooling { SequencePooling::Tim => "tim", SequencePooling::Mean => "mean" },
            }),
        }
    }
}

fn describe_expert(kind: &ExpertKind) -> Value {
    match kind {
        ExpertKind::Dcn { layers, rank } => json!({"type": "dcn", "layers": layers, "rank": rank}),
        ExpertKind::Mlp { widths } => json!({"type": "mlp", "widths": widths}),
        ExpertKind::Pairwise(PairwiseKind::Fm) => json!({"type": "fm"}),
        ExpertKind::Pairwise(PairwiseKind::FwFm) => json!({"type": "fwfm"}),
        ExpertKind::Pairwise(PairwiseKind::Ipnn) => json!({"type": "ipnn"}),
        // The JSON keeps the key "groups" (benches/torch/model.py reads it): GwPFM's blocks.
        ExpertKind::Pairwise(PairwiseKind::GwPfm { blocks, partition }) => {
            json!({"type": "gwpfm", "groups": blocks, "partition": partition})
        }
    }
}

fn architecture_name(a: Architecture) -> &'static str {
    match a {
        Architecture::Single => "single",
        Architecture::Shared => "shared",
        Architecture::Mmoe => "mmoe",
        Architecture::Ple => "ple",
        Architecture::Stem => "stem",
        Architecture::Ame => "ame",
    }
}
