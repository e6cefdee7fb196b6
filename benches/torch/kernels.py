"""PyTorch implementations of wgrec's kernels, same semantics, written the way a careful PyTorch user
would (one batched call per kernel, no Python loop over tables). suite.py times them on the shapes of
`wgrec bench` (src/bench/mod.rs); each function here is plain tensor code, so torch.compile can take
it whole.

- tbe_forward: table-batched embedding bag forward. All tables in one [Σ rows, D] weight, indices
  shifted by each table's first row, bags ordered sample-major (bag b·T + t is sample b, table t) so
  the [B·T, D] result is the [B, T·D] output of FBGEMM / wgrec's `tbe_forward` without a copy.
  Pooling "sum" or "mean" (F.embedding_bag's).
- rowwise_adagrad_update: the fused backward + row-wise Adagrad of shaders/embedding_update.wgsl
  (FBGEMM EXACT_ROWWISE_ADAGRAD): per touched row, g = Σ over its lookups of coef · dOut[bag]
  (coef = 1, or 1/bag length for mean pooling); g += wd·w; acc += mean(g²) over the row;
  w -= lr·g / (√acc + eps). The unique rows and each lookup's unique-row index (`plan`) are built
  beforehand, as wgrec's host-side SparseUpdatePlan is; neither side times that.
- tim: TIM (METHODS.md §1.1), from tim.py.
- dcn / gwpfm / fm / ipnn: the interaction experts of benches/dense.rs with ReLU, batched over a
  leading table dimension (experts.py has the full set on its own shapes).
- bce / combined_pair / combined_list: the losses of src/kernels/loss.rs (METHODS.md §4.1), one task,
  all-ones weights: BCE with logits (mean); α·BCE + (1 − α)·mean over positive/negative pairs of
  softplus(z_neg − z_pos); α·BCE − (1 − α)·mean over positives of log softmax(z). A batch with no
  positive or no negative falls back to BCE alone, as wgrec's does.
"""
import torch
import torch.nn.functional as F

from tim import tim  # noqa: F401  (re-exported: the TIM module of tim.py)


def tbe_forward(weights, indices, offsets, mode="sum"):
    """[B·T, D] pooled rows; reshape to [B, T·D] for the per-sample concatenation."""
    return F.embedding_bag(indices, weights, offsets, mode=mode)


def update_plan(indices):
    """(unique rows, per-lookup index into them): the host-side plan of the sparse update."""
    rows, inverse = torch.unique(indices, return_inverse=True)
    return rows, inverse


def rowwise_adagrad_update(weights, state, rows, inverse, lookup_bag, grad_out, lr, eps,
                           weight_decay=0.0, coef=None):
    """In place: weights [R, D], state [R] (one accumulator per row)."""
    g_lookup = grad_out.index_select(0, lookup_bag)
    if coef is not None:
        g_lookup = g_lookup * coef[:, None]
    g = torch.zeros(rows.numel(), weights.shape[1], device=weights.device,
                    dtype=weights.dtype).index_add_(0, inverse, g_lookup)
    w = weights.index_select(0, rows)
    if weight_decay:
        g = g + weight_decay * w
    acc = state.index_select(0, rows) + (g * g).mean(1)
    state.index_copy_(0, rows, acc)
    weights.index_copy_(0, rows, w - lr * g / (acc.sqrt() + eps)[:, None])


def dcn(x, ws, bs):
    """DCNv2 full rank: x_{l+1} = x0 ⊙ (x_l W_lᵀ + b_l) + x_l, then ReLU. x [M, B, d], W [M, d, d]."""
    xl = x
    for w, b in zip(ws, bs):
        xl = x * torch.baddbmm(b, xl, w.transpose(1, 2)) + xl
    return torch.relu(xl)


def gwpfm(x, r, i, j, pi, pj):
    """GwPFM: Σ_{i<j} r[P(i), P(j)] · v_{i,P(j)} ⊙ v_{j,P(i)}, ReLU. x [M, B, F, G, K] → [M, B, K]."""
    a = x[:, :, i, pj]
    c = x[:, :, j, pi]
    wr = r[:, pi, pj]
    return torch.relu((a * c * wr[:, None, :, None]).sum(2))


def fm(x):
    """FM: ½((Σ v)² − Σ v²), ReLU. x [M, B, F, K] → [M, B, K]."""
    s = x.sum(2)
    return torch.relu(0.5 * (s * s - (x * x).sum(2)))


def ipnn(x, i, j):
    """IPNN: ⟨v_i, v_j⟩ for i < j, ReLU. x [M, B, F, K] → [M, B, pairs]."""
    return torch.relu((x[:, :, i] * x[:, :, j]).sum(-1))


def bce(z, y):
    return F.binary_cross_entropy_with_logits(z, y)


def _split(z, y):
    pos = y > 0.5
    return z[pos], z[~pos]


def combined_pair(z, y, alpha):
    zp, zn = _split(z, y)
    base = bce(z, y)
    if zp.numel() == 0 or zn.numel() == 0:
        return base
    pair = F.softplus(zn[None, :] - zp[:, None]).mean()
    return alpha * base + (1 - alpha) * pair


def combined_list(z, y, alpha):
    zp, _ = _split(z, y)
    base = bce(z, y)
    if zp.numel() == 0 or zp.numel() == z.numel():
        return base
    lst = -(zp - torch.logsumexp(z, 0)).mean()
    return alpha * base + (1 - alpha) * lst


def zipf_rows(rows, count, alpha, generator, device):
    """`count` row ids, Zipf(alpha) ranks scattered over the table as wgrec's bench does
    (rank · 2654435761 mod rows)."""
    p = torch.arange(1, rows + 1, dtype=torch.float64).pow(-alpha)
    ranks = torch.multinomial(p, count, replacement=True, generator=generator)
    return ((ranks * 2_654_435_761) % rows).to(device)

