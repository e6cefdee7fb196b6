use super::*;
use crate::kernels::run_once;

/// lavapipe's storage binding (and chunk): 128 MiB.
const LAVAPIPE: u64 = 128 << 20;

fn groups(rows: u32, element: Element, chunk: u64) -> usize {
    row_parts(rows, 64, element, chunk).expect("parts").len()
}

#[test]
fn rows_sweep_passes_one_storage_group_in_f32_and_f16_within_the_caps() {
    // lavapipe: 512 MiB groups; 272-byte f32 rows (1,973,790 a group), 136-byte f16 rows.
    let f32_rows = rows_sweep(LAVAPIPE, 64, Element::F32, false);
    assert_eq!(
        f32_rows,
        [10_000, 30_000, 100_000, 300_000, 1_000_000, 1_500_000, 3_000_000, 5_000_000]
    );
    let f32_groups: Vec<usize> = (f32_rows.iter())
        .map(|&r| groups(r, Element::F32, LAVAPIPE))
        .collect();
    assert_eq!(f32_groups, [1, 1, 1, 1, 1, 1, 2, 3]);
    // f16 at twice the rows: the same table bytes, so the same groups.
    let f16_rows = rows_sweep(LAVAPIPE, 64, Element::F16, false);
    let doubled: Vec<u32> = f32_rows.iter().map(|r| 2 * r).collect();
    assert_eq!(f16_rows, doubled);
    let f16_groups: Vec<usize> = (f16_rows.iter())
        .map(|&r| groups(r, Element::F16, LAVAPIPE))
        .collect();
    assert_eq!(f16_groups, f32_groups);
    assert!(*f16_rows.last().unwrap() as u64 * 136 <= MAX_TABLE_BYTES);
    // The quick sweep still crosses one binding (and stays in one group).
    for element in [Element::F32, Element::F16] {
        let last = *rows_sweep(LAVAPIPE, 64, element, true).last().unwrap();
        assert!(last as u64 * row_bytes(64, element) > LAVAPIPE);
        assert_eq!(groups(last, element, LAVAPIPE), 1);
    }
    // A 2 GiB binding: one group holds everything, the 1.5 GiB memory cap rules.
    assert_eq!(
        rows_sweep(2 << 30, 64, Element::F32, false).last(),
        Some(&5_000_000)
    );
    // A 1 MiB binding: 4 MiB groups, three of them hold 46,260 rows.
    assert_eq!(
        rows_sweep(1 << 20, 64, Element::F32, false),
        [10_000, 30_000]
    );
}

#[test]
fn row_parts_cover_the_table_in_whole_groups_and_refuse_a_row_larger_than_a_group() {
    let parts = row_parts(5_000_000, 64, Element::F32, LAVAPIPE).expect("parts");
    assert_eq!(
        parts,
        [0..1_973_790, 1_973_790..3_947_580, 3_947_580..5_000_000]
    );
    let one = row_parts(1_973_790, 64, Element::F32, LAVAPIPE).expect("one group");
    assert_eq!((one.len(), one[0].clone()), (1, 0..1_973_790));
    let empty = row_parts(0, 64, Element::F16, LAVAPIPE).expect("empty");
    assert_eq!((empty.len(), empty[0].clone()), (1, 0..0));
    // 64-byte chunks: a group of 16 vec4s cannot hold one 17-vec4 row.
    let e = row_parts(10, 64, Element::F32, 64).expect_err("row past a group");
    assert!(e.to_string().contains("272 bytes"), "{e}");
}

fn gpu() -> &'static Gpu {
    static GPU: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(gpu) => gpu,
        Err(e) => panic!("this test needs a GPU adapter (lavapipe will do): {e}"),
    })
}

/// f32 sums of 4 terms in (-1, 1) added in another order (a later part adds its lookups to the
/// first part's sum): a few ulps of 4.
const SUM_ORDER: f32 = 4e-6;

#[test]
fn a_split_table_gathers_and_updates_as_one_storage_in_f32_and_f16() {
    let g = gpu();
    // 4 KiB chunks: 204 f32 rows a group (5 groups), 409 f16 rows (3 groups).
    for (element, want_groups) in [(Element::F32, 5), (Element::F16, 3)] {
        let shape = RowsShape {
            rows: 1000,
            width: 16,
            batch: 64,
            bag: 4,
            element,
        };
        let mut rng = Rng::new(41);
        let weights: Vec<f32> = (0..1000 * 16).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let one = SplitTable::new(g, shape, None, Some(&weights)).expect("one storage");
        let empty = RowsShape { rows: 0, ..shape };
        let e = SplitTable::new(g, empty, None, None)
            .err()
            .expect("no rows");
        assert!(e.to_string().contains("0 rows"), "{e}");
        let split = SplitTable::new(g, shape, Some(4096), Some(&weights)).expect("split");
        assert_eq!((one.groups(), split.groups()), (1, want_groups));
        for table in [&one, &split] {
            run_once(g, |pass| table.record_gather(g, pass));
        }
        let want: Vec<f32> = g.read_all(one.output()).expect("read");
        let got: Vec<f32> = g.read_all(split.output()).expect("read");
        assert_eq!(got.len(), want.len());
        assert!(want.iter().any(|&x| x != 0.0), "a gather of random rows");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= SUM_ORDER,
                "{element:?} output {i}: {a} vs {b}"
            );
        }
        // One writer per row and the same entries in the same order: the same bits.
        for table in [&one, &split] {
            run_once(g, |pass| table.record_update(g, pass));
        }
        let want = one.read_weights(g).expect("weights");
        let got = split.read_weights(g).expect("weights");
        assert_ne!(
            want,
            weights_as_stored(&weights, element),
            "the update moved rows"
        );
        assert_eq!(bits(&got), bits(&want), "{element:?} updated weights");
    }
}

/// `weights` rounded as `element` stores them (f16: the nearest half).
fn weights_as_stored(weights: &[f32], element: Element) -> Vec<f32> {
    match element {
        Element::F32 => weights.to_vec(),
        Element::F16 => weights
            .iter()
            .map(|&x| half::f16::from_f32(x).to_f32())
            .collect(),
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}
