//! `wgrec data fetch ml-100k --into <dir>` and `wgrec data synth …`: the bundled dataset and the
//! synthetic generator as files.

use std::path::Path;
use wgrec::data::ml100k;

/// Fetches MovieLens-100K into `<dir>/raw/`, applies the protocol and prints the facts per split.
pub fn fetch_ml100k(dir: &Path) -> anyhow::Result<()> {
    let raw = ml100k::fetch(dir)?;
    let stats = ml100k::prepare(&raw, dir)?;
    println!(
        "ml-100k: raw files in {}, splits and schema.toml in {}",
        raw.display(),
        dir.display()
    );
    println!("split  events  click   love    user_oov item_oov mean_hist empty_hist");
    for s in &stats.splits {
        println!(
            "{:<6} {:>6}  {:.4}  {:.4}  {:>6.1}%  {:>6.2}%  {:>8.2}  {:>8.2}%",
            s.name,
            s.events,
            s.click_rate,
            s.love_rate,
            100.0 * s.user_oov,
            100.0 * s.item_oov,
            s.mean_history,
            100.0 * s.empty_history
        );
    }
    let vocab: Vec<String> = stats
        .train_vocab
        .iter()
        .map(|(n, k)| format!("{k} {n}"))
        .collect();
    println!("train vocabularies: {}", vocab.join(", "));
    Ok(())
}
