//! `Predictor` on snapshots: what it loads from a publish folder, and `reload`.

use wgrec::run::snapshot::publish;
use wgrec::serve::Predictor;

use crate::common::*;

#[test]
fn predictor_reload_takes_newer_snapshots_and_survives_a_broken_one() {
    let f = fixture();
    let gpu = &f.gpu;
    let dir = scratch("reload");
    let first = publish_run(&dir, 1, &f.run, Weights::Trained);
    let mut predictor = Predictor::load(gpu, &dir).expect("load the publish folder");
    assert_eq!(predictor.version(), Some(1));
    assert_eq!(predictor.reload(gpu).expect("nothing newer"), None);
    let v1 = reference_scores(&mut predictor, gpu);
    assert_eq!(v1, reference_of(&first));

    // Same model file and tensors: the graph is kept, only the weights change.
    let second = publish_run(&dir, 2, &f.run, Weights::Scaled(0.5));
    assert_eq!(predictor.reload(gpu).expect("reload"), Some(2));
    let v2 = reference_scores(&mut predictor, gpu);
    assert_eq!(v2, reference_of(&second));
    assert_ne!(v1, v2);

    publish_run(&dir, 3, &f.run, Weights::Broken);
    assert!(predictor.reload(gpu).is_err(), "a broken snapshot loaded");
    assert_eq!(predictor.version(), Some(2));
    assert_eq!(
        reference_scores(&mut predictor, gpu),
        v2,
        "a failed reload changed the model"
    );

    // Another graph (wider tables): rebuilt.
    let fourth = publish_run(&dir, 4, &f.wide_run, Weights::Trained);
    assert_eq!(predictor.reload(gpu).expect("reload"), Some(4));
    assert_eq!(reference_scores(&mut predictor, gpu), reference_of(&fourth));
    assert_eq!(predictor.checkpoint(), fourth.join("model.safetensors"));
}

#[test]
fn a_run_folder_has_no_version_and_an_empty_publish_folder_is_a_clear_error() {
    let f = fixture();
    let mut predictor = Predictor::load_with_batch(&f.gpu, &f.run, 300).expect("load");
    assert_eq!((predictor.version(), predictor.max_batch()), (None, 300));
    assert_eq!(predictor.reload(&f.gpu).expect("no reload"), None);

    let dir = scratch("empty-publish");
    let crashed = publish(&dir, 1, 1, |_| Err(wgrec::Error::Dataset("crash".into())));
    assert!(crashed.is_err());
    std::fs::create_dir(dir.join(".tmp-snapshot-00000000000000000001")).expect("mkdir");
    let err = Predictor::load(&f.gpu, &dir)
        .err()
        .expect("no snapshot to load");
    assert!(
        err.to_string().contains("no complete snapshot yet"),
        "{err}"
    );
}
