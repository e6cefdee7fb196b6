//! The multi-task mixture (`mix.wgsl`) against an f64 reference, the reference's backward against
//! finite differences of a model with stop-gradients, both against a PyTorch fixture, and the
//! logits' transpose.

use std::mem::size_of;

use wgrec::kernels::dense::mix::{
    Mix, MixBuffers, MixParams, MixSpec, MixTranspose, MixTransposeBuffers, MIX_MAX_EXPERTS,
    ROUTE_READ, ROUTE_TRAIN,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::shaders;

use crate::common::{check_gradient, download, gpu, private_gpu, random_f32, upload};
use crate::dense_mix_reference::{
    backward_ref, check_against_reference, forward_ref, inputs, run_mix, spec, Bufs, Case, Inputs,
    ALL, FORWARD, MIXED, P, PLE, PT, STEM,
};
use crate::dense_norm::{run, to_f64};
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};

/// The reference backward is the gradient of a model with stop-gradients: unit u's mixture reads
/// expert e's live output only where TRAIN is set (a frozen copy h0 elsewhere), and its gate logits
/// a = a0 + x_u · W_u, over the concatenated experts x_u, read it only where READ is. dx = da · W_uᵀ
/// is what the caller's GEMM backward hands the mixture.
#[test]
fn mix_reference_backward_matches_finite_differences_of_a_stop_gradient_model() {
    let cases = [
        Case::new(&STEM, 2, 3, 3, 4),
        Case::new(&PLE, 2, 2, 2, 3),
        Case::new(&MIXED, 3, 2, 2, 3),
        Case::new(&[ALL], 1, 3, 3, 2),
        Case::new(&STEM, 2, 3, 3, 4).uniform(),
        Case::new(&PLE, 2, 2, 2, 3).uniform(),
    ];
    for (n, k) in cases.iter().enumerate() {
        let i = inputs(k, 100 + n as u64);
        let (h0, a0, dc) = (to_f64(&i.h), to_f64(&i.a), to_f64(&i.dc));
        let (e_, w_, ew) = (k.experts, k.cols, k.experts * k.cols);
        let wg = to_f64(&random_f32(
            &mut Rng::new(200 + n as u64),
            k.units * ew * e_,
        ));
        let logits = |h: &[f64]| -> Vec<f64> {
            let mut a = a0.clone();
            for (u, b, q) in (0..k.units)
                .flat_map(|u| (0..k.rows).flat_map(move |b| (0..e_).map(move |q| (u, b, q))))
            {
                for (e, j) in (0..e_).flat_map(|e| (0..w_).map(move |j| (e, j))) {
                    let x = if k.bit(u, e, ROUTE_READ) { h } else { &h0 };
                    a[k.g(u, b, q)] += x[k.h(e, b, j)] * wg[(u * ew + e * w_ + j) * e_ + q];
                }
            }
            a
        };
        let loss = |h: &[f64], a: &[f64]| -> f64 {
            let (_, c) = forward_ref(k, h, a, |u, e| k.bit(u, e, ROUTE_TRAIN), &h0);
            c.iter().zip(&dc).map(|(c, d)| c * d).sum()
        };
        let a = logits(&h0);
        let (g, _) = forward_ref(k, &h0, &a, |_, _| true, &h0);
        let (_, da) = backward_ref(k, &h0, &g, &dc, &vec![0.0; k.sizes().3]);
        let mut dx = vec![0.0; k.sizes().3];
        for (u, b, e, j) in (0..k.units).flat_map(|u| {
            (0..k.rows)
                .flat_map(move |b| (0..e_).flat_map(move |e| (0..w_).map(move |j| (u, b, e, j))))
        }) {
            if !k.uniform {
                dx[k.x(u, b, e, j)] = (0..e_)
                    .map(|q| da[k.g(u, b, q)] * wg[(u * ew + e * w_ + j) * e_ + q])
                    .sum();
            }
        }
        let (dh, _) = backward_ref(k, &h0, &g, &dc, &dx);
        check_gradient(&format!("case {n} dh"), &h0, &dh, |h| loss(h, &logits(h)));
        if !k.uniform {
            check_gradient(&format!("case {n} da"), &a, &da, |a| loss(&h0, a));
        }
    }
}

/// The routes the models use, at awkward sizes: W = 1, 7, 33, 130, 257 (below, at and past the
/// lanes per expert), rows < rows_cap, rows = 0, E = 1, U = 1, U = 3 with E = 5, E = 40 and 70
/// (one lane per expert; experts past the workgroup size), uniform shared bottoms.
fn model_cases() -> Vec<Case> {
    let mmoe = |u: usize, e: usize| vec![ALL; u * e];
    vec![
        Case::new(&STEM, 2, 33, 40, 7),
        Case::new(&STEM, 2, 0, 5, 3),
        Case::new(&PLE, 2, 65, 65, 130),
        Case::new(&[P | ROUTE_TRAIN, P, PT, P, PT, PT], 2, 9, 12, 33),
        Case::new(&mmoe(1, 1), 1, 9, 9, 1),
        Case::new(&mmoe(3, 5), 3, 17, 20, 33),
        Case::new(&mmoe(3, 5), 3, 5, 5, 257),
        Case::new(&MIXED, 3, 31, 33, 10),
        Case::new(&mmoe(2, 40), 2, 4, 6, 9),
        Case::new(&mmoe(1, 70), 1, 3, 3, 5),
        Case::new(&mmoe(2, 3), 2, 31, 32, 10).uniform(),
        Case::new(&mmoe(3, 1), 3, 7, 8, 5).uniform(),
        Case::new(&PLE, 2, 12, 13, 6).uniform(),
        Case::new(&PLE, 2, 0, 4, 6).uniform(),
    ]
}

#[test]
fn mix_forward_and_backward_match_reference_on_model_routes_and_awkward_sizes() {
    for (n, k) in model_cases().iter().enumerate() {
        let i = inputs(k, 300 + n as u64);
        let o = run_mix(gpu(), k, &i);
        check_against_reference(k, &i, &o);
    }
}

/// STEM's stop-gradient taken to the end: no unit trains expert 1 (and none reads it), so its dh is
/// exactly 0, while every unit's gate still learns its weight on it.
#[test]
fn mix_expert_trained_by_no_unit_gets_zero_dh_while_its_gate_weights_learn() {
    for route in [[ALL, P, ALL, PT, P, ALL], [PT, P, PT, PT, P, PT]] {
        let k = Case::new(&route, 2, 19, 20, 9);
        let i = inputs(&k, 400);
        let o = run_mix(gpu(), &k, &i);
        check_against_reference(&k, &i, &o);
        for b in 0..k.rows {
            for j in 0..k.cols {
                assert_eq!(o.dh[k.h(1, b, j)].to_bits(), 0, "dh[1, {b}, {j}]");
            }
            for u in 0..k.units {
                assert!(o.da[k.g(u, b, 1)] != 0.0, "da[{u}, {b}, 1]");
            }
        }
    }
}

/// One expert: its weight is exactly 1, so every unit's mixture is h itself, and dh is the f32
/// sum in the documented order: unit 0's dc then dx, then unit 1's dc.
#[test]
fn mix_with_one_expert_passes_it_through_and_sums_units_in_order() {
    let k = Case::new(&[ALL, PT], 2, 10, 11, 13);
    let i = inputs(&k, 500);
    let o = run_mix(gpu(), &k, &i);
    for b in 0..k.rows {
        for j in 0..k.cols {
            assert_eq!(o.c[k.c(0, b, j)], i.h[k.h(0, b, j)]);
            assert_eq!(o.c[k.c(1, b, j)], i.h[k.h(0, b, j)]);
            let want = i.dc[k.c(0, b, j)] + i.dx[k.x(0, b, 0, j)] + i.dc[k.c(1, b, j)];
            assert_eq!(
                o.dh[k.h(0, b, j)].to_bits(),
                want.to_bits(),
                "dh[0, {b}, {j}]"
            );
        }
        assert!(o.g[k.g(0, b, 0)] == 1.0 && o.da[k.g(0, b, 0)] == 0.0);
    }
}

/// One logit 500 above the others: exp(500) overflows f32, so only the max shift (over the
/// present experts) keeps this finite. The cold weights underflow to exactly 0, the hot one is
/// exactly 1: each unit's mixture is the hot expert's h and da is exactly 0.
#[test]
fn mix_saturates_on_a_hot_logit() {
    for route in [STEM, PLE] {
        let k = Case::new(&route, 2, 30, 31, 70);
        let mut i = inputs(&k, 450);
        // Each unit's own expert on even rows, the shared one on odd rows: present in both routes.
        let hot = |u: usize, b: usize| if b.is_multiple_of(2) { u } else { 2 };
        for u in 0..k.units {
            for b in 0..k.rows_cap {
                i.a[k.g(u, b, hot(u, b))] += 500.0;
            }
        }
        let o = run_mix(gpu(), &k, &i);
        for (u, b) in (0..k.units).flat_map(|u| (0..k.rows).map(move |b| (u, b))) {
            for e in 0..k.experts {
                let want = if e == hot(u, b) { 1.0 } else { 0.0 };
                assert_eq!(o.g[k.g(u, b, e)], want, "g[{u}, {b}, {e}]");
                assert_eq!(o.da[k.g(u, b, e)], 0.0, "da[{u}, {b}, {e}]");
            }
            for j in 0..k.cols {
                assert_eq!(
                    o.c[k.c(u, b, j)],
                    i.h[k.h(hot(u, b), b, j)],
                    "c[{u}, {b}, {j}]"
                );
            }
        }
        check_against_reference(&k, &i, &o);
    }
}

#[test]
fn mix_matches_pytorch_fixture() {
    let fx = Fixture::load("mix");
    for case in ["stem", "ple", "mmoe", "mixed", "uniform", "uniform_ple"] {
        let key = |t: &str| format!("{case}.{t}");
        let (shape, uniform) = (fx.shape(&key("g")).to_vec(), !fx.has(&key("a")));
        let mut k = Case::new(
            &fx.u32(&key("route")),
            shape[0],
            shape[1],
            shape[1],
            fx.shape(&key("c"))[2],
        );
        k.uniform = uniform;
        let (hs, _, gates, xs) = k.sizes();
        let i = Inputs {
            h: fx.f32(&key("h")),
            a: if uniform {
                vec![0.5; gates]
            } else {
                fx.f32(&key("a"))
            },
            dc: fx.f32(&key("dc")),
            dx: if k.dx {
                fx.f32(&key("dx"))
            } else {
                vec![0.5; xs]
            },
        };
        assert_eq!(i.h.len(), hs, "{case}.h");
        // The reference agrees with autograd to f64 rounding.
        let (h, a) = (to_f64(&i.h), to_f64(&i.a));
        let (g, c) = forward_ref(&k, &h, &a, |_, _| true, &h);
        let (dh, da) = backward_ref(&k, &h, &g, &to_f64(&i.dc), &to_f64(&i.dx));
        let mut pairs = vec![
            ("g", &g, fx.f64(&key("g"))),
            ("c", &c, fx.f64(&key("c"))),
            ("dh", &dh, fx.f64(&key("dh"))),
        ];
        if !uniform {
            pairs.push(("da", &da, fx.f64(&key("da"))));
        }
        for (name, mine, torch) in pairs {
            assert_eq!(mine.len(), torch.len(), "{case}.{name} length");
            for (n, (x, y)) in mine.iter().zip(torch).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                    "{case}.{name}[{n}]: {x} vs {y}"
                );
            }
        }
        // The GPU against the reference (so against the fixture), with the reference's tolerances.
        let o = run_mix(gpu(), &k, &i);
        check_against_reference(&k, &i, &o);
        for (n, (&got, &want)) in o.dh.iter().zip(fx.f64(&key("dh"))).enumerate() {
            FORWARD.check("torch dh", n, got, want, 2.0 * k.units as f64);
        }
    }
}

#[test]
fn mix_transpose_round_trips_the_towers_logits_and_leaves_padding_rows_alone() {
    let gpu = gpu();
    for (units, rows, cap) in [
        (3usize, 37usize, 40usize),
        (1, 5, 5),
        (2, 0, 3),
        (5, 130, 131),
    ] {
        let mut rng = Rng::new(600 + units as u64);
        let by_unit_v = random_f32(&mut rng, units * cap);
        let grad_v = random_f32(&mut rng, units * cap);
        let nan = || upload(gpu, "poisoned", &vec![f32::NAN; units * cap]);
        let (by_unit, grad_by_row) = (
            upload(gpu, "by_unit", &by_unit_v),
            upload(gpu, "grad", &grad_v),
        );
        let (by_row, grad_by_unit) = (nan(), nan());
        let bufs = MixTransposeBuffers {
            by_unit: &by_unit,
            by_row: &by_row,
            grad_by_row: &grad_by_row,
            grad_by_unit: &grad_by_unit,
        };
        let mut op = MixTranspose::new(gpu, units as u32, cap as u32, &bufs).expect("transpose");
        op.set_rows(gpu, rows as u32).expect("rows");
        run(gpu, |pass| {
            op.record_forward(gpu, pass);
            op.record_backward(gpu, pass);
        });
        let (rows_out, units_out) = (
            download(gpu, &by_row, units * cap),
            download(gpu, &grad_by_unit, units * cap),
        );
        for b in 0..cap {
            for u in 0..units {
                let (r, t) = (rows_out[b * units + u], units_out[u * cap + b]);
                if b < rows {
                    assert_eq!(
                        r.to_bits(),
                        by_unit_v[u * cap + b].to_bits(),
                        "by_row[{b}, {u}]"
                    );
                    assert_eq!(
                        t.to_bits(),
                        grad_v[b * units + u].to_bits(),
                        "grad_by_unit[{u}, {b}]"
                    );
                } else {
                    assert!(
                        r.is_nan() && t.is_nan(),
                        "row {b} written past the live rows"
                    );
                }
            }
        }
        // Back again: by_row as the gradient returns by_unit exactly.
        let back = nan();
        let bufs = MixTransposeBuffers {
            grad_by_row: &by_row,
            grad_by_unit: &back,
            ..bufs
        };
        let mut op = MixTranspose::new(gpu, units as u32, cap as u32, &bufs).expect("transpose");
        op.set_rows(gpu, rows as u32).expect("rows");
        run(gpu, |pass| op.record_backward(gpu, pass));
        let back = download(gpu, &back, units * cap);
        for u in 0..units {
            assert_eq!(
                &back[u * cap..u * cap + rows],
                &by_unit_v[u * cap..u * cap + rows]
            );
        }
    }
}

#[test]
fn mix_is_bitwise_deterministic() {
    for k in [
        Case::new(&STEM, 2, 257, 257, 130),
        Case::new(&MIXED, 3, 100, 100, 33),
    ] {
        let i = inputs(&k, 700);
        let bits = || {
            let o = run_mix(gpu(), &k, &i);
            [o.g, o.c, o.dh, o.da]
                .concat()
                .into_iter()
                .map(f32::to_bits)
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(), bits());
    }
}

#[test]
fn mix_records_two_dispatches_each_way_whatever_units_and_experts() {
    let gpu = private_gpu();
    for (units, experts, uniform) in [
        (1usize, 1usize, false),
        (3, 5, false),
        (2, 100, false),
        (4, 3, true),
    ] {
        let mut k = Case::new(&vec![ALL; units * experts], units, 8, 8, 3);
        if uniform {
            k = k.uniform();
        }
        let bufs = Bufs::new(&gpu, &k, &inputs(&k, 650), 0.0);
        let op = Mix::new(&gpu, &spec(&k), &bufs.mix(&k)).expect("mix");
        let before = gpu.dispatches();
        run_once(&gpu, |pass| op.record_forward(&gpu, pass));
        let forward = gpu.dispatches() - before;
        run_once(&gpu, |pass| op.record_backward(&gpu, pass));
        let backward = gpu.dispatches() - before - forward;
        gpu.sync().expect("gpu");
        assert_eq!(
            (forward, backward),
            op.dispatches(),
            "{units} units × {experts} experts"
        );
        assert_eq!(op.dispatches(), (2, if uniform { 1 } else { 2 }));
    }
}

#[test]
fn mix_rejects_bad_routes_modes_shapes_and_short_buffers() {
    let gpu = gpu();
    let k = Case::new(&STEM, 2, 4, 4, 5);
    let bufs = Bufs::new(gpu, &k, &inputs(&k, 660), 1.0);
    let short = upload(gpu, "short", &vec![1.0; k.sizes().3 - 1]);
    let good = bufs.mix(&k);
    let mut op = Mix::new(gpu, &spec(&k), &good).expect("fits");
    assert!(op.set_rows(gpu, 5).is_err());
    op.set_rows(gpu, 4).expect("rows = cap");
    let error = |s: &MixSpec, b: &MixBuffers| match Mix::new(gpu, s, b) {
        Ok(_) => panic!("{s:?} accepted"),
        Err(e) => e.to_string(),
    };
    let base = spec(&k);
    let route = |r: &'static [u32]| MixSpec { route: r, ..base };
    for (s, b, want) in [
        (
            route(&[ALL, P, ALL, P, ALL]),
            &good,
            "route holds 5 entries, units 2 × experts 3",
        ),
        (
            route(&[ALL, P, ALL, P, ALL, 8]),
            &good,
            "route[unit 1, expert 2] = 0x8 has unknown bits",
        ),
        (
            route(&[ALL, ROUTE_TRAIN, ALL, P, ALL, ALL]),
            &good,
            "route[unit 0, expert 1] = 0x2 sets TRAIN or READ on an absent expert",
        ),
        (
            route(&[0, 0, 0, P, ALL, ALL]),
            &good,
            "unit 0 has no present expert",
        ),
        (
            MixSpec {
                gate_input_grad: false,
                ..base
            },
            &MixBuffers {
                grad_x: None,
                ..good
            },
            "sets READ without a gate-input gradient",
        ),
        (
            MixSpec {
                gate_input_grad: false,
                route: &[PT; 6],
                ..base
            },
            &good,
            "grad_x is given exactly when",
        ),
        (
            base,
            &MixBuffers {
                logits: None,
                ..good
            },
            "logits and grad_logits are given exactly when",
        ),
        (
            MixSpec {
                uniform: true,
                ..base
            },
            &MixBuffers {
                logits: None,
                grad_logits: None,
                ..good
            },
            "a uniform mixture has no gate input",
        ),
        (
            base,
            &MixBuffers {
                grad_x: Some(&short),
                ..good
            },
            "buffer grad_x holds 476 bytes, 480 needed (120 f32)",
        ),
        (
            MixSpec {
                experts: MIX_MAX_EXPERTS + 1,
                ..base
            },
            &good,
            "1 ≤ experts ≤ 256",
        ),
        (MixSpec { units: 0, ..base }, &good, "need units, cols ≥ 1"),
        (MixSpec { cols: 0, ..base }, &good, "need units, cols ≥ 1"),
    ] {
        let e = error(&s, b);
        assert!(e.contains(want), "{e}");
    }
    let t = MixTransposeBuffers {
        by_unit: &bufs.g,
        by_row: &bufs.g,
        grad_by_row: &bufs.g,
        grad_by_unit: &short,
    };
    assert!(MixTranspose::new(gpu, 2, 4, &t).is_ok());
    let t = MixTransposeBuffers {
        by_row: &upload(gpu, "short", &[1.0; 7]),
        ..t
    };
    let e = MixTranspose::new(gpu, 2, 4, &t)
        .err()
        .expect("short by_row")
        .to_string();
    assert!(e.contains("by_row") && e.contains("8 f32"), "{e}");
    assert!(MixTranspose::new(gpu, 0, 4, &t).is_err());
}

#[test]
fn mix_params_match_wgsl_layout() {
    assert_layout(
        &shaders::MIX,
        "MixParams",
        size_of::<MixParams>(),
        offsets!(MixParams: units, experts, rows, rows_cap, cols, flags),
    );
}
