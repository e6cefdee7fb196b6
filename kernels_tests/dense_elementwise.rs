//! The graph's glue ops (`elementwise.wgsl`): in-place ReLU, its in-place gradient mask, and the
//! strided block copy, against CPU references. All three are exact (a comparison, a select, a
//! copy), so results are compared bit for bit; everything outside the live block must keep its
//! poison (NaN) bit for bit.

use std::mem::size_of;

use wgrec::kernels::dense::elementwise::{Block, CopyColumns, ElementwiseParams, Relu};
use wgrec::rng::Rng;
use wgrec::shaders;

use crate::common::{download, gpu, random_f32, upload};
use crate::dense_norm::{run, Shape};
use crate::registry::{assert_layout, offsets};

/// A poison bit pattern that no kernel computes (a NaN with a payload).
const POISON: f32 = f32::from_bits(0x7fc0_1234);

/// Random values with exact zeros, negative zeros and tiny values mixed in (ReLU's edge cases).
fn edgy(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut v = random_f32(rng, n);
    for (i, x) in v.iter_mut().enumerate() {
        match i % 7 {
            0 => *x = 0.0,
            3 => *x = -0.0,
            5 => *x *= 1e-30,
            _ => {}
        }
    }
    v
}

/// Runs ReLU forward on `y` and the gradient mask on `g` (using the forward's output), returning
/// both buffers whole. Rows past `rows` are NaN-poisoned in both inputs.
fn run_relu(s: Shape, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut y = edgy(&mut rng, s.elems());
    let mut g = random_f32(&mut rng, s.elems());
    for t in 0..s.tables {
        for r in 0..s.rows_cap {
            for j in 0..s.cols {
                let i = s.at(t, r, j);
                if r >= s.rows {
                    y[i] = POISON;
                    g[i] = POISON;
                } else if j % 5 == 1 {
                    // A NaN gradient behind a dead unit must be masked out; behind a live one kept.
                    g[i] = f32::NAN;
                }
            }
        }
    }
    let gpu = gpu();
    let (yb, gb) = (upload(gpu, "y", &y), upload(gpu, "g", &g));
    let (t, cap, c) = (s.tables as u32, s.rows_cap as u32, s.cols as u32);
    let mut op = Relu::new(gpu, t, cap, c, &yb, &gb).expect("relu");
    op.set_rows(gpu, s.rows as u32).expect("rows");
    run(gpu, |pass| {
        op.record_forward(gpu, pass);
        op.record_backward(gpu, pass);
    });
    let (y_out, g_out) = (download(gpu, &yb, s.elems()), download(gpu, &gb, s.elems()));
    for i in 0..s.elems() {
        let r = (i / s.cols) % s.rows_cap;
        if r >= s.rows {
            assert_eq!(
                y_out[i].to_bits(),
                POISON.to_bits(),
                "{s:?}: y[{i}] past the rows"
            );
            assert_eq!(
                g_out[i].to_bits(),
                POISON.to_bits(),
                "{s:?}: g[{i}] past the rows"
            );
            continue;
        }
        let want_y = if y[i] > 0.0 { y[i] } else { 0.0 };
        // -0.0 and 0.0 are both acceptable for max(-0, 0); compare values there, bits elsewhere.
        assert!(
            y_out[i] == want_y && (want_y == 0.0 || y_out[i].to_bits() == want_y.to_bits()),
            "{s:?}: relu y[{i}] = {} from {}, want {want_y}",
            y_out[i],
            y[i]
        );
        if want_y > 0.0 && g[i].is_nan() {
            assert!(
                g_out[i].is_nan(),
                "{s:?}: g[{i}] NaN behind a live unit dropped"
            );
        } else if want_y > 0.0 {
            assert_eq!(
                g_out[i].to_bits(),
                g[i].to_bits(),
                "{s:?}: g[{i}] live unit"
            );
        } else {
            assert!(
                g_out[i] == 0.0,
                "{s:?}: g[{i}] = {} behind a dead unit (y = {})",
                g_out[i],
                y[i]
            );
        }
    }
}

#[test]
fn relu_forward_and_mask_are_exact_with_untouched_tails() {
    for (i, &(tables, rows, rows_cap, cols)) in [
        (1, 1, 1, 1),
        (1, 5, 8, 3),
        (2, 7, 7, 13),
        (3, 33, 40, 67),
        (4, 65, 65, 1),
        (2, 129, 200, 31),
    ]
    .iter()
    .enumerate()
    {
        let s = Shape {
            tables,
            rows,
            rows_cap,
            cols,
        };
        run_relu(s, 100 + i as u64);
    }
}

#[test]
fn relu_with_zero_rows_touches_nothing() {
    run_relu(
        Shape {
            tables: 3,
            rows: 0,
            rows_cap: 9,
            cols: 5,
        },
        7,
    );
}

/// One copy problem: `[tables, rows (of rows_cap), cols]` from `from` in a buffer of `src_len`
/// floats to `to` in one of `dst_len`.
#[derive(Debug, Clone, Copy)]
struct CopyCase {
    tables: u32,
    rows: u32,
    rows_cap: u32,
    cols: u32,
    from: Block,
    to: Block,
    src_len: usize,
    dst_len: usize,
}

fn at(b: Block, t: u32, r: u32, j: u32) -> usize {
    (b.at + t as u64 * b.stride + r as u64 * b.ld + j as u64) as usize
}

fn run_copy(c: CopyCase, seed: u64) {
    let mut rng = Rng::new(seed);
    let src = random_f32(&mut rng, c.src_len);
    let gpu = gpu();
    let sb = upload(gpu, "src", &src);
    let db = upload(gpu, "dst", &vec![POISON; c.dst_len]);
    let mut op =
        CopyColumns::new(gpu, c.tables, c.rows_cap, c.cols, &sb, c.from, &db, c.to).expect("copy");
    op.set_rows(gpu, c.rows).expect("rows");
    run(gpu, |pass| op.record(gpu, pass));
    let dst = download(gpu, &db, c.dst_len);
    let mut want = vec![POISON; c.dst_len];
    for t in 0..c.tables {
        for r in 0..c.rows {
            for j in 0..c.cols {
                want[at(c.to, t, r, j)] = src[at(c.from, t, r, j)];
            }
        }
    }
    for i in 0..c.dst_len {
        assert_eq!(
            dst[i].to_bits(),
            want[i].to_bits(),
            "{c:?}: dst[{i}] = {} want {}",
            dst[i],
            want[i]
        );
    }
    // The source is read only.
    assert_eq!(download(gpu, &sb, c.src_len), src, "{c:?}: source changed");
}

#[test]
fn copy_columns_moves_strided_blocks_exactly() {
    // TIM's dense [M, cap, D] output into field 1 of a [M, cap, F·D] experts' input, and back.
    let (m, cap, d, f) = (2u32, 6u32, 5u32, 3u32);
    let dense = Block::dense(cap, d);
    let field = Block {
        at: d as u64,
        ld: (f * d) as u64,
        stride: (cap * f * d) as u64,
    };
    let n_dense = (m * cap * d) as usize;
    let n_field = (m * cap * f * d) as usize;
    let cases = [
        CopyCase {
            tables: m,
            rows: 4,
            rows_cap: cap,
            cols: d,
            from: dense,
            to: field,
            src_len: n_dense,
            dst_len: n_field,
        },
        CopyCase {
            tables: m,
            rows: cap,
            rows_cap: cap,
            cols: d,
            from: field,
            to: dense,
            src_len: n_field,
            dst_len: n_dense,
        },
        // Awkward: odd offsets, padded rows, tables further apart than needed, one column.
        CopyCase {
            tables: 3,
            rows: 17,
            rows_cap: 19,
            cols: 1,
            from: Block {
                at: 3,
                ld: 2,
                stride: 41,
            },
            to: Block {
                at: 7,
                ld: 3,
                stride: 60,
            },
            src_len: 3 + 2 * 41 + 18 * 2 + 1 + 5,
            dst_len: 7 + 2 * 60 + 18 * 3 + 1 + 4,
        },
        // More elements than one workgroup row, cols not a multiple of anything.
        CopyCase {
            tables: 2,
            rows: 100,
            rows_cap: 130,
            cols: 67,
            from: Block::dense(130, 67),
            to: Block {
                at: 11,
                ld: 70,
                stride: 130 * 70 + 3,
            },
            src_len: 2 * 130 * 67,
            dst_len: 11 + 130 * 70 + 3 + 130 * 70,
        },
        // rows = 0: nothing written.
        CopyCase {
            tables: 2,
            rows: 0,
            rows_cap: 4,
            cols: 3,
            from: Block::dense(4, 3),
            to: Block::dense(4, 3),
            src_len: 24,
            dst_len: 24,
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        run_copy(*c, 200 + i as u64);
    }
}

#[test]
fn set_rows_changes_the_live_block_between_runs() {
    // The same prepared op run twice with different row counts: the uniform is rewritten.
    let gpu = gpu();
    let s = Shape {
        tables: 2,
        rows: 0,
        rows_cap: 8,
        cols: 3,
    };
    let src: Vec<f32> = (0..s.elems()).map(|i| i as f32 + 1.0).collect();
    let sb = upload(gpu, "src", &src);
    let db = upload(gpu, "dst", &vec![POISON; s.elems()]);
    let dense = Block::dense(8, 3);
    let mut op = CopyColumns::new(gpu, 2, 8, 3, &sb, dense, &db, dense).expect("copy");
    for rows in [3usize, 8, 5] {
        gpu.queue
            .write_buffer(&db, 0, bytemuck::cast_slice(&vec![POISON; s.elems()]));
        op.set_rows(gpu, rows as u32).expect("rows");
        run(gpu, |pass| op.record(gpu, pass));
        let dst = download(gpu, &db, s.elems());
        for i in 0..s.elems() {
            let live = (i / 3) % 8 < rows;
            let want = if live { src[i] } else { POISON };
            assert_eq!(dst[i].to_bits(), want.to_bits(), "rows {rows}: dst[{i}]");
        }
    }
    assert!(op.set_rows(gpu, 9).is_err(), "rows above the capacity");
}

#[test]
fn bad_layouts_are_errors_not_panics() {
    let gpu = gpu();
    let small = upload(gpu, "small", &[0.0; 10]);
    let big = upload(gpu, "big", &[0.0; 1000]);
    // Rows overlapping (ld < cols).
    let overlap = Block {
        at: 0,
        ld: 2,
        stride: 100,
    };
    assert!(CopyColumns::new(gpu, 1, 4, 3, &big, overlap, &big, Block::dense(4, 3)).is_err());
    // Tables overlapping (stride < ld · rows_cap).
    let tables_overlap = Block {
        at: 0,
        ld: 3,
        stride: 6,
    };
    assert!(
        CopyColumns::new(gpu, 2, 4, 3, &big, Block::dense(4, 3), &big, tables_overlap).is_err()
    );
    // Destination too short for the block.
    assert!(CopyColumns::new(
        gpu,
        2,
        4,
        3,
        &big,
        Block::dense(4, 3),
        &small,
        Block::dense(4, 3)
    )
    .is_err());
    // Source too short.
    assert!(CopyColumns::new(
        gpu,
        2,
        4,
        3,
        &small,
        Block::dense(4, 3),
        &big,
        Block::dense(4, 3)
    )
    .is_err());
    // ReLU over a tensor larger than its buffer.
    assert!(Relu::new(gpu, 2, 4, 3, &small, &big).is_err());
    assert!(Relu::new(gpu, 2, 4, 3, &big, &small).is_err());
    // Exactly fitting buffers are fine.
    let exact = upload(gpu, "exact", &[0.0; 24]);
    assert!(Relu::new(gpu, 2, 4, 3, &exact, &exact).is_ok());
}

#[test]
fn params_struct_matches_its_wgsl_layout() {
    assert_layout(
        &shaders::ELEMENTWISE,
        "ElementwiseParams",
        size_of::<ElementwiseParams>(),
        offsets!(ElementwiseParams: tables, rows, cols, src_ld, src_at, src_stride, dst_ld,
                 dst_at, dst_stride),
    );
}
