//! `wgrec pretrain graphsage`: GraphSAGE embeddings of a data folder's click graph (src/pretrain/).

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use wgrec::pretrain::output::{write_outputs, Summary};
use wgrec::pretrain::{train, EdgeColumns, EdgeList, EdgeRows, Graph, GraphSageConfig};

/// The pre-training methods.
#[derive(Debug, Subcommand)]
pub enum PretrainCommand {
    /// Self-supervised GraphSAGE on the user–item click graph of --data's training split; writes
    /// users/items embedding files (safetensors, or .tsv for non-integer ids) and pretrain.json.
    Graphsage(GraphsageArgs),
}

/// Which rows become edges.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EdgesChoice {
    /// Rows whose label is 1.
    Positive,
    /// Every row.
    All,
}

/// The arguments of `wgrec pretrain graphsage` (defaults: src/pretrain/mod.rs).
#[derive(Debug, clap::Args)]
pub struct GraphsageArgs {
    /// The data folder (schema.toml, train.tsv); its training split gives the edges.
    #[arg(long)]
    data: PathBuf,
    /// The user id column.
    #[arg(long)]
    user: String,
    /// The item id column.
    #[arg(long)]
    item: String,
    /// The label column of --edges positive (default: the schema's first label column).
    #[arg(long)]
    label: Option<String>,
    /// positive: rows whose label is 1; all: every row.
    #[arg(long, value_enum, default_value = "positive")]
    edges: EdgesChoice,
    /// Another data folder whose training clicks (same column names) add edges; repeatable.
    #[arg(long)]
    extra: Vec<PathBuf>,
    /// Embedding width (a multiple of 4).
    #[arg(long)]
    dim: u32,
    /// Passes over the training edges.
    #[arg(long, default_value_t = 20)]
    epochs: u32,
    /// Neighbours sampled at layer 1 and layer 2 (S₁,S₂).
    #[arg(long, value_delimiter = ',', default_value = "10,5")]
    fanouts: Vec<u32>,
    /// Negatives per edge (Q).
    #[arg(long, default_value_t = 5)]
    negatives: u32,
    /// Edges per batch.
    #[arg(long, default_value_t = 512)]
    batch: u32,
    /// Learning rate (Adam on the weights and on the input embeddings).
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// Temperature τ of the scores z_uᵀz_v / τ.
    #[arg(long, default_value_t = 0.1)]
    tau: f32,
    /// Seed of initialisation, held-out split, sampling and batch order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of edges held out for link-prediction AUC.
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Print pretrain.json's content as one JSON line on stdout.
    #[arg(long)]
    json: bool,
}

/// `wgrec pretrain …`.
pub fn run(command: PretrainCommand) -> anyhow::Result<()> {
    match command {
        PretrainCommand::Graphsage(args) => graphsage(args),
    }
}

fn config_of(args: &GraphsageArgs) -> anyhow::Result<GraphSageConfig> {
    let [first, second] = args.fanouts[..] else {
        anyhow::bail!(
            "--fanouts {:?}: give two numbers, S₁,S₂ (e.g. 10,5)",
            args.fanouts
        );
    };
    let cfg = GraphSageConfig {
        dim: args.dim,
        epochs: args.epochs,
        fanout_first: first,
        fanout_second: second,
        negatives: args.negatives,
        batch: args.batch,
        lr: args.lr,
        tau: args.tau,
        seed: args.seed,
        holdout: args.holdout,
    };
    cfg.validate()?;
    Ok(cfg)
}

fn graphsage(args: GraphsageArgs) -> anyhow::Result<()> {
    let cfg = config_of(&args)?;
    let columns = EdgeColumns {
        user: args.user.clone(),
        item: args.item.clone(),
        label: args.label.clone(),
        rows: match args.edges {
            EdgesChoice::Positive => EdgeRows::Positive,
            EdgesChoice::All => EdgeRows::All,
        },
    };
    let folders: Vec<&PathBuf> = std::iter::once(&args.data).chain(&args.extra).collect();
    let mut list = EdgeList::default();
    for dir in &folders {
        list.read_folder(dir, &columns)?;
    }
    let graph = Graph::new(
        list.users.len(),
        list.items.len(),
        list.edges.clone(),
        cfg.holdout,
        cfg.seed,
    )?;
    let gpu = super::tune::gpu()?;
    eprintln!(
        "graphsage on {} users, {} items, {} training and {} held-out edges with {}",
        graph.users,
        graph.items,
        graph.train.len(),
        graph.held_out.len(),
        gpu.describe()
    );
    let run = train::train(&gpu, &graph, &cfg, |e| {
        let auc = e.auc.map_or("-".to_string(), |a| format!("{a:.4}"));
        eprintln!(
            "epoch {}/{}: loss {:.4}, held-out AUC {auc}, {:.0} edges/s, {:.1} s",
            e.epoch, cfg.epochs, e.loss, e.edges_per_sec, e.seconds
        );
    })?;
    let summary = Summary {
        config: &cfg,
        data: folders.iter().map(|d| d.display().to_string()).collect(),
        users: graph.users,
        items: graph.items,
        train_edges: graph.train.len(),
        held_out_edges: graph.held_out.len(),
        epochs: &run.epochs,
        adapter: gpu.describe(),
    };
    let written = write_outputs(&args.out, &list, &graph, &run, &summary)?;
    for path in &written {
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(())
}
