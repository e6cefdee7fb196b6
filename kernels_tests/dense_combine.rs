//! Mean-combine and concatenation across tables (`combine.wgsl`) against f64 references.

use std::mem::size_of;

use wgrec::kernels::dense::combine::{Combine, CombineBuffers, CombineKind, CombineParams};
use wgrec::rng::Rng;
use wgrec::shaders;

use crate::common::{download, gpu, random_f32, upload, Tolerance};
use crate::dense_norm::{run, Shape};
use crate::registry::{assert_layout, offsets};

/// Mean: a serial f32 sum of M ≤ 8 terms and one division, ≤ (M + 1)·ε of Σ|x|/M.
const MEAN: Tolerance = Tolerance {
    relative: 1e-6,
    absolute: 0.0,
};

/// Forward and backward outputs, as downloaded (poisoned with NaN before the run).
fn run_combine(kind: CombineKind, s: Shape, x: &[f32], g: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let gpu = gpu();
    let combined = match kind {
        CombineKind::Mean => s.rows_cap * s.cols,
        CombineKind::Concat => s.elems(),
    };
    let (xb, gb) = (upload(gpu, "x", x), upload(gpu, "g", g));
    let (h, dx) = (
        upload(gpu, "h", &vec![f32::NAN; combined]),
        upload(gpu, "dx", &vec![f32::NAN; s.elems()]),
    );
    let bufs = CombineBuffers {
        x: &xb,
        h: &h,
        grad_h: &gb,
        grad_x: &dx,
    };
    let (t, cap, c) = (s.tables as u32, s.rows_cap as u32, s.cols as u32);
    let mut op = Combine::new(gpu, kind, t, cap, c, &bufs).expect("combine");
    op.set_rows(gpu, s.rows as u32).expect("rows");
    run(gpu, |pass| {
        op.record_forward(gpu, pass);
        op.record_backward(gpu, pass);
    });
    (download(gpu, &h, combined), download(gpu, &dx, s.elems()))
}

fn check_mean(s: Shape, seed: u64) {
    let mut rng = Rng::new(seed);
    let x = random_f32(&mut rng, s.elems());
    let g = random_f32(&mut rng, s.rows_cap * s.cols);
    let (h, dx) = run_combine(CombineKind::Mean, s, &x, &g);
    let m = s.tables as f64;
    for b in 0..s.rows_cap {
        for j in 0..s.cols {
            let i = b * s.cols + j;
            if b >= s.rows {
                assert!(h[i].is_nan(), "h[{b}, {j}] written past the live rows");
                continue;
            }
            let want: f64 = (0..s.tables).map(|t| x[s.at(t, b, j)] as f64).sum::<f64>() / m;
            let mag: f64 = (0..s.tables)
                .map(|t| (x[s.at(t, b, j)] as f64).abs())
                .sum::<f64>()
                / m;
            MEAN.check("mean h", i, h[i], want, mag);
            for t in 0..s.tables {
                MEAN.check(
                    "mean dx",
                    s.at(t, b, j),
                    dx[s.at(t, b, j)],
                    g[i] as f64 / m,
                    g[i].abs() as f64 / m,
                );
            }
        }
    }
    for t in 0..s.tables {
        for b in s.rows..s.rows_cap {
            assert!(
                (0..s.cols).all(|j| dx[s.at(t, b, j)].is_nan()),
                "dx[{t}, {b}] written"
            );
        }
    }
}

fn check_concat(s: Shape, seed: u64) {
    let mut rng = Rng::new(seed);
    let x = random_f32(&mut rng, s.elems());
    let g = random_f32(&mut rng, s.elems());
    let (h, dx) = run_combine(CombineKind::Concat, s, &x, &g);
    let width = s.tables * s.cols;
    for t in 0..s.tables {
        for b in 0..s.rows_cap {
            for j in 0..s.cols {
                let (hi, xi) = (b * width + t * s.cols + j, s.at(t, b, j));
                if b < s.rows {
                    // A copy: bits equal.
                    assert_eq!(
                        h[hi].to_bits(),
                        x[xi].to_bits(),
                        "h[{b}, {}]",
                        t * s.cols + j
                    );
                    assert_eq!(dx[xi].to_bits(), g[hi].to_bits(), "dx[{t}, {b}, {j}]");
                } else {
                    assert!(
                        h[hi].is_nan() && dx[xi].is_nan(),
                        "row {b} written past the live rows"
                    );
                }
            }
        }
    }
}

const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 7),
    (1, 33, 130),
    (3, 2, 1),
    (3, 257, 400),
    (3, 33, 7),
    (5, 0, 7),
    (1, 0, 3),
];

#[test]
fn mean_combine_and_its_backward_match_reference() {
    for (i, (tables, rows, cols)) in SHAPES.into_iter().enumerate() {
        check_mean(
            Shape {
                tables,
                rows,
                rows_cap: rows + i,
                cols,
            },
            10 + i as u64,
        );
    }
}

#[test]
fn concat_and_split_move_every_element_exactly() {
    for (i, (tables, rows, cols)) in SHAPES.into_iter().enumerate() {
        check_concat(
            Shape {
                tables,
                rows,
                rows_cap: rows + i,
                cols,
            },
            20 + i as u64,
        );
    }
}

#[test]
fn mean_combine_is_bitwise_deterministic() {
    let s = Shape {
        tables: 5,
        rows: 257,
        rows_cap: 257,
        cols: 130,
    };
    let mut rng = Rng::new(30);
    let (x, g) = (
        random_f32(&mut rng, s.elems()),
        random_f32(&mut rng, s.rows_cap * s.cols),
    );
    let bits = || {
        let (h, dx) = run_combine(CombineKind::Mean, s, &x, &g);
        h.into_iter()
            .chain(dx)
            .map(f32::to_bits)
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(), bits());
}

#[test]
fn combine_rejects_short_buffers_and_too_many_rows() {
    let gpu = gpu();
    let x = upload(gpu, "x", &[1.0; 3 * 4 * 5]);
    let h = upload(gpu, "h", &[1.0; 4 * 5]);
    let (g, dx) = (
        upload(gpu, "g", &[1.0; 4 * 5]),
        upload(gpu, "dx", &[1.0; 3 * 4 * 5]),
    );
    let bufs = CombineBuffers {
        x: &x,
        h: &h,
        grad_h: &g,
        grad_x: &dx,
    };
    let mut mean = Combine::new(gpu, CombineKind::Mean, 3, 4, 5, &bufs).expect("mean fits");
    assert!(mean.set_rows(gpu, 5).is_err());
    let e = Combine::new(gpu, CombineKind::Concat, 3, 4, 5, &bufs)
        .err()
        .expect("h too short")
        .to_string();
    assert!(e.contains("60"), "{e}");
}

#[test]
fn combine_params_match_wgsl_layout() {
    assert_layout(
        &shaders::COMBINE,
        "CombineParams",
        size_of::<CombineParams>(),
        offsets!(CombineParams: tables, rows, rows_cap, cols),
    );
}
