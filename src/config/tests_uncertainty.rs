//! The `[[task]] uncertainty` key: kinds, defaults, bounds, one head for all tasks, bad keys.

use super::tests::GOOD;
use super::*;

fn with(first: &str, second: Option<&str>) -> std::result::Result<ModelConfig, String> {
    let mut text = GOOD.replacen("alpha = 0.6\n", &format!("alpha = 0.6\n{first}\n"), 1);
    if let Some(s) = second {
        text.push_str(&format!("\n[[task]]\nname = \"like\"\n{s}\n"));
        // [[task]] after [train] would belong to it: move [train] last.
        let train = text.find("[train]").expect("train");
        let end = text.find("\n[[task]]\nname = \"like\"").expect("like");
        let section = text[train..end].to_string();
        text = format!("{}{}\n{}", &text[..train], &text[end..], section);
    }
    ModelConfig::parse(&text, "m.toml").map_err(|e| e.to_string())
}

#[test]
fn bootstrap_defaults_to_eight_poisson_heads_and_gaussian_has_two_values() {
    let c = with("uncertainty = { kind = \"bootstrap\" }", None).expect("parses");
    let u = c.uncertainty().expect("a head");
    assert_eq!(
        u,
        Uncertainty::Bootstrap {
            heads: 8,
            mask: BootstrapMask::Poisson
        }
    );
    assert_eq!(u.width(), 8);
    let c = with("uncertainty = { kind = \"gaussian\" }", None).expect("parses");
    assert_eq!(c.uncertainty(), Some(Uncertainty::Gaussian));
    assert_eq!(c.uncertainty().map(Uncertainty::width), Some(2));
    let c = with(
        "",
        Some("uncertainty = { kind = \"bootstrap\", heads = 3, mask = \"bernoulli\" }"),
    );
    let c = c.expect("parses");
    assert_eq!(c.uncertain_outputs(), vec![false, true]);
    assert!(with("", None).expect("parses").uncertainty().is_none());
}

#[test]
fn bad_heads_and_mixed_heads_name_their_key() {
    let e = with("uncertainty = { kind = \"bootstrap\", heads = 1 }", None).unwrap_err();
    assert!(
        e.contains("task[0].uncertainty.heads") && e.contains("2 to 64"),
        "{e}"
    );
    let e = with("uncertainty = { kind = \"bootstrap\", heads = 65 }", None).unwrap_err();
    assert!(e.contains("task[0].uncertainty.heads"), "{e}");
    let e = with(
        "uncertainty = { kind = \"gaussian\" }",
        Some("uncertainty = { kind = \"bootstrap\" }"),
    )
    .unwrap_err();
    assert!(
        e.contains("task[1].uncertainty") && e.contains("same one"),
        "{e}"
    );
    let e = with("uncertainty = { kind = \"dropout\" }", None).unwrap_err();
    assert!(e.contains("dropout") && e.contains("bootstrap"), "{e}");
    let e = with("uncertainty = { kind = \"gaussian\", heads = 4 }", None).unwrap_err();
    assert!(e.contains("heads"), "{e}");
    let e = with(
        "uncertainty = { kind = \"bootstrap\", mask = \"uniform\" }",
        None,
    )
    .unwrap_err();
    assert!(e.contains("uniform"), "{e}");
}
