// prelude/chunks_store_f16.wgsl — f16 storage, write side: the twin of prelude/chunks_store.wgsl
// (same functions, same meaning), after prelude/chunks_f16.wgsl and prelude/philox.wgsl in the
// EMBEDDING_UPDATE_F16 variant (src/shaders.rs).
//
// Rounding of updated weights to f16, per the uniform `params.rounding`: 0 round to nearest (`pack2x16float`; WGSL lets an
// implementation pick either neighbour of an inexact value, lavapipe rounds to nearest even), 1
// seeded stochastic rounding (FBGEMM's): add 13 random bits below f16's 10-bit mantissa to the f32
// bit pattern and truncate them, so |x| rounds up to the next half with probability equal to the
// dropped fraction — unbiased in expectation, exact for f16's normal range (|x| ≥ 2^-14; below it
// the truncated value is rounded once more to the nearest subnormal, a bias under 2^-25). The
// noise is Philox4x32-10 of counter (row, table, vec4 column, step) and key (seed, stream), so a
// run is a pure function of its seed. A weight past ±65504 is undefined in `pack2x16float`.

const SR_STREAM: u32 = 0x5352u; // Philox key word that separates this stream from dropout's

fn store_unit(a: u32, u: vec2<u32>) {
    if CHUNKS == 1u {
        chunk0[a] = u;
        return;
    }
    let o = a & params.chunk_mask;
    switch a >> params.chunk_shift {
        case 0u: { chunk0[o] = u; }
        case 1u: { chunk1[o] = u; }
        case 2u: { chunk2[o] = u; }
        default: { chunk3[o] = u; }
    }
}

fn store4(a: u32, v: vec4<f32>) {
    store_unit(a, vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw)));
}

// f32 state vec4 s takes two units.
fn state_at(row_at: u32, width4: u32, s: u32) -> u32 {
    return row_at + width4 + 2u * s;
}

fn load_state4(a: u32) -> vec4<f32> {
    let lo = load_unit(a);
    let hi = load_unit(a + 1u);
    return bitcast<vec4<f32>>(vec4<u32>(lo, hi));
}

fn store_state4(a: u32, v: vec4<f32>) {
    let bits = bitcast<vec4<u32>>(v);
    store_unit(a, bits.xy);
    store_unit(a + 1u, bits.zw);
}

// Row-wise Adagrad's accumulator: f32 bits in `.x` of one unit.
fn load_acc(a: u32) -> f32 {
    return bitcast<f32>(load_unit(a).x);
}

fn store_acc(a: u32, acc: f32) {
    store_unit(a, vec2<u32>(bitcast<u32>(acc), 0u));
}

fn store_row4(a: u32, v: vec4<f32>, key: vec4<u32>) {
    if params.rounding == 0u {
        store4(a, v);
        return;
    }
    let noise = philox4x32_10(key, vec2<u32>(params.sr_seed, SR_STREAM)) & vec4<u32>(0x1fffu);
    let bits = (bitcast<vec4<u32>>(v) + noise) & vec4<u32>(0xffffe000u);
    store4(a, bitcast<vec4<f32>>(bits));
}
