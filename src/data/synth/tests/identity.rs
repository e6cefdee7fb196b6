//! The bytes of every configuration that existed before several tasks and scenarios: the
//! checksums below were recorded from the generator before those were added, so a change that
//! moves one random draw or one rounding in the old paths fails here.

use std::fs;

use super::*;

/// FNV-1a over a byte stream: stable across platforms and Rust versions, unlike `DefaultHasher`.
fn fnv(bytes: impl IntoIterator<Item = u8>, mut h: u64) -> u64 {
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The checksum of the four files `write` produces for `synth`.
fn files_checksum(synth: &Synth, rows: u64, layout: Layout, name: &str) -> u64 {
    let dir = tmp(name);
    write(synth, rows, layout, &dir).unwrap();
    let mut h = FNV_START;
    for file in ["train.tsv", "valid.tsv", "test.tsv", "schema.toml"] {
        h = fnv(fs::read(dir.join(file)).unwrap(), h);
    }
    fs::remove_dir_all(dir).unwrap();
    h
}

/// The checksum of a batch: every column, the planted probabilities' bits included.
fn batch_checksum(synth: &Synth, rows: std::ops::Range<u64>) -> u64 {
    let b = synth.batch(rows.clone());
    let mut h = fnv(b.labels.iter().flat_map(|x| x.to_le_bytes()), FNV_START);
    h = fnv(b.ids.iter().flat_map(|x| x.to_le_bytes()), h);
    h = fnv(b.numeric.iter().flat_map(|x| x.to_bits().to_le_bytes()), h);
    h = fnv(b.timestamps.iter().flat_map(|x| x.to_le_bytes()), h);
    h = fnv(b.hist_offsets.iter().flat_map(|x| x.to_le_bytes()), h);
    h = fnv(b.hist_items.iter().flat_map(|x| x.to_le_bytes()), h);
    h = fnv(b.hist_cats.iter().flat_map(|x| x.to_le_bytes()), h);
    h = fnv(b.hist_times.iter().flat_map(|x| x.to_le_bytes()), h);
    let probs = synth.rows(rows).flat_map(|r| r.probs);
    fnv(probs.flat_map(|p| p.to_bits().to_le_bytes()), h)
}

#[test]
fn the_configurations_from_before_several_tasks_write_the_same_bytes() {
    let default = Synth::new(SynthConfig::new(1)).unwrap();
    let criteo = Synth::new(SynthConfig::criteo(4)).unwrap();
    // The CLI's and the training test's second task.
    let love = Synth::new(SynthConfig {
        second_task: Some((0.3, 0.7)),
        missing_rate: 0.1,
        ..SynthConfig::new(9)
    })
    .unwrap();
    let got = [
        files_checksum(&default, 3000, Layout::Table, "id-default"),
        files_checksum(&criteo, 3000, Layout::Criteo, "id-criteo"),
        files_checksum(&love, 3000, Layout::Table, "id-love"),
    ];
    let recorded = [
        0x7cba_d131_dd8a_747a,
        0x1473_47fc_2a2b_00f4,
        0x465b_98b7_a4eb_0b99,
    ];
    assert_eq!(got, recorded, "got {got:#x?}");
}

#[test]
fn the_batches_from_before_several_tasks_hold_the_same_values() {
    // The benchmark's shape of config: equal vocabularies, short sequences.
    let bench = Synth::new(SynthConfig {
        vocabs: vec![10_000; 6],
        numeric: 2,
        max_history: 8,
        ..SynthConfig::new(11)
    })
    .unwrap();
    let love = Synth::new(SynthConfig {
        second_task: Some((0.05, 0.2)),
        ..small(2)
    })
    .unwrap();
    let got = [
        batch_checksum(&bench, 0..2000),
        batch_checksum(&love, 1_000_000..1_002_000),
    ];
    let recorded = [0xdf19_6fae_e715_2b08, 0xa69d_ecea_b125_8617];
    assert_eq!(got, recorded, "got {got:#x?}");
}
