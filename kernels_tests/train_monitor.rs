//! The trainer with missing labels and a monitored metric (`[train] monitor`): the best epoch is
//! the one with the best monitored validation AUC, `RunState::best_auc` holds that value, and a
//! resumed run stays bit-identical.

use std::path::Path;

use wgrec::train::{Event, Observer, TrainOptions, Trainer};

use crate::common::gpu;
use crate::train::{assert_resume_is_bit_identical, data, MODEL};

/// Empties the `love` label (the second field) of every third data row of each split.
fn drop_love_labels(dir: &Path) -> usize {
    let mut dropped = 0;
    for split in ["train", "valid", "test"] {
        let path = dir.join(format!("{split}.tsv"));
        let text = std::fs::read_to_string(&path).expect("split");
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        assert!(lines[0].starts_with("click\tlove\t"), "{}", lines[0]);
        for line in lines.iter_mut().skip(1).step_by(3) {
            let mut fields: Vec<&str> = line.split('\t').collect();
            fields[1] = "";
            *line = fields.join("\t");
            dropped += 1;
        }
        std::fs::write(&path, lines.join("\n") + "\n").expect("write split");
    }
    dropped
}

/// Keeps each epoch's validation AUCs per task and whether the trainer called it the best.
#[derive(Default)]
struct Epochs(Vec<(Vec<Option<f64>>, bool)>);

impl Observer for Epochs {
    fn event(&mut self, event: Event<'_>) {
        if let Event::Epoch { valid, best, .. } = event {
            self.0.push((valid.iter().map(|m| m.auc).collect(), best));
        }
    }
}

fn with_monitor(monitor: &str) -> String {
    MODEL.replace("[train]\n", &format!("[train]\nmonitor = \"{monitor}\"\n"))
}

#[test]
fn the_best_epoch_follows_the_monitored_auc_with_missing_labels() {
    let gpu = gpu();
    let dir = data("monitor", 1500);
    assert!(drop_love_labels(&dir) > 0);
    for monitor in ["mean", "love", "click"] {
        let model = with_monitor(monitor).replace("epochs = 2", "epochs = 3");
        let out = dir.join(format!("run-{monitor}"));
        let mut epochs = Epochs::default();
        let report = Trainer::new(gpu, &model, "m.toml", &dir, &out, TrainOptions::default())
            .and_then(|mut t| t.run(&mut epochs))
            .expect("train");
        let valid = report.valid.expect("a best epoch");
        // Validation has 150 rows; every third lost its love label.
        assert_eq!((valid[0].rows, valid[1].rows), (150, 100), "{monitor}");
        let (click, love) = (valid[0].auc.expect("click"), valid[1].auc.expect("love"));
        let want = match monitor {
            "mean" => (click + love) / 2.0,
            "love" => love,
            _ => click,
        };
        assert_eq!(report.state.best_auc, Some(want), "{monitor}");
        // Each epoch is called best exactly when its monitored AUC beats every earlier one.
        let score = |aucs: &[Option<f64>]| {
            let (c, l) = (aucs[0].expect("click"), aucs[1].expect("love"));
            match monitor {
                "mean" => (c + l) / 2.0,
                "love" => l,
                _ => c,
            }
        };
        assert_eq!(epochs.0.len(), 3, "{monitor}");
        let mut best = f64::NEG_INFINITY;
        for (e, (aucs, called_best)) in epochs.0.iter().enumerate() {
            let s = score(aucs);
            assert_eq!(*called_best, s > best, "{monitor} epoch {}", e + 1);
            best = best.max(s);
        }
        assert_eq!(Some(best), report.state.best_auc, "{monitor}");
        let test = report.test.expect("test metrics");
        assert!(test.iter().all(|m| m.logloss.is_some_and(f64::is_finite)));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_monitored_run_with_missing_labels_resumes_bit_identical() {
    let dir = data("monitor-resume", 1500);
    drop_love_labels(&dir);
    assert_resume_is_bit_identical(&with_monitor("mean"), &dir);
    let _ = std::fs::remove_dir_all(dir);
}
