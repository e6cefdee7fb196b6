#!/usr/bin/env python3
"""The PyTorch side of `wgrec bench`: the same kernels (kernels.py) on the same shapes as
src/bench/mod.rs, each timed eager and under torch.compile, for scripts/bench-vs-torch.sh.

Usage:  python3 benches/torch/suite.py [--device cpu|cuda] [--quick] [--repeats N] [--filter S]
                                       [--no-compile] [--compile-budget SECONDS] [--json]

Kernel names match `wgrec bench --json`'s. Each figure is the median of `repeats` timed calls after
two warm-up calls (the first compiled call compiles), the device synchronized around each call.
What is timed per kernel, as on the wgrec side:
- embedding_gather: the forward (no autograd); embedding_update_adagrad: dOut → touched rows updated
  in place (the unique-row plan is an input, built untimed, as wgrec's host plan is);
- tim_forward: forward without autograd; tim_backward: autograd.grad of the forward's output against
  the three tables given dU (sparse row gradients, one per lookup), the graph retained and reused;
- expert_*: forward + backward (autograd.grad of every input and parameter given dY);
- loss_*: the loss and d(logits) (autograd.grad).
A torch.compile that fails (no compiler, an unsupported op) is reported as null with its error.
float32 throughout.
"""
import argparse
import json
import os
import platform
import sys
import time

import torch

import kernels as K
from common import median_seconds, short_error

ITEMS, CATS, BUCKETS = 100_000, 1000, 64


def cases(dev, quick):
    """(kernel, shape, fn to compile or None, runner(fn) → closure) per kernel, in wgrec's order."""
    g = torch.Generator().manual_seed(5)

    def rand(*shape, scale=1.0):
        return ((torch.rand(*shape, generator=g) * 2 - 1) * scale).to(dev)

    out = []

    # Table-batched embedding: T tables × R rows × D, batch B, bags of L, Zipf 1.05, sum pooling.
    t, rows, d, batch, bag = (4, 10_000, 32, 512, 4) if quick else (8, 100_000, 64, 2048, 8)
    shape = f"{t} tables × {rows} × {d}, batch {batch}, bags of {bag}, Zipf 1.05"
    weights = rand(t * rows, d)
    state = torch.zeros(t * rows, device=dev)
    n = batch * t * bag
    local = K.zipf_rows(rows, n, 1.05, g, dev)
    bag_ids = torch.arange(n, device=dev) // bag  # bag b·T + table: sample-major
    indices = local + (bag_ids % t) * rows
    offsets = torch.arange(0, n, bag, device=dev)
    out.append(("embedding_gather", shape, K.tbe_forward,
                lambda f: lambda: f(weights, indices, offsets)))
    grad_out = rand(batch * t, d)
    uniq, inverse = K.update_plan(indices)
    out.append(("embedding_update_adagrad", shape, K.rowwise_adagrad_update,
                lambda f: lambda: f(weights, state, uniq, inverse, bag_ids, grad_out, 0.01, 1e-8)))

    # TIM: one set (item + category semantic, time-bucket temporal).
    b, length, d = (32, 50, 32) if quick else (256, 100, 64)
    shape = f"batch {b}, length {length}, D {d}, item + category + time rows"
    tables = [rand(r, d, scale=0.05).requires_grad_() for r in (ITEMS, CATS, BUCKETS)]
    ids = lambda *s: torch.stack(
        [K.zipf_rows(ITEMS, int(torch.tensor(s).prod()), 1.05, g, dev).reshape(*s),
         torch.randint(0, CATS, s, generator=g).to(dev)], -1)
    target, behaviours = ids(b), ids(b, length)
    buckets = (length - torch.arange(length)).clamp(max=BUCKETS - 1).expand(b, length).contiguous().to(dev)
    mask = torch.ones(b, length, dtype=torch.bool, device=dev)
    du = rand(b, d)

    def tim_fwd(f):
        def run():
            with torch.no_grad():
                f(*tables, target, behaviours, buckets, mask)
        return run

    def tim_bwd(f):
        u = f(*tables, target, behaviours, buckets, mask)
        return lambda: torch.autograd.grad(u, tables, du, retain_graph=True)

    out.append(("tim_forward", shape, K.tim, tim_fwd))
    out.append(("tim_backward", shape, K.tim, tim_bwd))

    # Experts: M tables × B rows × F fields × K, forward + backward.
    rows_, fields, dim, m = (128, 8, 8, 2) if quick else (1024, 16, 10, 4)
    shape = f"{m} tables, batch {rows_}, {fields} fields × {dim}, forward + backward"
    i, j = (v.to(dev) for v in torch.triu_indices(fields, fields, offset=1))

    def train(f, inputs, extra=()):
        y = f(*inputs, *extra)
        gy = rand(*y.shape)
        return lambda: torch.autograd.grad(f(*inputs, *extra), inputs, gy)

    dd = fields * dim
    dcn_in = [rand(m, rows_, dd).requires_grad_()] + \
        [rand(m, dd, dd, scale=0.1).requires_grad_() for _ in range(2)] + \
        [rand(m, 1, dd, scale=0.1).requires_grad_() for _ in range(2)]
    out.append(("expert_dcn", shape, lambda x, w0, w1, b0, b1: K.dcn(x, (w0, w1), (b0, b1)),
                lambda f: train(f, dcn_in)))
    groups = 4
    part = torch.arange(fields, device=dev) % groups
    gw_in = [rand(m, rows_, fields, groups, dim).requires_grad_(),
             torch.ones(m, groups, groups, device=dev, requires_grad=True)]
    out.append(("expert_gwpfm", shape, K.gwpfm,
                lambda f: train(f, gw_in, (i, j, part[i], part[j]))))
    x_in = [rand(m, rows_, fields, dim).requires_grad_()]
    out.append(("expert_fm", shape, K.fm, lambda f: train(f, x_in)))
    out.append(("expert_ipnn", shape, K.ipnn, lambda f: train(f, x_in, (i, j))))

    # Losses: one task, all-ones weights, labels Bernoulli(0.25).
    n = 1024 if quick else 4096
    z = rand(n, scale=3.0).requires_grad_()
    y = (torch.rand(n, generator=g) < 0.25).float().to(dev)
    for name, fn in (("loss_bce", K.bce),
                     ("loss_combined_pair", lambda z, y: K.combined_pair(z, y, 0.6)),
                     ("loss_combined_list", lambda z, y: K.combined_list(z, y, 0.9))):
        out.append((name, f"{n} rows, 1 task", fn,
                    lambda f: lambda: torch.autograd.grad(f(z, y), (z,))))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=os.environ.get("WGREC_TORCH_DEVICE", "cpu"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--filter", default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-budget", type=float, default=None,
                    help="seconds of compiling after which later kernels skip torch.compile")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {a.device}: torch {torch.__version__} sees no CUDA device")
    dev = torch.device(a.device)
    torch.manual_seed(0)
    if dev.type == "cpu":
        torch.set_num_threads(os.cpu_count())
        name = platform.processor() or platform.machine()
    else:
        name = torch.cuda.get_device_name(dev)
    results = []
    compiling = 0.0
    for kernel, shape, fn, runner in cases(dev, a.quick):
        if a.filter and a.filter not in kernel:
            continue
        eager = median_seconds(runner(fn), a.repeats, dev)
        compiled, note = None, None
        if a.no_compile:
            note = "not run (--no-compile)"
        elif a.compile_budget is not None and compiling > a.compile_budget:
            note = f"not run (compile budget of {a.compile_budget:g} s spent)"
        else:
            start = time.perf_counter()
            try:
                torch._dynamo.reset()
                compiled = median_seconds(runner(torch.compile(fn)), a.repeats, dev)
            except Exception as e:  # noqa: BLE001 — any failure of compile is reported, not fatal
                note = short_error(e)
            compiling += time.perf_counter() - start
        results.append(dict(kernel=kernel, shape=shape, eager_ms=eager * 1e3,
                            compile_ms=None if compiled is None else compiled * 1e3,
                            compile_note=note))
        if not a.json:
            c = "n/a" if compiled is None else f"{compiled * 1e3:.3f}"
            print(f"{kernel:<26} {eager * 1e3:>11.3f} {c:>11}  {shape}"
                  + (f"  [compile: {note}]" if note else ""), flush=True)
    report = dict(torch=torch.__version__, device=str(dev), device_name=name,
                  threads=torch.get_num_threads(), repeats=a.repeats, quick=a.quick,
                  results=results)
    if a.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
