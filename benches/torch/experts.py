#!/usr/bin/env python3
"""The expert benches of benches/dense.rs in PyTorch on the CPU, for the wgrec / PyTorch ratio.

Usage:  python3 benches/torch/experts.py        (WGREC_BENCH_SMOKE=1 for the small sizes)

Same modules and shapes as `expert/<kind>/M<t>/{fwd,train}` in benches/dense.rs: M ∈ {1, 4} tables
of F = 16 fields × K = 10, B = 1024 rows, ReLU after the interaction; each module batched over the
tables the way a careful PyTorch user would write it (bmm / einsum over a leading table dimension,
no Python loop over tables): DCNv2 (2 layers, full rank and rank 32), FM, FwFM, GwPFM (G = 4,
field f in group f mod 4), IPNN, and an MLP 160 → 256 → 128. `train` is forward + backward of
Σ y ⊙ gy (autograd). float32, threads = os.cpu_count(), median of repeated timings after warm-up.
Prints samples/s (rows × tables per second) per bench.
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
ROWS, FIELDS, DIM, TABLES, GROUPS, RANK, WIDTHS = (
    (32, 5, 4, (1, 2), 2, 4, (8, 4)) if SMOKE else (1024, 16, 10, (1, 4), 4, 32, (256, 128))
)


def param(*shape, scale=0.1):
    return (torch.rand(*shape) * 2 - 1).mul_(scale).to(DEVICE).requires_grad_()


def pairs(f):
    i, j = torch.triu_indices(f, f, offset=1)
    return i.to(DEVICE), j.to(DEVICE)


def make(name, m):
    """Returns (inputs requiring grad, forward closure) for one expert over m tables."""
    f, k = FIELDS, DIM
    d = f * k
    if name.startswith("dcn"):
        rank = RANK if name.endswith("r32") else None
        x = param(m, ROWS, d, scale=1.0)
        if rank is None:
            w = [param(m, d, d) for _ in range(2)]
        else:
            w = [(param(m, d, rank), param(m, d, rank)) for _ in range(2)]
        b = [param(m, 1, d) for _ in range(2)]

        def forward():
            xl = x
            for l in range(2):
                if rank is None:
                    z = torch.baddbmm(b[l], xl, w[l].transpose(1, 2))
                else:
                    u, v = w[l]
                    z = torch.baddbmm(b[l], torch.bmm(xl, v), u.transpose(1, 2))
                xl = x * z + xl
            return torch.relu(xl)

        return forward
    if name == "gwpfm_g4":
        g = GROUPS
        x = param(m, ROWS, f, g, k, scale=1.0)
        r = torch.ones(m, g, g, device=DEVICE, requires_grad=True)
        part = torch.arange(f, device=DEVICE) % g
        i, j = pairs(f)
        pi, pj = part[i], part[j]

        def forward():
            a = x[:, :, i, pj]  # v_{i, P(j)}: [m, B, pairs, K]
            c = x[:, :, j, pi]  # v_{j, P(i)}
            wr = r[:, pi, pj]  # [m, pairs]
            return torch.relu((a * c * wr[:, None, :, None]).sum(2))

        return forward
    x = param(m, ROWS, f, k, scale=1.0)
    if name == "fm":
        def forward():
            s = x.sum(2)
            return torch.relu(0.5 * (s * s - (x * x).sum(2)))

        return forward
    if name == "fwfm":
        r = param(m, f, f, scale=1.0)
        mask = torch.triu(torch.ones(f, f, device=DEVICE), diagonal=1)

        def forward():
            return torch.relu(torch.einsum("mbik,mbjk,mij->mbk", x, x, r * mask))

        return forward
    if name == "ipnn":
        i, j = pairs(f)

        def forward():
            return torch.relu((x[:, :, i] * x[:, :, j]).sum(-1))

        return forward
    if name == "mlp_256_128":
        xm = x.reshape(m, ROWS, d)
        layers = []
        fan_in = d
        for w in WIDTHS:
            layers.append((param(m, w, fan_in), param(m, 1, w)))
            fan_in = w

        def forward():
            h = xm
            for w, b in layers:
                h = torch.relu(torch.baddbmm(b, h, w.transpose(1, 2)))
            return h

        return forward
    raise ValueError(name)


def timed(fn, reps):
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    reps = 3 if SMOKE else 11
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, {DEVICE}")
    print(f"{'kernel/shape':<30} {'median ms':>11} {'samples/s':>12}")
    for name in ("dcn_l2", "dcn_l2_r32", "fm", "fwfm", "gwpfm_g4", "ipnn", "mlp_256_128"):
        for m in TABLES:
            forward = make(name, m)
            with torch.no_grad():
                t = timed(forward, reps)
            print(f"{f'expert/{name}/M{m}/fwd':<30} {t * 1e3:>11.3f} {m * ROWS / t:>12.0f}")
            y = forward()
            gy = torch.rand_like(y)

            def train():
                (forward() * gy).sum().backward()

            t = timed(train, reps)
            print(f"{f'expert/{name}/M{m}/train':<30} {t * 1e3:>11.3f} {m * ROWS / t:>12.0f}")


if __name__ == "__main__":
    main()
