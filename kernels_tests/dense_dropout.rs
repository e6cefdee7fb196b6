//! Dropout (`dropout.wgsl`): the Philox4x32-10 mask against a CPU Philox checked on Random123's
//! known answers, forward/backward mask identity, keep rate, seeding and the p = 0 identity.

use std::mem::size_of;

use wgrec::kernels::dense::dropout::{
    dropout_threshold_and_scale, Dropout, DropoutBuffers, DropoutParams, DropoutSpec,
};
use wgrec::rng::{philox4x32_10, Rng};
use wgrec::shaders;

use crate::common::{download, gpu, random_f32, upload};
use crate::dense_norm::{run, Shape};
use crate::registry::{assert_layout, offsets};

#[test]
fn philox_reference_matches_random123_known_answers() {
    // kat_vectors of Random123 1.09, philox4x32 with 10 rounds.
    assert_eq!(
        philox4x32_10([0; 4], [0; 2]),
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    );
    assert_eq!(
        philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
    );
    assert_eq!(
        philox4x32_10(
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0]
        ),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

/// Whether element `e` (= row · cols + col) of table `t` is kept, as the shader decides.
fn keep(seed: u64, step: u32, stream: u32, t: u32, e: u32, threshold: u32) -> bool {
    let bits = philox4x32_10([e / 4, t, step, stream], [seed as u32, (seed >> 32) as u32]);
    bits[(e % 4) as usize] >= threshold
}

struct DropoutRun {
    y: Vec<f32>,
    dx: Vec<f32>,
}

/// Forward on `x` and backward on `g` under (seed, step); outputs poisoned before.
fn run_dropout(
    s: Shape,
    p: f32,
    stream: u32,
    seed: u64,
    step: u32,
    x: &[f32],
    g: &[f32],
) -> DropoutRun {
    let gpu = gpu();
    let (xb, gb) = (upload(gpu, "x", x), upload(gpu, "g", g));
    let (y, dx) = (
        upload(gpu, "y", &vec![f32::NAN; s.elems()]),
        upload(gpu, "dx", &vec![f32::NAN; s.elems()]),
    );
    let spec = DropoutSpec {
        tables: s.tables as u32,
        rows_cap: s.rows_cap as u32,
        cols: s.cols as u32,
        p,
        stream,
    };
    let bufs = DropoutBuffers {
        x: &xb,
        y: &y,
        grad_y: &gb,
        grad_x: &dx,
    };
    let mut op = Dropout::new(gpu, spec, &bufs).expect("dropout");
    op.set_rows(gpu, s.rows as u32).expect("rows");
    op.set_step(gpu, seed, step);
    run(gpu, |pass| {
        op.record_forward(gpu, pass);
        op.record_backward(gpu, pass);
    });
    DropoutRun {
        y: download(gpu, &y, s.elems()),
        dx: download(gpu, &dx, s.elems()),
    }
}

fn inputs(s: Shape, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    // Never zero, so a zero output means a dropped element.
    let nonzero = |v: f32| if v == 0.0 { 0.5 } else { v };
    let x = random_f32(&mut rng, s.elems())
        .into_iter()
        .map(nonzero)
        .collect();
    let g = random_f32(&mut rng, s.elems())
        .into_iter()
        .map(nonzero)
        .collect();
    (x, g)
}

/// Kept-element mask of the live rows read off an output (NaN rows must be untouched).
fn mask_of(s: Shape, out: &[f32]) -> Vec<bool> {
    let mut mask = Vec::new();
    for t in 0..s.tables {
        for r in 0..s.rows_cap {
            for c in 0..s.cols {
                let v = out[s.at(t, r, c)];
                if r < s.rows {
                    assert!(v.is_finite(), "[{t}, {r}, {c}] not written");
                    mask.push(v != 0.0);
                } else {
                    assert!(v.is_nan(), "[{t}, {r}, {c}] written past the live rows");
                }
            }
        }
    }
    mask
}

#[test]
fn dropout_matches_philox_reference_exactly_and_backward_reuses_the_mask() {
    for (i, (tables, rows, cols, p)) in [
        (1, 33, 130, 0.3f32),
        (3, 257, 7, 0.5),
        (3, 2, 1, 0.1),
        (1, 1, 400, 0.9),
    ]
    .into_iter()
    .enumerate()
    {
        let s = Shape {
            tables,
            rows,
            rows_cap: rows + i,
            cols,
        };
        let (x, g) = inputs(s, 40 + i as u64);
        let (seed, step, stream) = (0x1234_5678_9abc_def0 ^ i as u64, 17 + i as u32, i as u32);
        let out = run_dropout(s, p, stream, seed, step, &x, &g);
        let (threshold, scale) = dropout_threshold_and_scale(p);
        for t in 0..tables {
            for r in 0..rows {
                for c in 0..cols {
                    let idx = s.at(t, r, c);
                    let e = (r * cols + c) as u32;
                    let k = keep(seed, step, stream, t as u32, e, threshold);
                    // One f32 multiply on both sides: the bits must agree.
                    let want_y = if k { x[idx] * scale } else { 0.0 };
                    let want_dx = if k { g[idx] * scale } else { 0.0 };
                    assert_eq!(out.y[idx].to_bits(), want_y.to_bits(), "y[{t}, {r}, {c}]");
                    assert_eq!(
                        out.dx[idx].to_bits(),
                        want_dx.to_bits(),
                        "dx[{t}, {r}, {c}]"
                    );
                }
            }
        }
        assert_eq!(
            mask_of(s, &out.y),
            mask_of(s, &out.dx),
            "forward and backward masks"
        );
    }
}

#[test]
fn dropout_keep_rate_is_within_a_binomial_bound() {
    for p in [0.1f32, 0.5, 0.8] {
        let s = Shape {
            tables: 3,
            rows: 257,
            rows_cap: 257,
            cols: 130,
        };
        let (x, g) = inputs(s, 50);
        let mask = mask_of(s, &run_dropout(s, p, 0, 99, 1, &x, &g).y);
        let n = mask.len() as f64;
        let kept = mask.iter().filter(|k| **k).count() as f64;
        let q = 1.0 - p as f64;
        // 5 standard deviations: a false alarm once in 1.7 million runs.
        let bound = 5.0 * (n * q * (1.0 - q)).sqrt();
        assert!(
            (kept - n * q).abs() <= bound,
            "p {p}: kept {kept} of {n}, expected {} ± {bound}",
            n * q
        );
    }
}

#[test]
fn dropout_mask_depends_on_seed_step_table_and_stream_only() {
    let s = Shape {
        tables: 3,
        rows: 33,
        rows_cap: 40,
        cols: 130,
    };
    let (x, g) = inputs(s, 60);
    let mask = |seed, step, stream| mask_of(s, &run_dropout(s, 0.5, stream, seed, step, &x, &g).y);
    let base = mask(7, 3, 0);
    assert_eq!(base, mask(7, 3, 0), "same seed and step");
    let differing = |other: &[bool]| {
        base.iter().zip(other).filter(|(a, b)| a != b).count() as f64 / base.len() as f64
    };
    // Independent masks at p = 0.5 differ in half the elements.
    for (what, other) in [
        ("step", mask(7, 4, 0)),
        ("seed", mask(8, 3, 0)),
        ("stream", mask(7, 3, 1)),
    ] {
        let d = differing(&other);
        assert!(
            (0.45..0.55).contains(&d),
            "another {what}: {d} of the elements differ"
        );
    }
    let per_table = base.len() / 3;
    let same = (0..per_table)
        .filter(|&i| base[i] == base[per_table + i])
        .count() as f64;
    assert!(
        (same / per_table as f64 - 0.5).abs() < 0.05,
        "tables 0 and 1 share {same} of {per_table}"
    );
}

#[test]
fn dropout_with_p_zero_is_the_identity() {
    let s = Shape {
        tables: 3,
        rows: 33,
        rows_cap: 33,
        cols: 7,
    };
    let (x, g) = inputs(s, 70);
    let out = run_dropout(s, 0.0, 0, 5, 9, &x, &g);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&out.y), bits(&x));
    assert_eq!(bits(&out.dx), bits(&g));
}

#[test]
fn dropout_with_no_rows_writes_nothing() {
    let s = Shape {
        tables: 3,
        rows: 0,
        rows_cap: 9,
        cols: 7,
    };
    let (x, g) = inputs(s, 80);
    let out = run_dropout(s, 0.5, 0, 5, 9, &x, &g);
    assert!(out.y.iter().chain(&out.dx).all(|v| v.is_nan()));
}

#[test]
fn dropout_rejects_bad_rate_and_rows() {
    let gpu = gpu();
    let b = upload(gpu, "b", &[1.0; 64]);
    let bufs = DropoutBuffers {
        x: &b,
        y: &b,
        grad_y: &b,
        grad_x: &b,
    };
    let spec = DropoutSpec {
        tables: 2,
        rows_cap: 4,
        cols: 8,
        p: 1.0,
        stream: 0,
    };
    let e = Dropout::new(gpu, spec, &bufs)
        .err()
        .expect("p = 1")
        .to_string();
    assert!(e.contains("p = 1"), "{e}");
    let big = DropoutSpec {
        cols: 9,
        p: 0.5,
        ..spec
    };
    let e = Dropout::new(gpu, big, &bufs)
        .err()
        .expect("short buffer")
        .to_string();
    assert!(e.contains("72"), "{e}");
}

#[test]
fn dropout_params_match_wgsl_layout() {
    assert_layout(
        &shaders::DROPOUT,
        "DropoutParams",
        size_of::<DropoutParams>(),
        offsets!(DropoutParams: rows, cols, rows_cap, tables, seed_lo, seed_hi, step, stream,
                 threshold, scale),
    );
}
