// content.wgsl — content features (METHODS.md §1.3, §1.4): SimHash codes of content embeddings,
// and the bucketed similarity of a user-side and an item-side pre-trained embedding.
//
// Launchers: src/kernels/content/simhash.rs, src/kernels/content/similarity.rs.
// Tests: kernels_tests/content_simhash.rs, kernels_tests/content_similarity.rs.
//
// simhash: code[r] = Σ_j [w_jᵀx_r ≥ 0] · 2^j for j < bits (random-hyperplane LSH).
//   Bindings: 0 vectors [rows, dim] (read), 1 planes4 [dim, ⌈bits/4⌉] vec4 (read; the planes
//   transposed: element d of plane 4g + c is planes4[d·⌈bits/4⌉ + g][c], zero past bits),
//   2 codes [rows] u32 (read_write), 3 params (uniform).
//   Geometry: one invocation per vector; it runs the `bits` dot products itself and assembles the
//   code in a register, so no two invocations share an output word (no atomics, one write each).
//   The planes ([≤ 32, dim], a few KiB) stay in cache for every invocation; four planes share a
//   pass over x (one vec4 of four independent chains).
//
// similarity: per sample b with rows (u, i): s = cos(users[u], items[i]) (0 when either is a zero
//   vector) or their dot; value = 1 + #{k : s ≥ boundaries[k]} (the MNS value of the bucket), or 0
//   when u or i is MISSING; written to target[starts[c] + b] for each copy c < copies.
//   Bindings: 0 users [Nu, dim], 1 items [Ni, dim], 2 pairs [batch] vec2<u32>, 3 starts [copies],
//   4 boundaries [k] ascending (all read), 5 target u32 (read_write), 6 params (uniform).
//   Geometry: one invocation per sample; the dot and both squared norms in one pass, in index order
//   (a fixed order: the same inputs give the same bits); the bucket by binary search.
//
// Both fold workgroups into (x, y) past 65,535 (gpu::grid).

override WG: u32 = 64u; // one invocation per vector or sample; 64 fills a GPU wave and llvmpipe's lanes

const MISSING: u32 = 0xFFFFFFFFu; // a row id with no vector (matches content::MISSING)
const COSINE: u32 = 0u;           // SimilarityParams.measure: cosine; 1 = dot

struct SimHashParams {
    rows: u32, // vectors in this chunk
    dim: u32,
    bits: u32, // 1..=32
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> vectors: array<f32>;
@group(0) @binding(1) var<storage, read> planes4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<uniform> hash_params: SimHashParams;

@compute @workgroup_size(WG)
fn simhash(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.x + wid.y * nwg.x) * WG + lid;
    if r >= hash_params.rows {
        return;
    }
    let dim = hash_params.dim;
    let x = r * dim;
    let groups = (hash_params.bits + 3u) / 4u;
    var code = 0u;
    // Four planes per pass over x: one vec4 load of planes and four independent chains per element.
    for (var g = 0u; g < groups; g++) {
        var dot = vec4<f32>(0.0);
        for (var d = 0u; d < dim; d++) {
            dot += vectors[x + d] * planes4[d * groups + g];
        }
        let on = select(vec4<u32>(0u), vec4<u32>(1u), dot >= vec4<f32>(0.0));
        code |= (on.x | (on.y << 1u) | (on.z << 2u) | (on.w << 3u)) << (4u * g);
    }
    // Padding planes (zero, so their bits are set) past `bits` are masked off.
    codes[r] = code & (0xFFFFFFFFu >> (32u - hash_params.bits));
}

struct SimilarityParams {
    batch: u32,   // samples this step
    dim: u32,
    copies: u32,  // starts used
    k: u32,       // boundaries (≥ 1)
    measure: u32, // COSINE or 1 (dot)
    users: u32,   // rows of the user table (a row ≥ this is treated as MISSING)
    items: u32,   // rows of the item table
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> users: array<f32>;
@group(0) @binding(1) var<storage, read> items: array<f32>;
@group(0) @binding(2) var<storage, read> pairs: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> starts: array<u32>;
@group(0) @binding(4) var<storage, read> boundaries: array<f32>;
@group(0) @binding(5) var<storage, read_write> target_words: array<u32>;
@group(0) @binding(6) var<uniform> sim_params: SimilarityParams;

fn similarity_value(u: u32, i: u32) -> u32 {
    let p = sim_params;
    if u >= p.users || i >= p.items {
        return 0u; // MISSING (the launcher rejects any other row out of range)
    }
    var dot = 0.0;
    var uu = 0.0;
    var ii = 0.0;
    for (var d = 0u; d < p.dim; d++) {
        let a = users[u * p.dim + d];
        let b = items[i * p.dim + d];
        dot += a * b;
        uu += a * a;
        ii += b * b;
    }
    var s = dot;
    if p.measure == COSINE {
        s = select(dot / (sqrt(uu) * sqrt(ii)), 0.0, uu == 0.0 || ii == 0.0);
    }
    // First boundary above s: the count of boundaries ≤ s (they ascend).
    var lo = 0u;
    var hi = p.k;
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if s >= boundaries[mid] {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return 1u + lo;
}

@compute @workgroup_size(WG)
fn similarity(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = (wid.x + wid.y * nwg.x) * WG + lid;
    if b >= sim_params.batch {
        return;
    }
    let pair = pairs[b];
    let value = similarity_value(pair.x, pair.y);
    for (var c = 0u; c < sim_params.copies; c++) {
        target_words[starts[c] + b] = value;
    }
}
