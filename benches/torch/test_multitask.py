#!/usr/bin/env python3
"""Tests of multitask.py (run: `python3 benches/torch/test_multitask.py`; exits 1 on a failure).

Against an independent per-sample float64 reference written below (loops over towers, samples and
experts, no batching), on seeded random expert outputs h [E, B, W] with the experts' slots
scrambled against their tables (two expert groups interleaved, as DCN + GwPFM tables are):
1. the logits of `stem` (3 sets: shared, task a's, task b's; the other task's set under
   stop-gradient), `ple` (shared + own), `mmoe` (one set) and `shared` (the mean, no gate);
2. stop-gradient: tower u's output has no gradient on a stopped expert's h (neither through the
   mixture nor through the gate's input) while its gate weights on that expert have one; with
   `stop_gradient=False` the same expert gets a gradient; a trained expert always does;
3. an expert outside a tower's sets has gate weight exactly 0 and no gradient from that tower
   (not even through the gate's input, which reads every expert).
"""
import math
import sys

import torch

from multitask import TaskTowers

E_PER_SET, W, B, HIDDEN = 2, 3, 5, [4, 3]
FAILURES = []


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        FAILURES.append(name)


def make_desc(arch):
    """A model.json's multi-task part: sets of E_PER_SET tables, slots interleaved by group."""
    n_sets = 3 if arch in ("stem", "ple") else 1
    sets = [{"name": n, "tables": list(range(s * E_PER_SET, (s + 1) * E_PER_SET))}
            for s, n in enumerate(["shared", "a", "b"][:n_sets])]
    e = n_sets * E_PER_SET
    # Groups: even tables first, then odd ones (DCN on even m, GwPFM on odd m).
    order = [m for m in range(e) if m % 2 == 0] + [m for m in range(e) if m % 2 == 1]
    slots = [order.index(m) for m in range(e)]
    routes = []
    for u in range(2):
        if arch == "stem":
            routes += [(u, 0, "train"), (u, 1 + u, "train"), (u, 2 - u, "stop_gradient")]
        elif arch == "ple":
            routes += [(u, 0, "train"), (u, 1 + u, "train")]
        else:
            routes += [(u, 0, "train")]
    return {"architecture": arch, "towers": 2, "expert_width": W, "hidden": HIDDEN,
            "gated": arch != "shared", "sets": sets, "slots": slots,
            "routes": [{"tower": u, "set": s, "mode": m} for u, s, m in routes]}, e


def make_params(g, desc, e):
    rnd = lambda *s: (torch.rand(*s, generator=g, dtype=torch.float64) * 2 - 1)
    p = {}
    if desc["gated"]:
        p["gate.weight"] = rnd(2, e, e * W)
        p["gate.bias"] = rnd(2, e) * 0.3
    fan = W
    for l, o in enumerate(HIDDEN):
        p[f"tower.{l}.weight"] = rnd(2, o, fan)
        p[f"tower.{l}.bias"] = rnd(2, o) * 0.2
        fan = o
    p["tower.head.weight"] = rnd(2, 1, fan)
    p["tower.head.bias"] = rnd(2, 1) * 0.2
    return p


def build(desc, params, e, stop_gradient=True):
    take = lambda name, shape: params[name].reshape(shape).clone()
    return TaskTowers(desc, take, e, stop_gradient)


def reference(desc, p, h):
    """Per (tower, sample) loops in float64: logits [B, 2]."""
    e = h.shape[0]
    read = [set() for _ in range(2)]
    for r in desc["routes"]:
        for m in desc["sets"][r["set"]]["tables"]:
            read[r["tower"]].add(desc["slots"][m])
    out = torch.zeros(B, 2, dtype=torch.float64)
    for u in range(2):
        for s in range(B):
            x = torch.cat([h[k, s] for k in range(e)])
            if desc["gated"]:
                a = [float(p["gate.weight"][u, k] @ x + p["gate.bias"][u, k]) for k in range(e)]
                top = max(a[k] for k in read[u])
                z = sum(math.exp(a[k] - top) for k in read[u])
                g = [math.exp(a[k] - top) / z if k in read[u] else 0.0 for k in range(e)]
            else:
                g = [1.0 / len(read[u]) if k in read[u] else 0.0 for k in range(e)]
            c = sum(g[k] * h[k, s] for k in range(e))
            for l in range(len(HIDDEN)):
                c = torch.relu(p[f"tower.{l}.weight"][u] @ c + p[f"tower.{l}.bias"][u])
            out[s, u] = p["tower.head.weight"][u, 0] @ c + p["tower.head.bias"][u, 0]
    return out


def test_logits():
    for seed, arch in enumerate(("stem", "ple", "mmoe", "shared")):
        g = torch.Generator().manual_seed(100 + seed)
        desc, e = make_desc(arch)
        p = make_params(g, desc, e)
        h = torch.rand(e, B, W, generator=g, dtype=torch.float64) * 2 - 1
        got = build(desc, p, e)(h, False, 0.0)
        ref = reference(desc, p, h)
        diff = (got - ref).abs().max().item()
        # float64 on both sides; only the summation orders differ
        check(f"{arch} logits", diff < 1e-12, f"max |Δ| {diff:.2e} (< 1e-12, float64)")


def h_grad(model, h, u):
    """d(tower u's logits summed)/dh [E, B, W] and the gate weight's gradient [U, E, E·W]."""
    h = h.clone().requires_grad_()
    model.zero_grad(set_to_none=True)
    model(h, True, 0.0)[:, u].sum().backward()
    gw = model.gate_w.grad if model.gated else None
    return h.grad, gw


def test_stop_gradient():
    g = torch.Generator().manual_seed(7)
    desc, e = make_desc("stem")
    p = make_params(g, desc, e)
    h = torch.rand(e, B, W, generator=g, dtype=torch.float64) * 2 - 1
    slots = desc["slots"]
    for u in range(2):
        other = [slots[m] for m in desc["sets"][2 - u]["tables"]]
        own = [slots[m] for m in desc["sets"][1 + u]["tables"]]
        dh, dgw = h_grad(build(desc, p, e), h, u)
        stopped = dh[other].abs().max().item()
        trained = min(dh[k].abs().max().item() for k in own)
        cols = torch.cat([torch.arange(k * W, (k + 1) * W) for k in other])
        gate_in = dgw[u][:, cols].abs().max().item()
        gate_row = dgw[u][other].abs().max().item()
        check(f"stem tower {u}: the other task's experts get no gradient", stopped == 0.0,
              f"max |dh| {stopped:.2e} on slots {other} (exactly 0)")
        check(f"stem tower {u}: its own experts get one", trained > 0,
              f"min |dh| {trained:.2e} on slots {own}")
        check(f"stem tower {u}: its gate weights on the stopped experts learn",
              gate_in > 0 and gate_row > 0,
              f"max |dW| on their input columns {gate_in:.2e}, on their logit rows {gate_row:.2e}")
        dh_free, _ = h_grad(build(desc, p, e, stop_gradient=False), h, u)
        free = dh_free[other].abs().max().item()
        check(f"stem tower {u}: without stop-gradient they do", free > 1e-6,
              f"max |dh| {free:.2e} on slots {other}")


def test_absent_experts():
    g = torch.Generator().manual_seed(11)
    desc, e = make_desc("ple")
    p = make_params(g, desc, e)
    h = torch.rand(e, B, W, generator=g, dtype=torch.float64) * 2 - 1
    model = build(desc, p, e)
    x = h.permute(1, 0, 2).reshape(B, e * W)
    for u in range(2):
        absent = [desc["slots"][m] for m in desc["sets"][2 - u]["tables"]]
        a = x @ model.gate_w[u].T + model.gate_b[u]
        gate = torch.softmax(a.masked_fill(~model.present[u], float("-inf")), -1)
        dh, _ = h_grad(model, h, u)
        check(f"ple tower {u}: the other task's experts are out of its gate",
              gate[:, absent].abs().max().item() == 0.0 and dh[absent].abs().max().item() == 0.0,
              f"gate on slots {absent}: {gate[:, absent].abs().max().item()}, "
              f"max |dh| {dh[absent].abs().max().item()}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    test_logits()
    test_stop_gradient()
    test_absent_experts()
    print(f"{len(FAILURES)} failed" if FAILURES else "all passed")
    sys.exit(1 if FAILURES else 0)
