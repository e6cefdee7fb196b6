#!/usr/bin/env python3
"""TIM (METHODS.md §1.1) in PyTorch on the CPU, on the shapes of benches/tim.rs, for the ratio in
BENCHMARKS.md. The module is what a PyTorch user writes: `F.embedding(sparse=True)` gathers
(item + category + temporal, per set), a masked softmax over the sequence, a batched weighted sum.
The backward of sparse embeddings yields one gradient row per lookup, as `tim_backward` does.

Usage:  python3 benches/torch/tim.py [--smoke]      (medians of timed runs; float32)
Columns: forward (no autograd), forward+backward (autograd of Σ g ⊙ u), behaviours/s of each.
"""
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

ITEMS, CATS, BUCKETS = 100_000, 1000, 64
# "cuda" for the GPU baseline of scripts/device-bench.sh; the CPU by default.
DEVICE = os.environ.get("WGREC_TORCH_DEVICE", "cpu")


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def shapes(smoke):
    if smoke:
        s = dict(batch=16, len=20, dim=16, sets=1)
        return [s, {**s, "sets": 2}]
    base = dict(batch=256, len=100, dim=64, sets=1)
    out = [base]
    out += [{**base, "len": n} for n in (20, 500)]
    out += [{**base, "dim": d} for d in (16, 256)]
    out += [{**base, "sets": 3}, {**base, "batch": 1024}]
    return out


def tim(item, cat, tim_table, target, behaviours, buckets, mask):
    d = item.shape[1]
    e = (F.embedding(behaviours[..., 0], item, sparse=True)
         + F.embedding(behaviours[..., 1], cat, sparse=True)
         + F.embedding(buckets, tim_table, sparse=True))                      # [B, L, D]
    zero = torch.zeros_like(target[:, 0])
    v = (F.embedding(target[:, 0], item, sparse=True)
         + F.embedding(target[:, 1], cat, sparse=True)
         + F.embedding(zero, tim_table, sparse=True))                         # [B, D]
    s = torch.bmm(e, v.unsqueeze(-1)).squeeze(-1) / math.sqrt(d)
    s = s.masked_fill(~mask, float("-inf"))
    alpha = torch.softmax(s, dim=1)
    return torch.bmm(alpha.unsqueeze(1), e).squeeze(1) * v


def median_ms(fn, reps):
    fn()  # warm-up
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main():
    smoke = "--smoke" in sys.argv or os.environ.get("WGREC_BENCH_SMOKE", "0") not in ("", "0")
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, {DEVICE}")
    print(f"{'shape':<22} {'fwd ms':>9} {'fwd beh/s':>11} {'fwd+bwd ms':>11} {'fwd+bwd beh/s':>14}")
    for s in shapes(smoke):
        b, n, d, m = s["batch"], s["len"], s["dim"], s["sets"]
        sets = [[(torch.rand(r, d) * 0.1 - 0.05).to(DEVICE).requires_grad_()
                 for r in (ITEMS, CATS, BUCKETS)] for _ in range(m)]
        target = torch.stack([torch.randint(0, ITEMS, (b,)), torch.randint(0, CATS, (b,))], 1).to(DEVICE)
        behaviours = torch.stack([torch.randint(0, ITEMS, (b, n)),
                                  torch.randint(0, CATS, (b, n))], -1).to(DEVICE)
        buckets = (n - torch.arange(n)).clamp(max=BUCKETS - 1).expand(b, n).contiguous().to(DEVICE)
        mask = torch.ones(b, n, dtype=torch.bool, device=DEVICE)
        g = (torch.rand(m, b, d) * 2 - 1).to(DEVICE)

        def forward():
            with torch.no_grad():
                for k in range(m):
                    tim(*sets[k], target, behaviours, buckets, mask)

        def forward_backward():
            loss = sum((tim(*sets[k], target, behaviours, buckets, mask) * g[k]).sum()
                       for k in range(m))
            loss.backward()
            for tables in sets:
                for t in tables:
                    t.grad = None

        reps = 5 if smoke else 10
        f = median_ms(forward, reps)
        fb = median_ms(forward_backward, reps)
        beh = b * n * m
        name = f"B{b}_L{n}_D{d}_M{m}"
        print(f"{name:<22} {f:>9.3f} {beh / f * 1e3:>11.3e} {fb:>11.3f} {beh / fb * 1e3:>14.3e}")


if __name__ == "__main__":
    main()
