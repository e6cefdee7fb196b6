//! The tune cache and the winner rule, without a GPU.

use std::collections::BTreeMap;

use super::cache::{DeviceKey, Entry, TuneCache, FORMAT};
use super::pick;
use crate::gpu::Family;

fn device(driver_info: &str) -> DeviceKey {
    DeviceKey {
        adapter: "Card".into(),
        backend: "Vulkan".into(),
        driver: "drv".into(),
        driver_info: driver_info.into(),
        wgrec: env!("CARGO_PKG_VERSION").into(),
    }
}

fn entry(d: DeviceKey, family: &str, class: &str, variant: &str) -> Entry {
    Entry {
        device: d,
        family: family.into(),
        class: class.into(),
        variant: variant.into(),
        ms: BTreeMap::from([("default".to_string(), 1.0)]),
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-tune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_cache_round_trips_and_applies_only_to_its_own_device_and_version() {
    let path = temp("round").join("sub").join("tune.json");
    let mut cache = TuneCache::default();
    let mut old = device("1.0");
    old.wgrec = "0.0.1".into();
    cache.merge(vec![
        entry(device("1.0"), "gemm", "m1k2", "default"),
        entry(device("2.0"), "gemm", "m1k2", "default"),
        entry(old, "gemm", "m1k4", "default"),
    ]);
    cache.save(&path).unwrap();
    let (back, warnings) = TuneCache::load(&path);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(back.format, FORMAT);
    assert_eq!(back.entries, cache.entries);
    let (tuned, unusable) = back.choices_for(&device("1.0"));
    assert!(unusable.is_empty());
    assert_eq!(
        tuned.len(),
        1,
        "another driver's or wgrec's entries never apply"
    );
    assert!(tuned[&(Family::Gemm, "m1k2".to_string())].is_default());
}

#[test]
fn merging_replaces_the_same_choice_and_keeps_the_rest() {
    let mut cache = TuneCache::default();
    cache.merge(vec![entry(device("1"), "gemm", "a", "default")]);
    cache.merge(vec![
        entry(device("1"), "gemm", "a", "default"),
        entry(device("1"), "tim", "a", "default"),
    ]);
    assert_eq!(cache.entries.len(), 2);
}

#[test]
fn a_corrupt_or_foreign_cache_is_ignored_with_a_warning() {
    let dir = temp("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tune.json");
    std::fs::write(&path, b"{ not json").unwrap();
    let (cache, warnings) = TuneCache::load(&path);
    assert!(cache.entries.is_empty());
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("ignored"), "{warnings:?}");
    std::fs::write(&path, br#"{"format": "other-9", "entries": []}"#).unwrap();
    let (_, warnings) = TuneCache::load(&path);
    assert!(warnings[0].contains("other-9"), "{warnings:?}");
    let (cache, warnings) = TuneCache::load(&dir.join("missing.json"));
    assert!(cache.entries.is_empty() && warnings.is_empty());
}

#[test]
fn an_entry_naming_an_unknown_family_or_variant_is_skipped_with_a_warning() {
    let mut cache = TuneCache::default();
    cache.merge(vec![
        entry(device("1"), "gemm", "a", "warp-speed"),
        entry(device("1"), "teleport", "a", "default"),
        entry(device("1"), "tim", "b", "default"),
    ]);
    let (tuned, warnings) = cache.choices_for(&device("1"));
    assert_eq!(tuned.len(), 1);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("warp-speed")));
    assert!(warnings.iter().any(|w| w.contains("teleport")));
}

#[test]
fn the_default_stays_unless_beaten_in_every_round_by_more_than_the_margin() {
    let s = |d: &[f64], t: &[f64]| BTreeMap::from([("default", d.to_vec()), ("tiled", t.to_vec())]);
    // Faster every round, by 2%: inside the margin.
    assert_eq!(
        pick(&s(&[10.0, 10.0, 10.0], &[9.8, 9.8, 9.8]), 0.03),
        "default"
    );
    // Faster every round, by 10%.
    assert_eq!(
        pick(&s(&[10.0, 12.0, 10.0], &[9.0, 10.8, 9.0]), 0.03),
        "tiled"
    );
    // Much faster by median but slower in one round: noise cannot be ruled out.
    assert_eq!(
        pick(&s(&[10.0, 10.0, 10.0], &[5.0, 11.0, 5.0]), 0.03),
        "default"
    );
    // Slower: never, whatever the margin.
    assert_eq!(pick(&s(&[10.0, 10.0], &[11.0, 11.0]), 0.0), "default");
    // Several winners: the lowest median ratio; rounds are paired, not pooled.
    let three = BTreeMap::from([
        ("default", vec![10.0, 20.0, 10.0]),
        ("a", vec![8.0, 16.0, 8.0]),
        ("b", vec![7.0, 19.0, 7.0]),
    ]);
    assert_eq!(pick(&three, 0.03), "b");
    // No samples of the default: the default.
    assert_eq!(pick(&BTreeMap::from([("a", vec![1.0])]), 0.0), "default");
}
