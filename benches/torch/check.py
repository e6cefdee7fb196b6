#!/usr/bin/env python3
"""Checks the PyTorch baselines of kernels.py against plain loops over the definitions wgrec's kernels
implement (shaders/embedding_update.wgsl, src/kernels/loss.rs), so a timing table never compares
wgrec with a baseline that computes something else. Seeded, float64 references, exit 1 on a mismatch.

Usage:  python3 benches/torch/check.py          (run by scripts/bench-vs-torch.sh before timing)
"""
import math
import sys

import torch

import kernels as K

torch.manual_seed(3)
failures = []


def check(name, got, want, tol=1e-5):
    got, want = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
    if got.shape != want.shape or not torch.allclose(got, want, atol=tol, rtol=tol):
        failures.append(f"{name}: got {got.flatten()[:6].tolist()}, want {want.flatten()[:6].tolist()}")


# Table-batched forward: 3 tables of 7 rows, batch 4, ragged bags (one empty), sample-major order.
T, R, D, B = 3, 7, 4, 4
w = torch.randn(T * R, D)
lengths = [2, 0, 3, 1, 4, 2, 1, 1, 3, 2, 2, 1]  # bag b·T + t
local = [torch.randint(0, R, (n,)) for n in lengths]
indices = torch.cat([l + (i % T) * R for i, l in enumerate(local)])
offsets = torch.tensor([0] + lengths[:-1]).cumsum(0)
for mode in ("sum", "mean"):
    out = K.tbe_forward(w, indices, offsets, mode).reshape(B, T * D)
    want = torch.zeros(B, T * D)
    for i, l in enumerate(local):
        b, t = divmod(i, T)
        if len(l):
            rows = w[l + t * R]
            want[b, t * D:(t + 1) * D] = rows.sum(0) if mode == "sum" else rows.mean(0)
    check(f"tbe_forward {mode}", out, want)

# Row-wise Adagrad: repeated rows, weight decay, mean-pooling coefficients, untouched rows unchanged.
weights, state = torch.randn(T * R, D), torch.rand(T * R)
w0, s0 = weights.clone(), state.clone()
bag_of = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
coef = 1.0 / torch.tensor(lengths, dtype=torch.float32)[bag_of]
g_out = torch.randn(len(lengths), D)
lr, eps, wd = 0.05, 1e-8, 0.01
rows, inverse = K.update_plan(indices)
K.rowwise_adagrad_update(weights, state, rows, inverse, bag_of, g_out, lr, eps, wd, coef)
for r in range(T * R):
    hits = [k for k in range(len(indices)) if indices[k] == r]
    if not hits:
        check(f"adagrad untouched row {r}", weights[r], w0[r], 0)
        check(f"adagrad untouched state {r}", state[r], s0[r], 0)
        continue
    g = sum(coef[k].double() * g_out[bag_of[k]].double() for k in hits) + wd * w0[r].double()
    acc = s0[r].double() + (g * g).mean()
    check(f"adagrad row {r}", weights[r], w0[r].double() - lr * g / (acc.sqrt() + eps))
    check(f"adagrad state {r}", state[r], acc)

# Losses: the definitions of src/kernels/loss.rs with all-ones weights, by explicit loops.
z = torch.randn(40, dtype=torch.float64) * 3
y = (torch.rand(40) < 0.3).double()
sp = lambda v: max(v, 0.0) + math.log1p(math.exp(-abs(v)))
bce = sum(sp(zi) - zi * yi for zi, yi in zip(z.tolist(), y.tolist())) / len(z)
check("bce", K.bce(z, y), bce)
P = [zi for zi, yi in zip(z.tolist(), y.tolist()) if yi > 0.5]
N = [zi for zi, yi in zip(z.tolist(), y.tolist()) if yi <= 0.5]
pair = sum(sp(zn - zp) for zp in P for zn in N) / (len(P) * len(N))
check("combined_pair", K.combined_pair(z, y, 0.6), 0.6 * bce + 0.4 * pair)
lse = math.log(sum(math.exp(v) for v in z.tolist()))
lst = -sum(zp - lse for zp in P) / len(P)
check("combined_list", K.combined_list(z, y, 0.9), 0.9 * bce + 0.1 * lst)
# No positive (or no negative): BCE alone, as wgrec's fallback.
y0 = torch.zeros_like(y)
check("combined_pair fallback", K.combined_pair(z, y0, 0.6), K.bce(z, y0))
check("combined_list fallback", K.combined_list(z, torch.ones_like(y), 0.9), K.bce(z, torch.ones_like(y)))

# Experts: FM's sum-square form against the pair sum; IPNN's pair order (i < j, row-major).
x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
check("fm", K.fm(x), torch.relu(sum(x[:, :, i] * x[:, :, j] for i, j in pairs)))
i, j = torch.triu_indices(5, 5, offset=1)
check("ipnn", K.ipnn(x, i, j),
      torch.relu(torch.stack([(x[:, :, a] * x[:, :, b]).sum(-1) for a, b in pairs], -1)))

if failures:
    print("benches/torch/check.py: mismatches:\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
print("benches/torch/check.py: tbe_forward, rowwise_adagrad_update, losses, fm, ipnn match their definitions")
