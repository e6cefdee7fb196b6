// philox.wgsl (prelude) — Philox4x32-10 (Salmon et al., SC'11; the generator of cuRAND and
// PyTorch's CUDA dropout): counter-based, so a draw is a pure function of (counter, key), and it
// passes TestU01 BigCrush. Shared by dropout.wgsl and uncertainty.wgsl; the CPU twin is
// `wgrec::rng::philox4x32_10`, checked on Random123's known answers.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u; // key schedule: golden ratio
const PHILOX_W1: u32 = 0xBB67AE85u; // key schedule: sqrt(3) − 1

// High 32 bits of a·b from 16-bit halves (WGSL has no widening multiply).
fn mul_hi(a: u32, b: u32) -> u32 {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let m1 = ah * bl + ((al * bl) >> 16u);
    let m2 = al * bh + (m1 & 0xffffu);
    return ah * bh + (m1 >> 16u) + (m2 >> 16u);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var i = 0u; i < 10u; i++) {
        let hi0 = mul_hi(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mul_hi(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k += vec2<u32>(PHILOX_W0, PHILOX_W1);
    }
    return c;
}

