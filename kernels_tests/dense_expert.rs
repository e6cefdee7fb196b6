//! The expert layer: every expert type batched over M tables — the dispatch count of a whole mixed
//! expert layer does not depend on M, and batching is exact (table t of an M-table expert gives the
//! same bits as a one-table expert fed table t's inputs and parameters).
//! Each expert family's arithmetic is checked against its f64 reference and PyTorch in its own
//! module (dense_cross, dense_pairwise, dense_mlp).

use wgrec::kernels::dense::expert::{Expert, ExpertKind, ExpertSpec};
use wgrec::kernels::dense::pairwise::PairwiseKind;
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::{download, gpu, private_gpu, random_f32, upload};

const FIELDS: u32 = 5;
const DIM: u32 = 4;

fn kinds() -> Vec<ExpertKind> {
    vec![
        ExpertKind::Dcn {
            layers: 2,
            rank: None,
        },
        ExpertKind::Dcn {
            layers: 3,
            rank: Some(3),
        },
        ExpertKind::Pairwise(PairwiseKind::Fm),
        ExpertKind::Pairwise(PairwiseKind::FwFm),
        ExpertKind::Pairwise(PairwiseKind::GwPfm {
            blocks: 2,
            partition: vec![0, 1, 1, 0, 1],
        }),
        ExpertKind::Pairwise(PairwiseKind::Ipnn),
        ExpertKind::Mlp { widths: vec![8, 6] },
    ]
}

fn spec(kind: &ExpertKind, tables: u32, rows_cap: u32) -> ExpertSpec {
    ExpertSpec {
        kind: kind.clone(),
        tables,
        rows_cap,
        fields: FIELDS,
        dim: DIM,
        relu: true,
    }
}

struct Built {
    expert: Expert,
    x: wgpu::Buffer,
    dx: wgpu::Buffer,
}

fn build(gpu: &Gpu, spec: &ExpertSpec, rng: &mut Rng, rows: u32) -> Built {
    let n = (spec.tables * spec.rows_cap * spec.in_cols()) as usize;
    let x = upload(gpu, "x", &random_f32(rng, n));
    let dx = upload(gpu, "dx", &vec![f32::NAN; n]);
    let mut expert = Expert::new(gpu, spec, &x, &dx).expect("expert");
    expert.init(gpu, rng);
    let out = (spec.tables * spec.rows_cap * spec.out_cols()) as usize;
    gpu.queue.write_buffer(
        expert.grad_output(),
        0,
        bytemuck::cast_slice(&random_f32(rng, out)),
    );
    expert.set_rows(gpu, rows).expect("rows");
    Built { expert, x, dx }
}

#[test]
fn a_mixed_expert_layer_costs_the_same_dispatches_for_one_table_or_eight() {
    let gpu = private_gpu();
    let mut rng = Rng::new(21);
    let mut counts = Vec::new();
    for tables in [1, 8] {
        let layer: Vec<Built> = kinds()
            .iter()
            .map(|k| build(&gpu, &spec(k, tables, 6), &mut rng, 6))
            .collect();
        let before = gpu.dispatches();
        run_once(&gpu, |pass| {
            for b in &layer {
                b.expert.record_forward(&gpu, pass);
            }
        });
        let mid = gpu.dispatches();
        run_once(&gpu, |pass| {
            for b in layer.iter().rev() {
                b.expert.record_backward(&gpu, pass);
            }
        });
        let after = gpu.dispatches();
        gpu.sync().expect("expert layer");
        let stated: (u64, u64) = layer.iter().fold((0, 0), |acc, b| {
            let (f, w) = b.expert.dispatches();
            (acc.0 + f, acc.1 + w)
        });
        assert_eq!((mid - before, after - mid), stated, "{tables} tables");
        counts.push(stated);
    }
    assert_eq!(counts[0], counts[1], "dispatches grow with the tables");
    // One dispatch computes a pairwise expert of all tables.
    for k in kinds() {
        if let ExpertKind::Pairwise(_) = k {
            let b = build(&gpu, &spec(&k, 8, 3), &mut rng, 3);
            assert_eq!(b.expert.dispatches().0, 1, "{k:?}");
        }
    }
}

/// Reads the `t`-th of `tables` equal slices of `buffer` (`total` f32s).
fn slice(gpu: &Gpu, buffer: &wgpu::Buffer, total: u64, tables: u32, t: u32) -> Vec<u32> {
    let per = total / tables as u64;
    gpu.read::<f32>(buffer, t as u64 * per, per)
        .expect("readback")
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn batching_over_tables_is_exact() {
    let gpu = gpu();
    let mut rng = Rng::new(22);
    let (tables, cap, rows) = (3u32, 7u32, 5u32);
    for kind in kinds() {
        let many = spec(&kind, tables, cap);
        let m = build(gpu, &many, &mut rng, rows);
        run_once(gpu, |pass| {
            m.expert.record_forward(gpu, pass);
            m.expert.record_backward(gpu, pass);
        });
        let (in_cols, out_cols) = (many.in_cols() as u64, many.out_cols() as u64);
        let x_all = download(gpu, &m.x, (tables as u64 * cap as u64 * in_cols) as usize);
        for t in 0..tables {
            // The same table alone: its input slab and its parameters.
            let one_spec = spec(&kind, 1, cap);
            let per_x = (cap as u64 * in_cols) as usize;
            let x = upload(
                gpu,
                "x",
                &x_all[t as usize * per_x..(t as usize + 1) * per_x],
            );
            let dx = upload(gpu, "dx", &vec![f32::NAN; per_x]);
            let mut one = Expert::new(gpu, &one_spec, &x, &dx).expect("expert");
            for (p1, pm) in one.parameters().iter().zip(m.expert.parameters()) {
                assert_eq!(p1.name, pm.name);
                let values = gpu
                    .read::<f32>(pm.value, t as u64 * p1.len, p1.len)
                    .expect("readback");
                gpu.queue
                    .write_buffer(p1.value, 0, bytemuck::cast_slice(&values));
            }
            let out_len = cap as u64 * out_cols;
            let dy = gpu
                .read::<f32>(m.expert.grad_output(), t as u64 * out_len, out_len)
                .expect("readback");
            gpu.queue
                .write_buffer(one.grad_output(), 0, bytemuck::cast_slice(&dy));
            one.set_rows(gpu, rows).expect("rows");
            run_once(gpu, |pass| {
                one.record_forward(gpu, pass);
                one.record_backward(gpu, pass);
            });
            let rows_of = |v: Vec<u32>, cols: u64| v[..(rows as u64 * cols) as usize].to_vec();
            let total_out = tables as u64 * out_len;
            assert_eq!(
                rows_of(
                    slice(gpu, m.expert.output(), total_out, tables, t),
                    out_cols
                ),
                rows_of(slice(gpu, one.output(), out_len, 1, 0), out_cols),
                "{kind:?} table {t}: output"
            );
            let total_x = tables as u64 * cap as u64 * in_cols;
            assert_eq!(
                rows_of(slice(gpu, &m.dx, total_x, tables, t), in_cols),
                rows_of(slice(gpu, &dx, per_x as u64, 1, 0), in_cols),
                "{kind:?} table {t}: dx"
            );
            for (p1, pm) in one.parameters().iter().zip(m.expert.parameters()) {
                assert_eq!(
                    slice(gpu, pm.grad, pm.len, tables, t),
                    slice(gpu, p1.grad, p1.len, 1, 0),
                    "{kind:?} table {t}: gradient of {}",
                    p1.name
                );
            }
        }
    }
}

#[test]
fn shapes_and_errors() {
    let gpu = gpu();
    let s = spec(&ExpertKind::Pairwise(PairwiseKind::Ipnn), 2, 4);
    assert_eq!((s.in_cols(), s.out_cols()), (FIELDS * DIM, 10));
    let g = spec(
        &ExpertKind::Pairwise(PairwiseKind::GwPfm {
            blocks: 2,
            partition: vec![0, 1, 1, 0, 1],
        }),
        2,
        4,
    );
    assert_eq!((g.in_cols(), g.out_cols()), (FIELDS * 2 * DIM, DIM));
    let small = gpu.storage_from("small", &[0f32; 4]);
    let err = Expert::new(gpu, &s, &small, &small)
        .err()
        .expect("a short input is refused")
        .to_string();
    assert!(err.contains("x"), "{err}");
    let zero = ExpertSpec { fields: 0, ..s };
    assert!(Expert::new(gpu, &zero, &small, &small).is_err());
}
