//! `pooling` of a sequence feature: TIM by default, `"mean"` the ablation, whose TIM-only keys are
//! errors naming the key and its line.

use crate::config::tests::GOOD;
use crate::config::{FeatureKind, ModelConfig, SequencePooling, TimeBucket};

/// GOOD with the sequence's `time` line replaced by `lines`.
fn with_sequence(lines: &str) -> String {
    let s = GOOD.replace("time = { by = \"position\" }\n", lines);
    assert_ne!(s, GOOD, "GOOD has the sequence's time line");
    s
}

fn sequence(text: &str) -> FeatureKind {
    let c = ModelConfig::parse(text, "m.toml").expect("valid");
    c.features[4].kind.clone()
}

fn refusal(text: &str) -> String {
    ModelConfig::parse(text, "m.toml")
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn sequence_pooling_defaults_to_tim_with_its_temporal_keys() {
    let FeatureKind::Sequence {
        pooling,
        buckets,
        time,
        ..
    } = sequence(&with_sequence(""))
    else {
        panic!("feature 4 is the sequence");
    };
    assert_eq!(pooling, SequencePooling::Tim);
    assert_eq!(buckets, 64);
    assert_eq!(
        time,
        TimeBucket::LogDelta {
            unit_seconds: 3600.0
        }
    );
    let explicit = sequence(&with_sequence("pooling = \"tim\"\nbuckets = 9\n"));
    assert!(matches!(
        explicit,
        FeatureKind::Sequence {
            pooling: SequencePooling::Tim,
            buckets: 9,
            ..
        }
    ));
}

#[test]
fn mean_pooled_sequence_reads_no_times_and_has_no_buckets_to_speak_of() {
    let FeatureKind::Sequence {
        pooling,
        buckets,
        time,
        max_len,
        ..
    } = sequence(&with_sequence("pooling = \"mean\"\nmax_len = 7\n"))
    else {
        panic!("feature 4 is the sequence");
    };
    assert_eq!(pooling, SequencePooling::Mean);
    assert_eq!(max_len, 7);
    // Position bucketing reads no times column; 2 is the least N_T that validates.
    assert_eq!((buckets, time), (2, TimeBucket::Position));
}

#[test]
fn mean_pooled_sequence_refuses_each_tim_only_key_naming_it_and_its_line() {
    let lines = [
        "buckets = 64\n",
        "time = { by = \"position\" }\n",
        "times = \"hist_time\"\n",
        "timestamp = \"timestamp\"\n",
    ];
    for (key, line) in SequencePooling::TIM_ONLY_KEYS.iter().zip(lines) {
        let text = with_sequence(&format!("pooling = \"mean\"\n{line}"));
        let at = 1 + text[..text.find(line).expect("the line")]
            .matches('\n')
            .count();
        let e = refusal(&text);
        assert!(e.contains(&format!("`{key}` means nothing")), "{e}");
        assert!(e.contains("feature[4]") && e.contains("\"history\""), "{e}");
        assert!(e.contains(&format!("line {at}, column 1")), "{key}: {e}");
    }
}

#[test]
fn tim_pooled_sequence_keeps_every_temporal_key_and_a_bad_pooling_is_refused() {
    let tim = with_sequence("pooling = \"tim\"\nbuckets = 8\ntime = { by = \"position\" }\n");
    assert!(ModelConfig::parse(&tim, "m.toml").is_ok());
    let e = refusal(&with_sequence("pooling = \"max\"\n"));
    assert!(e.contains("feature[4]") && e.contains("max"), "{e}");
    assert!(e.contains("tim") && e.contains("mean"), "{e}");
}
