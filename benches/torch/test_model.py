#!/usr/bin/env python3
"""Tests of model.py (run: `python3 benches/torch/test_model.py`; exits 1 on a failure).

1. wgrec's own export: kernels_tests/fixtures/trajectory_init.safetensors is the initial state and
   4 batches of the gradient check's model written by wgrec (DCN + GwPFM, TIM with a side feature,
   a mean bag, MNS numeric, BatchNorm, BCE + combined-pair), and trajectory.safetensors' `losses[0]`
   its first-step losses from the float64 PyTorch model of fx_trajectory.py. model.py, given the
   model.json that describes that config (written here by hand), must reproduce them in f32.
2. Every other part, against an independent per-sample float64 reference written below (loops, no
   batching): FM over two non-adjacent tables of one group, FwFM, IPNN, an MLP expert, low-rank DCN,
   sum and mean bags with empty bags, two MNS bases, TIM with L = 0 samples, no BatchNorm + gate,
   BatchNorm + concat, BCE / list / pair losses including a batch with no positive. Seeded inputs.
3. The same-model check fails loudly: model.py exits non-zero when wgrec.json's first loss is off.
4. A mean-pooled sequence (`pooling = "mean"`, the TIM ablation) is refused by name.
"""
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import model as M

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "kernels_tests" / "fixtures"
FAILURES = []


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        FAILURES.append(name)


def model_losses(desc, init, raw):
    """model.py's first-step losses per batch (training mode, dropout 0), f32."""
    batches = M.load_batches(raw, desc, "cpu")
    out = []
    for b in batches:
        runner = M.Runner(M.Model(desc, init), "adagrad")
        out.append(M.first_loss(runner, b))
    return out


# ---------------------------------------------------------------- 1. wgrec's trajectory export
def test_trajectory():
    raw = load_file(str(FIXTURES / "trajectory_init.safetensors"))
    expected = load_file(str(FIXTURES / "trajectory.safetensors"))["losses"][0].tolist()
    init = {k: v for k, v in raw.items() if not k.startswith("batch.")}
    table = lambda name: {"name": name, "rows": raw[name].shape[0], "width": raw[name].shape[1]}
    names = ["user", "item", "genre", "age"]
    desc = {
        "dim": 4,
        "tables": [table(f"emb.{m}.{n}") for m in range(2) for n in names]
        + [table(f"emb.{m}.history.time") for m in range(2)],
        "fields": [4, 0, 1, 2, 3],
        "features": [
            {"name": "user", "kind": "categorical"},
            {"name": "item", "kind": "categorical"},
            {"name": "genre", "kind": "bag", "pooling": "mean"},
            {"name": "age", "kind": "numeric", "mns": [[2, 4], [3, 3]]},
            {"name": "history", "kind": "sequence", "item": "item", "side": ["genre"], "max_len": 5},
        ],
        "groups": [
            {"tables": [0], "width": 4, "expert": {"type": "dcn", "layers": 2, "rank": None}},
            {"tables": [1], "width": 8,
             "expert": {"type": "gwpfm", "groups": 2, "partition": [1, 0, 1, 1, 0]}},
        ],
        "expert_width": 6, "batch_norm": True, "combine": "mean", "hidden": [5], "dropout": 0.0,
        "tasks": [{"name": "click", "loss": "bce", "alpha": 1.0},
                  {"name": "love", "loss": "pair", "alpha": 0.7}],
        "sparse_lr": 0.05, "dense_lr": 0.01, "batch": 16,
    }
    got = model_losses(desc, init, raw)[0]
    diff = max(abs(a - b) for a, b in zip(got, expected))
    check("trajectory fixture first loss", diff < 1e-5,
          f"model.py {got} vs float64 {expected}, max |Δ| {diff:.2e} (< 1e-5)")


# ---------------------------------------------------------------- 2. hand-made export
K, W, B = 4, 5, 9
FEATURES = [
    {"name": "user", "kind": "categorical"},
    {"name": "item", "kind": "categorical"},
    {"name": "tags", "kind": "bag", "pooling": "sum"},
    {"name": "genre", "kind": "bag", "pooling": "mean"},
    {"name": "age", "kind": "numeric", "mns": [[2, 3], [5, 2]]},
    {"name": "hist", "kind": "sequence", "item": "item", "side": ["genre"], "max_len": 4},
]
ROWS = {"user": 7, "item": 11, "tags": 6, "genre": 5, "age": 2 * 3 + 5 * 2}
BUCKETS = 6
FIELDS = [5, 0, 1, 2, 3, 4]
NF = len(FIELDS)
GROUPS = [  # tables 0 and 3 share FM: a group of two non-adjacent tables
    {"tables": [0, 3], "width": K, "expert": {"type": "fm"}},
    {"tables": [1], "width": K, "expert": {"type": "fwfm"}},
    {"tables": [2], "width": K, "expert": {"type": "ipnn"}},
    {"tables": [4], "width": K, "expert": {"type": "mlp", "widths": [7, 3]}},
    {"tables": [5], "width": K, "expert": {"type": "dcn", "layers": 2, "rank": 3}},
]
MT = 6
TASKS = [{"name": "a", "loss": "bce", "alpha": 1.0}, {"name": "b", "loss": "list", "alpha": 0.8},
         {"name": "c", "loss": "pair", "alpha": 0.5}]


def expert_out(e):
    return {"fm": K, "fwfm": K, "ipnn": NF * (NF - 1) // 2, "mlp": 3, "dcn": NF * K}[e["type"]]


def make_export(g, batch_norm, combine, hidden):
    rnd = lambda *s: torch.rand(*s, generator=g) * 2 - 1
    init, tables = {}, []
    for m in range(MT):
        for f in FEATURES:
            name = f"emb.{m}.{f['name']}" + (".time" if f["kind"] == "sequence" else "")
            rows = BUCKETS if f["kind"] == "sequence" else ROWS[f["name"]]
            init[name] = rnd(rows, K) * 0.5
            init[name + ".state"] = torch.zeros(rows, 4)
            tables.append({"name": name, "rows": rows, "width": K})
    d = NF * K
    for gi, grp in enumerate(GROUPS):
        mg, e = len(grp["tables"]), grp["expert"]
        if e["type"] == "fwfm":
            init[f"expert.{gi}.r"] = rnd(mg * NF * NF)
        if e["type"] == "mlp":
            fan = d
            for l, wd in enumerate(e["widths"]):
                init[f"expert.{gi}.layer{l}.weight"] = rnd(mg * wd * fan) * 0.3
                init[f"expert.{gi}.layer{l}.bias"] = rnd(mg * wd) * 0.1
                fan = wd
        if e["type"] == "dcn":
            init[f"expert.{gi}.u"] = rnd(mg * 2 * d * 3) * 0.3
            init[f"expert.{gi}.v"] = rnd(mg * 2 * d * 3) * 0.3
            init[f"expert.{gi}.b"] = rnd(mg * 2 * d) * 0.1
        init[f"proj.{gi}.weight"] = rnd(mg, W, expert_out(e)) * 0.5
        if not batch_norm:
            init[f"proj.{gi}.bias"] = rnd(mg, W) * 0.1
    if batch_norm:
        init["proj.bn.weight"] = 1 + rnd(MT, W) * 0.2
        init["proj.bn.bias"] = rnd(MT, W) * 0.2
        init["proj.bn.running_mean"] = torch.zeros(MT, W)
        init["proj.bn.running_var"] = torch.ones(MT, W)
    if combine == "gate":
        init["combine.gate.weight"] = rnd(MT, MT * W)
        init["combine.gate.bias"] = rnd(MT) * 0.1
    widths = [MT * W if combine == "concat" else W] + hidden
    for l, (i, o) in enumerate(zip(widths, widths[1:])):
        init[f"mlp.{l}.weight"] = rnd(o, i) * 0.5
        init[f"mlp.{l}.bias"] = rnd(o) * 0.1
    init["head.weight"] = rnd(len(TASKS), widths[-1])
    init["head.bias"] = rnd(len(TASKS)) * 0.1
    desc = {"dim": K, "tables": tables, "fields": FIELDS, "features": FEATURES, "groups": GROUPS,
            "expert_width": W, "batch_norm": batch_norm, "combine": combine, "hidden": hidden,
            "dropout": 0.0, "tasks": TASKS, "sparse_lr": 0.05, "dense_lr": 0.01, "batch": B}
    raw = {}
    for i in range(3):
        ri = lambda hi, *s: torch.randint(0, hi, s, generator=g)
        for f, feat in enumerate(FEATURES):
            key = lambda k: f"batch.{i}.f{f}.{k}"
            if feat["kind"] == "sequence":
                lengths = ri(5, B)
                lengths[:2] = 0  # L = 0 samples
                n = int(lengths.sum())
                raw[key("lengths")] = lengths
                raw[key("target")] = torch.stack([ri(ROWS["item"], B), ri(ROWS["genre"], B)], 1)
                raw[key("behaviours")] = torch.stack([ri(ROWS["item"], n), ri(ROWS["genre"], n)], 1)
                raw[key("buckets")] = ri(BUCKETS - 1, n) + 1
                continue
            if feat["kind"] == "bag":
                counts = ri(4, B)
                counts[3] = 0  # an empty bag
            else:
                counts = torch.ones(B, dtype=torch.int64)
            raw[key("offsets")] = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
            hi = 2 ** 3 * 5 ** 2 if feat["kind"] == "numeric" else ROWS[feat["name"]]
            raw[key("rows")] = ri(hi, int(counts.sum()))
        labels = (torch.rand(B, len(TASKS), generator=g) < 0.4).float()
        if i == 1:
            labels[:, 2] = 0  # no positive: pair falls back to BCE
        raw[f"batch.{i}.labels"] = labels
    return desc, {k: v.float() for k, v in init.items()}, {k: v.float() for k, v in raw.items()}


def reference(desc, init, raw, i):
    """Per-sample float64 forward of src/graph/mod.rs's model on batch i: the losses per task."""
    P = {k: v.double() for k, v in init.items()}
    ids = lambda k: [int(x) for x in raw[f"batch.{i}.{k}"].flatten().tolist()]
    labels = raw[f"batch.{i}.labels"].double()
    n = labels.shape[0]

    def digit_rows(v, mns):
        out, at = [], 0
        for r, digits in mns:
            for k in range(digits):
                out.append(at + r * k + (v // r ** k) % r)
            at += r * digits
        return out

    def field(m, f, s):
        feat = FEATURES[f]
        name = feat["name"]
        if feat["kind"] == "sequence":
            lengths = ids(f"f{f}.lengths")
            start = sum(lengths[:s])
            tgt, beh, bk = ids(f"f{f}.target"), ids(f"f{f}.behaviours"), ids(f"f{f}.buckets")
            item, side, time = P[f"emb.{m}.item"], P[f"emb.{m}.genre"], P[f"emb.{m}.{name}.time"]
            if lengths[s] == 0:
                return torch.zeros(K, dtype=torch.float64)
            v = item[tgt[2 * s]] + side[tgt[2 * s + 1]] + time[0]
            es = [item[beh[2 * j]] + side[beh[2 * j + 1]] + time[bk[j]]
                  for j in range(start, start + lengths[s])]
            scores = torch.stack([e @ v / math.sqrt(K) for e in es])
            a = torch.softmax(scores, 0)
            return sum(a[j] * es[j] for j in range(len(es))) * v
        off, rows = ids(f"f{f}.offsets"), ids(f"f{f}.rows")
        mine = rows[off[s]:off[s + 1]]
        t = P[f"emb.{m}.{name}"]
        if feat["kind"] == "numeric":
            return sum(t[r] for v in mine for r in digit_rows(v, feat["mns"]))
        if not mine:
            return torch.zeros(K, dtype=torch.float64)
        total = sum(t[r] for r in mine)
        return total / len(mine) if feat.get("pooling") == "mean" else total

    def expert(gi, local, x):
        e = GROUPS[gi]["expert"]
        v = x.view(NF, K)
        if e["type"] == "fm":
            out = torch.zeros(K, dtype=torch.float64)
            for a in range(NF):
                for b in range(a + 1, NF):
                    out = out + v[a] * v[b]
            return out
        if e["type"] == "fwfm":
            r = P[f"expert.{gi}.r"].view(-1, NF, NF)[local]
            out = torch.zeros(K, dtype=torch.float64)
            for a in range(NF):
                for b in range(a + 1, NF):
                    out = out + r[a, b] * v[a] * v[b]
            return out
        if e["type"] == "ipnn":
            return torch.stack([v[a] @ v[b] for a in range(NF) for b in range(a + 1, NF)])
        if e["type"] == "mlp":
            h, fan = x, NF * K
            for l, wd in enumerate(e["widths"]):
                wt = P[f"expert.{gi}.layer{l}.weight"].view(-1, wd, fan)[local]
                bs = P[f"expert.{gi}.layer{l}.bias"].view(-1, wd)[local]
                h = wt @ h + bs
                if l + 1 < len(e["widths"]):
                    h = torch.relu(h)
                fan = wd
            return h
        d = NF * K
        u = P[f"expert.{gi}.u"].view(-1, 2, d, 3)[local]
        vv = P[f"expert.{gi}.v"].view(-1, 2, d, 3)[local]
        bias = P[f"expert.{gi}.b"].view(-1, 2, d)[local]
        xl = x
        for l in range(2):
            xl = x * (u[l] @ (vv[l].T @ xl) + bias[l]) + xl
        return xl

    hs = []  # h slots in group order
    for gi, grp in enumerate(GROUPS):
        for local, m in enumerate(grp["tables"]):
            ys = [torch.relu(expert(gi, local, torch.cat([field(m, f, s) for f in FIELDS])))
                  for s in range(n)]
            z = torch.stack(ys) @ P[f"proj.{gi}.weight"][local].T
            if not desc["batch_norm"]:
                z = torch.relu(z + P[f"proj.{gi}.bias"][local])
            hs.append(z)
    if desc["batch_norm"]:
        out = []
        for slot, z in enumerate(hs):
            mean = z.mean(0)
            var = ((z - mean) ** 2).mean(0)
            out.append(torch.relu(P["proj.bn.weight"][slot] * (z - mean) / torch.sqrt(var + 1e-5)
                                  + P["proj.bn.bias"][slot]))
        hs = out
    if desc["combine"] == "concat":
        c = torch.cat(hs, 1)
    elif desc["combine"] == "mean":
        c = sum(hs) / len(hs)
    else:
        cat = torch.cat(hs, 1)
        c = []
        for s in range(n):
            gate = torch.softmax(P["combine.gate.weight"] @ cat[s] + P["combine.gate.bias"], 0)
            c.append(sum(gate[k] * hs[k][s] for k in range(len(hs))))
        c = torch.stack(c)
    for l in range(len(desc["hidden"])):
        c = torch.relu(c @ P[f"mlp.{l}.weight"].T + P[f"mlp.{l}.bias"])
    z = c @ P["head.weight"].T + P["head.bias"]
    losses = []
    for t, task in enumerate(TASKS):
        zt, yt = z[:, t], labels[:, t]
        bce = sum(max(float(a), 0) - float(a) * float(y) + math.log1p(math.exp(-abs(float(a))))
                  for a, y in zip(zt, yt)) / n
        pos = [s for s in range(n) if yt[s] > 0.5]
        neg = [s for s in range(n) if not yt[s] > 0.5]
        if task["loss"] == "bce" or not pos or not neg:
            losses.append(bce)
            continue
        if task["loss"] == "pair":
            rank = sum(math.log1p(math.exp(float(zt[j] - zt[i2]))) for i2 in pos for j in neg)
            rank /= len(pos) * len(neg)
        else:
            lse = math.log(sum(math.exp(float(a)) for a in zt))
            rank = -sum(float(zt[i2]) - lse for i2 in pos) / len(pos)
        losses.append(task["alpha"] * bce + (1 - task["alpha"]) * rank)
    return losses


def test_every_kind():
    for seed, bn, combine, hidden in ((3, False, "gate", [6]), (4, True, "concat", [8, 4]),
                                      (5, True, "mean", [])):
        g = torch.Generator().manual_seed(seed)
        desc, init, raw = make_export(g, bn, combine, hidden)
        got = model_losses(desc, init, raw)
        for i in range(3):
            ref = reference(desc, init, raw, i)
            diff = max(abs(a - b) for a, b in zip(got[i], ref))
            check(f"bn={bn} combine={combine} hidden={hidden} batch {i}", diff < 2e-5,
                  f"model.py {[round(x, 6) for x in got[i]]} vs float64 "
                  f"{[round(x, 6) for x in ref]}, max |Δ| {diff:.2e} (< 2e-5)")


# ---------------------------------------------------------------- 3. the check fails loudly
def test_mismatch_exits():
    g = torch.Generator().manual_seed(9)
    desc, init, raw = make_export(g, True, "gate", [6])
    ref = reference(desc, init, raw, 0)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "model.json"), "w") as fh:
            json.dump(desc, fh)
        save_file(init, os.path.join(d, "init.safetensors"))
        save_file({k: v.contiguous() for k, v in raw.items()}, os.path.join(d, "batches.safetensors"))
        script = pathlib.Path(__file__).with_name("model.py")
        for label, loss, want in (("right", ref, 0), ("off by 1e-3", [x + 1e-3 for x in ref], 1)):
            with open(os.path.join(d, "wgrec.json"), "w") as fh:
                json.dump({"train_samples_per_sec": 1.0, "infer_samples_per_sec": 1.0,
                           "first_loss": loss, "steps": 1, "batch": B}, fh)
            p = subprocess.run([sys.executable, str(script), d, "--steps", "1", "--windows", "1",
                                "--threads", "1"], capture_output=True, text=True)
            check(f"model.py exit status, wgrec loss {label}", p.returncode == want,
                  f"rc {p.returncode} (want {want}); {p.stderr.strip().splitlines()[-1][:150]}")


# ---------------------------------------------------------------- 4. the TIM ablation is refused
def test_mean_pooled_sequence_is_refused():
    g = torch.Generator().manual_seed(10)
    desc, init, _ = make_export(g, True, "mean", [6])
    seq = [f for f in desc["features"] if f["kind"] == "sequence"]
    for f in seq:
        f["pooling"] = "mean"
    try:
        M.Model(desc, init)
        check("mean-pooled sequence refused", False, "model.py built it")
    except SystemExit as e:
        check("mean-pooled sequence refused", len(seq) > 0 and e.code == 1,
              f"{len(seq)} sequence feature(s), exit {e.code}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    test_trajectory()
    test_every_kind()
    test_mismatch_exits()
    test_mean_pooled_sequence_is_refused()
    print(f"{len(FAILURES)} failed" if FAILURES else "all passed")
    sys.exit(1 if FAILURES else 0)
