#!/usr/bin/env python3
"""The GEMM shapes of benches/dense.rs in PyTorch on the CPU, for the GPU/CPU ratio.

Usage:  python3 benches/torch/dense.py        (WGREC_BENCH_SMOKE=1 for the small sizes)

Same shapes and FLOP count (2·M·m·n·k) as the Rust bench: forward Y = X·Wᵀ (+ b, as addmm /
baddbmm do) for 400→400 and F·K→F·K with F·K ∈ {160, 390}, B = 4096, M ∈ {1, 2, 4, 8} tables as
one batched call (torch.baddbmm over [M, B, in] × [M, in, out]; M = 1 uses torch.addmm); the
backward forms of the 400 layer: dX = dY·W and dW = dYᵀ·X (torch.bmm on transposed views, as
autograd does). float32, threads = os.cpu_count(), median of repeated timings after a warm-up.
"""
import os
import statistics
import time

import torch

SMOKE = os.environ.get("WGREC_BENCH_SMOKE", "0") not in ("", "0")
# "cuda" for the GPU baseline of scripts/device-bench.sh; the CPU by default.
DEVICE = os.environ.get("WGREC_TORCH_DEVICE", "cpu")


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def shapes():
    batch, wide, fks, tables = (64, 40, (16, 39), (1, 2)) if SMOKE else (4096, 400, (160, 390), (1, 2, 4, 8))
    out = []
    for name, width in (("fwd_400", wide), ("fwd_160", fks[0]), ("fwd_390", fks[1])):
        for t in tables:
            out.append((f"{name}/M{t}", "fwd", t, batch, width, width))
    for t in (1, tables[-1]):
        out.append((f"dx_400/M{t}", "dx", t, batch, wide, wide))
        out.append((f"dw_400/M{t}", "dw", t, wide, wide, batch))
    return out


def op(kind, t, m, n, k):
    """A closure computing one GEMM of C [t, m, n] with inner dimension k, as PyTorch's Linear does."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: (torch.rand(*s, generator=g) - 0.5).to(DEVICE)
    if kind == "fwd":  # Y = X Wᵀ + b: X [t, m, k], W [t, n, k]
        x, w, b = r(t, m, k), r(t, n, k), r(t, 1, n)
        if t == 1:
            return lambda: torch.addmm(b[0], x[0], w[0].t())
        return lambda: torch.baddbmm(b, x, w.transpose(1, 2))
    if kind == "dx":  # dX = dY W: dY [t, m, k], W [t, k, n]
        dy, w = r(t, m, k), r(t, k, n)
        return lambda: torch.bmm(dy, w)
    # dW = dYᵀ X: dY [t, k, m] (batch k), X [t, k, n]
    dy, x = r(t, k, m), r(t, k, n)
    return lambda: torch.bmm(dy.transpose(1, 2), x)


def median_seconds(fn, reps):
    fn()
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    torch.set_num_threads(os.cpu_count())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32, {DEVICE}")
    print(f"{'kernel/shape':<20} {'median ms':>11} {'GFLOP/s':>9}")
    for name, kind, t, m, n, k in shapes():
        fn = op(kind, t, m, n, k)
        seconds = median_seconds(fn, 5 if SMOKE else 21)
        flops = 2 * t * m * n * k
        print(f"{name:<20} {seconds * 1e3:>11.3f} {flops / seconds / 1e9:>9.2f}")


if __name__ == "__main__":
    main()
