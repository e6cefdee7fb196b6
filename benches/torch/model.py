#!/usr/bin/env python3
"""The whole wgrec model in PyTorch, rebuilt from `wgrec bench --export-model DIR`, checked against
wgrec's first-step loss and timed on the same batches (issue 7 item 1).

Usage:  python3 benches/torch/model.py DIR [--device cpu|cuda] [--compile] [--steps N]
                                           [--windows N] [--sparse-optim adagrad|sparseadam]
                                           [--threads N] [--json]

DIR holds model.json (the model as data, `Graph::describe`), init.safetensors (the initial state by
checkpoint name), batches.safetensors (`batch.{i}.*`, exact integers in f32) and wgrec.json (wgrec's
samples/s and first loss). The model is src/graph/mod.rs's (its module docs), vectorised:
- tables: one sparse-gradient `F.embedding_bag` per (table m, feature) (categorical: sum of one id;
  bag: mean/sum; numeric: the MNS digit rows `block + radix·k + (v / radix^k) % radix`, computed on
  the device from the value, summed); TIM over [B, max_len, w] padded behaviours with a mask
  (target bucket 0, scores / √w, softmax over the valid positions, L = 0 gives u = 0);
- fields in model.json's order; experts batched over a group's tables (bmm / einsum, ReLU after);
  projection (BatchNorm1d per table and column, training: batch statistics, eval: running ones,
  momentum 0.1, eps 1e-5, then ReLU; or bias + ReLU); mean / concat / softmax-gate combine; MLP with
  dropout; heads; BCE / combined-pair / combined-list per task, the step minimising their sum.
  A label -1 is no label: a task's loss is its mean over the labelled rows.
- multi-task architectures (model.json's `architecture` other than `single`: shared, mmoe, ple,
  stem, ame; METHODS.md §3): the embedding sets' tables each with their own expert and
  projection as above, then per-task gates, mixtures (stop-gradient routes detached), towers and
  heads: multitask.py. AME's tables of different widths: each group's own `dim`.
Same-model check: one training-mode forward on batch 0 from the initial state, dropout 0, must give
wgrec's first_loss per task within |Δ| ≤ ATOL + RTOL·|wgrec| (f32 both sides); otherwise exit 1.
Timing (median of `windows` windows of `steps` steps after one warm-up window, device synchronised,
as wgrec's `time_steps`): training steps cycling through the batches from batch 1 (forward, loss,
backward, torch.optim.Adam at dense_lr on the dense tensors, and on the tables torch.optim.Adagrad
(element-wise, sparse gradients; wgrec's own is row-wise) or SparseAdam at sparse_lr); inference
(eval forward + sigmoid under inference_mode) cycling from batch 0. Batches are moved to the device
and the sequences padded before timing (a DataLoader's collate; wgrec's timing likewise starts from
prepared batches). `--compile` adds the same under torch.compile: training first with the whole
model compiled, and when that fails (torch 2.x Inductor: "Cannot access storage of SparseTensorImpl",
the lookups' sparse gradients) with the dense part compiled and the lookups eager; inference with the
whole model compiled. Each attempt is checked against wgrec's first loss; what failed and what ran
is in `compile_notes`; a figure is null (n/a) when every attempt failed.
--json: stdout is one JSON object (train/infer samples/s, compile_* of them, compile_notes,
first_loss, first_loss_wgrec, architecture, sparse_optimizer, device, torch, threads, steps, windows); the readable
lines go to stderr. On a shared CPU, --threads 1 avoids OpenMP threads spinning against other load.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from common import median_seconds, short_error, sync
from multitask import TaskTowers

ATOL, RTOL = 1e-5, 1e-4
BN_MOMENTUM, BN_EPS = 0.1, 1e-5


def fail(message):
    print(f"model.py: {message}", file=sys.stderr)
    sys.exit(1)


class Model(nn.Module):
    """src/graph/mod.rs's model for one model.json, parameters from init.safetensors, in `dtype`
    (float64 for the trajectory fixtures). `named`: every loaded tensor by checkpoint name (views
    of the parameters and buffers: they follow the training). `tim_emb`: None, or per table of
    `emb` the tensor TIM's lookups read instead (to split a table's gradient by path, as wgrec's
    fused updates do). `stop_gradient=False`: multi-task stop-gradient routes train (a control)."""

    def __init__(self, desc, init, dtype=torch.float32, stop_gradient=True):
        super().__init__()
        self.desc = desc
        self.dim = desc["dim"]
        self.multitask = desc.get("architecture", "single") != "single"
        self.tim_emb = None
        self.named = {}
        self.features = desc["features"]
        self.fields = desc["fields"]
        self.groups = desc["groups"]
        self.dropout = float(desc["dropout"])
        self.bn = bool(desc["batch_norm"])
        self.combine = desc["combine"]
        self.width = desc["expert_width"]
        self.tasks = desc["tasks"]
        self.n_tables = sum(len(g["tables"]) for g in self.groups)
        used = set()

        def take(name, shape=None):
            if name not in init:
                fail(f"init.safetensors has no tensor {name!r}")
            used.add(name)
            t = init[name].to(dtype)
            if shape is not None:
                if t.numel() != math.prod(shape):
                    fail(f"{name}: {t.numel()} values, the model needs {shape}")
                t = t.reshape(shape)
            self.named[name] = t.clone()
            return self.named[name]

        for feat in self.features:
            # The TIM ablation (`pooling = "mean"`) is not rebuilt here: refuse it by name rather
            # than fail later on its missing temporal table.
            if feat["kind"] == "sequence" and feat.get("pooling", "tim") != "tim":
                fail(f"sequence feature {feat['name']!r} has pooling = {feat['pooling']!r}; this "
                     "PyTorch rebuild supports only TIM (pooling = \"tim\"), so bench the "
                     "default model")
        by_name = {f["name"]: i for i, f in enumerate(self.features)}
        # Tables in model.json's storage order, one Parameter each (sparse gradients).
        self.emb = nn.ParameterList()
        index = {}
        for t in desc["tables"]:
            index[t["name"]] = len(self.emb)
            self.emb.append(nn.Parameter(take(t["name"], [t["rows"], t["width"]])))
            used.add(t["name"] + ".state")
        self.width_of = {}
        for g in self.groups:
            for m in g["tables"]:
                self.width_of[m] = g["width"]
        # table[m][f]: index into self.emb of emb.{m}.{feature f} (time table for a sequence).
        self.table = {}
        for m in range(self.n_tables):
            for f, feat in enumerate(self.features):
                name = f"emb.{m}.{feat['name']}" + (".time" if feat["kind"] == "sequence" else "")
                if name not in index:
                    fail(f"model.json lists no table {name}")
                self.table[m, f] = index[name]
        self.semantic = {}  # sequence feature → its item and side feature indices
        for f, feat in enumerate(self.features):
            if feat["kind"] == "sequence":
                self.semantic[f] = [by_name[feat["item"]]] + [by_name[s] for s in feat["side"]]
            if feat["kind"] == "numeric":
                base, radix, power, at = [], [], [], 0
                for r, digits in feat["mns"]:
                    for k in range(digits):
                        base.append(at + r * k)
                        radix.append(r)
                        power.append(r ** k)
                    at += r * digits
                for what, v in (("base", base), ("radix", radix), ("power", power)):
                    self.register_buffer(f"mns_{f}_{what}", torch.tensor(v, dtype=torch.int64))

        # Experts, projections.
        n_fields = len(self.fields)
        self.expert = nn.ModuleList()
        self.proj_w = nn.ParameterList()
        self.proj_b = nn.ParameterList()
        for g, grp in enumerate(self.groups):
            mg, w, e = len(grp["tables"]), grp["width"], grp["expert"]
            k = grp.get("dim", self.dim)  # AME: each group's own width
            d = n_fields * w
            p = nn.ParameterDict()
            kind = e["type"]
            if kind == "dcn":
                layers, rank = e["layers"], e["rank"]
                if rank is None:
                    p["w"] = nn.Parameter(take(f"expert.{g}.w", [mg, layers, d, d]))
                else:
                    p["u"] = nn.Parameter(take(f"expert.{g}.u", [mg, layers, d, rank]))
                    p["v"] = nn.Parameter(take(f"expert.{g}.v", [mg, layers, d, rank]))
                p["b"] = nn.Parameter(take(f"expert.{g}.b", [mg, layers, d]))
                out = d
            elif kind == "fwfm":
                p["r"] = nn.Parameter(take(f"expert.{g}.r", [mg, n_fields, n_fields]))
                out = k
            elif kind == "gwpfm":
                gg = e["groups"]
                p["r"] = nn.Parameter(take(f"expert.{g}.r", [mg, gg, gg]))
                out = k
            elif kind == "fm":
                out = k
            elif kind == "ipnn":
                out = n_fields * (n_fields - 1) // 2
            elif kind == "mlp":
                fan_in = d
                for l, width in enumerate(e["widths"]):
                    p[f"w{l}"] = nn.Parameter(take(f"expert.{g}.layer{l}.weight", [mg, width, fan_in]))
                    p[f"b{l}"] = nn.Parameter(take(f"expert.{g}.layer{l}.bias", [mg, width]))
                    fan_in = width
                out = fan_in
            else:
                fail(f"group {g}: unknown expert type {kind!r}")
            self.expert.append(p)
            self.proj_w.append(nn.Parameter(take(f"proj.{g}.weight", [mg, self.width, out])))
            if not self.bn:
                self.proj_b.append(nn.Parameter(take(f"proj.{g}.bias", [mg, self.width])))
        for g, grp in enumerate(self.groups):  # index tensors of the pairwise experts
            e = grp["expert"]
            i, j = torch.triu_indices(n_fields, n_fields, offset=1)
            self.register_buffer(f"pair_i_{g}", i)
            self.register_buffer(f"pair_j_{g}", j)
            if e["type"] == "gwpfm":
                part = torch.tensor(e["partition"], dtype=torch.int64)
                self.register_buffer(f"part_{g}", part)
            if e["type"] == "fwfm":
                ones = torch.ones(n_fields, n_fields, dtype=dtype)
                self.register_buffer(f"triu_{g}", torch.triu(ones, 1))
        mw = self.n_tables * self.width
        if self.bn:
            self.bn_weight = nn.Parameter(take("proj.bn.weight", [mw]))
            self.bn_bias = nn.Parameter(take("proj.bn.bias", [mw]))
            self.register_buffer("bn_mean", take("proj.bn.running_mean", [mw]))
            self.register_buffer("bn_var", take("proj.bn.running_var", [mw]))
        if self.multitask:
            if int(desc["towers"]) != len(self.tasks):
                fail(f"model.json: {desc['towers']} towers for {len(self.tasks)} tasks")
            self.towers = TaskTowers(desc, take, self.n_tables, stop_gradient)
        else:
            self.single_tower(desc, take, mw)
        unused = sorted(k for k in init if k not in used and not k.startswith("optim."))
        if unused:
            fail(f"init.safetensors tensors the model does not use: {unused}")

    def single_tower(self, desc, take, mw):
        """The one-task model's combine, shared MLP and head (a logit per task)."""
        if self.combine == "gate":
            self.gate_w = nn.Parameter(take("combine.gate.weight", [self.n_tables, mw]))
            self.gate_b = nn.Parameter(take("combine.gate.bias", [self.n_tables]))
        widths = [mw if self.combine == "concat" else self.width] + list(desc["hidden"])
        self.mlp_w = nn.ParameterList(
            nn.Parameter(take(f"mlp.{l}.weight", [o, i])) for l, (i, o) in enumerate(zip(widths, widths[1:])))
        self.mlp_b = nn.ParameterList(
            nn.Parameter(take(f"mlp.{l}.bias", [o])) for l, o in enumerate(widths[1:]))
        self.head_w = nn.Parameter(take("head.weight", [len(self.tasks), widths[-1]]))
        self.head_b = nn.Parameter(take("head.bias", [len(self.tasks)]))

    def sparse_parameters(self):
        return list(self.emb)

    def dense_parameters(self):
        ids = {id(p) for p in self.emb}
        return [p for p in self.parameters() if id(p) not in ids]

    # ---- the sparse part: every lookup (eager under --compile: sparse gradients) ----
    def lookups(self, batch):
        """Per table m: the non-sequence fields [B, F_plain·w] in field order, and per sequence
        feature (e [B, L, w], v [B, w]) for TIM."""
        digit_rows = {}
        for f, feat in enumerate(self.features):
            if feat["kind"] == "numeric":
                v, off = batch[f]
                base = getattr(self, f"mns_{f}_base")
                rows = (v[:, None] // getattr(self, f"mns_{f}_power")) % getattr(self, f"mns_{f}_radix") + base
                digit_rows[f] = (rows.reshape(-1), off * base.numel())
        out = []
        tim = self.emb if self.tim_emb is None else self.tim_emb
        for m in range(self.n_tables):
            plain, seqs = [], []
            for f in self.fields:
                feat = self.features[f]
                table = self.emb[self.table[m, f]]
                if feat["kind"] == "sequence":
                    target, beh, buckets, _ = batch[f]
                    table = tim[self.table[m, f]]
                    e = F.embedding(buckets, table, sparse=True)
                    v = F.embedding(torch.zeros_like(buckets[:1, 0]), table, sparse=True)
                    for s, sf in enumerate(self.semantic[f]):
                        sem = tim[self.table[m, sf]]
                        e = e + F.embedding(beh[..., s], sem, sparse=True)
                        v = v + F.embedding(target[:, s], sem, sparse=True)
                    seqs.append((e, v))
                    continue
                if feat["kind"] == "numeric":
                    rows, off = digit_rows[f]
                    mode = "sum"
                else:
                    rows, off = batch[f]
                    mode = feat.get("pooling", "sum")
                plain.append(F.embedding_bag(rows, table, off, mode=mode, sparse=True,
                                             include_last_offset=True))
            out.append((torch.cat(plain, 1) if plain else None, seqs))
        return out

    # ---- the dense part (what --compile compiles) ----
    def dense(self, looked, masks, labels, train, dropout):
        n_seq = sum(1 for f in self.fields if self.features[f]["kind"] == "sequence")
        xs = []
        for m, (plain, seqs) in enumerate(looked):
            w = self.width_of[m]
            cols = []
            for (e, v), mask in zip(seqs, masks):
                s = torch.bmm(e, v.expand(e.shape[0], w).unsqueeze(-1)).squeeze(-1) / math.sqrt(w)
                s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
                alpha = torch.softmax(s, 1) * mask
                cols.append(torch.bmm(alpha.unsqueeze(1), e).squeeze(1) * v)
            assert len(cols) == n_seq
            if plain is not None:
                cols.append(plain)
            xs.append(torch.cat(cols, 1))
        hs = []
        for g, grp in enumerate(self.groups):
            x = torch.stack([xs[m] for m in grp["tables"]])  # [M_g, B, F·w]
            y = torch.relu(self.interact(g, grp, x))
            z = torch.bmm(y, self.proj_w[g].transpose(1, 2))  # [M_g, B, W]
            if not self.bn:
                z = torch.relu(z + self.proj_b[g][:, None, :])
            hs.append(z)
        h = torch.cat(hs, 0)  # [M, B, W], h slot order
        b = h.shape[1]
        h = h.transpose(0, 1).reshape(b, -1)  # [B, M·W]
        if self.bn:
            h = torch.relu(F.batch_norm(h, self.bn_mean, self.bn_var, self.bn_weight, self.bn_bias,
                                        train, BN_MOMENTUM, BN_EPS))
        if self.multitask:
            h = h.view(b, self.n_tables, self.width).transpose(0, 1)  # [E, B, W], slot order
            return self.scores(self.towers(h, train, dropout), labels)
        if self.combine == "mean":
            c = h.view(b, self.n_tables, self.width).mean(1)
        elif self.combine == "concat":
            c = h
        else:
            gate = torch.softmax(F.linear(h, self.gate_w, self.gate_b), 1)
            c = (gate.unsqueeze(-1) * h.view(b, self.n_tables, self.width)).sum(1)
        for w_, b_ in zip(self.mlp_w, self.mlp_b):
            c = torch.relu(F.linear(c, w_, b_))
            if train and dropout > 0:
                c = F.dropout(c, dropout, True)
        return self.scores(F.linear(c, self.head_w, self.head_b), labels)

    def scores(self, logits, labels):
        """Probabilities [B, T] (no labels) or the losses [T]."""
        if labels is None:
            return torch.sigmoid(logits)
        return torch.stack([task_loss(t, logits[:, i], labels[:, i]) for i, t in enumerate(self.tasks)])

    def forward(self, batch, train, dropout):
        """Losses [T] (training) or probabilities [B, T] (evaluation): lookups, then the dense part."""
        labels = batch["labels"] if train else None
        return self.dense(self.lookups(batch), batch["masks"], labels, train, dropout)

    def interact(self, g, grp, x):
        e, p = grp["expert"], self.expert[g]
        mg, b, _ = x.shape
        n_fields, k = len(self.fields), grp.get("dim", self.dim)
        kind = e["type"]
        if kind == "dcn":
            xl = x
            for l in range(e["layers"]):
                if e["rank"] is None:
                    z = torch.baddbmm(p["b"][:, l, None, :], xl, p["w"][:, l].transpose(1, 2))
                else:
                    z = torch.baddbmm(p["b"][:, l, None, :], torch.bmm(xl, p["v"][:, l]),
                                      p["u"][:, l].transpose(1, 2))
                xl = x * z + xl
            return xl
        if kind == "mlp":
            h = x
            for l in range(len(e["widths"])):
                h = torch.baddbmm(p[f"b{l}"][:, None, :], h, p[f"w{l}"].transpose(1, 2))
                if l + 1 < len(e["widths"]):
                    h = torch.relu(h)
            return h  # the last ReLU is the expert's
        if kind == "fm":
            v = x.view(mg, b, n_fields, k)
            s = v.sum(2)
            return 0.5 * (s * s - (v * v).sum(2))
        if kind == "fwfm":
            v = x.view(mg, b, n_fields, k)
            r = p["r"] * getattr(self, f"triu_{g}")
            return (v * torch.einsum("mij,mbjk->mbik", r, v)).sum(2)
        if kind == "ipnn":
            v = x.view(mg, b, n_fields, k)
            gram = torch.matmul(v, v.transpose(2, 3))
            return gram[:, :, getattr(self, f"pair_i_{g}"), getattr(self, f"pair_j_{g}")]
        # gwpfm: field i's sub-embedding P(j) meets field j's sub-embedding P(i), weight r[P(i), P(j)]
        gg = e["groups"]
        v = x.view(mg, b, n_fields, gg, k)
        i, j = getattr(self, f"pair_i_{g}"), getattr(self, f"pair_j_{g}")
        part = getattr(self, f"part_{g}")
        pi, pj = part[i], part[j]
        wr = p["r"][:, pi, pj]  # [M_g, pairs]
        return (v[:, :, i, pj] * v[:, :, j, pi] * wr[:, None, :, None]).sum(2)


def task_loss(task, z, y):
    """METHODS.md §4.1 (src/kernels/loss.rs), all-ones weights, over the labelled rows (y ≥ 0; -1
    is no label; none labelled gives 0); a batch with no positive or no negative gives BCE alone.
    Branch-free (torch.where) so that torch.compile takes it whole."""
    labelled = (y >= 0).to(z.dtype)
    n = labelled.sum()
    bce = (F.binary_cross_entropy_with_logits(z, y.clamp(min=0), reduction="none") * labelled).sum() \
        / n.clamp(min=1)
    if task["loss"] == "bce":
        return bce
    pos = (y > 0.5).to(z.dtype)
    neg = labelled - pos
    n_pos, n_neg = pos.sum(), neg.sum()
    if task["loss"] == "pair":
        # −log σ(z_i − z_j) = softplus(z_j − z_i) over positives i, negatives j
        terms = F.softplus(z[None, :] - z[:, None]) * (pos[:, None] * neg[None, :])
        rank = terms.sum() / (n_pos * n_neg).clamp(min=1)
    else:
        # the softmax over the labelled rows only
        zl = torch.where(labelled > 0, z, torch.finfo(z.dtype).min)
        rank = -(torch.log_softmax(zl, 0) * pos).sum() / n_pos.clamp(min=1)
    alpha = task["alpha"]
    both = (n_pos > 0) & (n_neg > 0)
    return torch.where(both, alpha * bce + (1 - alpha) * rank, bce)


def load_batches(raw, desc, device, path="batches.safetensors", dtype=torch.float32):
    """Every batch of `raw` (batches.safetensors' tensors) on the device: per feature index (rows,
    offsets) or for a sequence (target, behaviours, buckets, mask) padded to max_len, plus labels
    (in `dtype`)."""
    n = 0
    while f"batch.{n}.labels" in raw:
        n += 1
    if n == 0:
        fail(f"{path}: no batch.0.labels")
    out = []
    for i in range(n):
        get = lambda k: raw[f"batch.{i}.{k}"]
        ids = lambda k: get(k).to(torch.int64)
        b = {"labels": get("labels").to(dtype).to(device)}
        rows = b["labels"].shape[0]
        masks = []
        for f, feat in enumerate(desc["features"]):
            if feat["kind"] != "sequence":
                b[f] = (ids(f"f{f}.rows").to(device), ids(f"f{f}.offsets").to(device))
                if b[f][1].numel() != rows + 1:
                    fail(f"{path}: batch {i} feature {f}: {b[f][1].numel()} offsets for {rows} rows")
                continue
            lengths, target = ids(f"f{f}.lengths"), ids(f"f{f}.target")
            beh, buckets = ids(f"f{f}.behaviours"), ids(f"f{f}.buckets")
            width = 1 + len(feat["side"])  # item + side ids per behaviour (flat or [n, S])
            if target.numel() != rows * width or beh.numel() != buckets.numel() * width:
                fail(f"{path}: batch {i} feature {f}: target {tuple(target.shape)} / behaviours "
                     f"{tuple(beh.shape)} are not [{rows}, {width}] / [{buckets.numel()}, {width}]")
            target, beh = target.reshape(rows, width), beh.reshape(-1, width)
            if int(lengths.sum()) != buckets.numel():
                fail(f"{path}: batch {i} feature {f}: lengths sum to {int(lengths.sum())}, "
                     f"{buckets.numel()} buckets")
            max_len = max(1, int(feat["max_len"]))
            if lengths.numel() and int(lengths.max()) > max_len:
                fail(f"{path}: batch {i} feature {f}: a sequence of {int(lengths.max())} > max_len {max_len}")
            sample = torch.repeat_interleave(torch.arange(rows), lengths)
            starts = torch.cumsum(lengths, 0) - lengths
            pos = torch.arange(beh.shape[0]) - starts[sample]
            pb = torch.zeros(rows, max_len, beh.shape[1], dtype=torch.int64)
            pk = torch.zeros(rows, max_len, dtype=torch.int64)
            mask = torch.zeros(rows, max_len, dtype=torch.bool)
            pb[sample, pos] = beh
            pk[sample, pos] = buckets
            mask[sample, pos] = True
            b[f] = (target.to(device), pb.to(device), pk.to(device), mask.to(device))
            masks.append((f, mask.to(device)))
        order = {f: k for k, f in enumerate(desc["fields"])}
        b["masks"] = [m for _, m in sorted(masks, key=lambda fm: order[fm[0]])]
        out.append(b)
    return out


class Runner:
    """One training step and one inference forward. `train_mode` / `infer_mode`: None (eager),
    "whole" (torch.compile of Model.forward: lookups and all) or "dense" (torch.compile of the dense
    part only, the lookups eager)."""

    def __init__(self, model, sparse_optim, train_mode=None, infer_mode=None):
        self.model = model
        compiled = lambda mode: {None: None, "whole": torch.compile(model.forward),
                                 "dense": torch.compile(model.dense)}[mode]
        self.train_fn, self.train_mode = compiled(train_mode), train_mode
        self.infer_fn, self.infer_mode = compiled(infer_mode), infer_mode
        lr_s, lr_d = float(model.desc["sparse_lr"]), float(model.desc["dense_lr"])
        self.opt_dense = torch.optim.Adam(model.dense_parameters(), lr=lr_d)
        if sparse_optim == "adagrad":
            self.opt_sparse = torch.optim.Adagrad(model.sparse_parameters(), lr=lr_s, eps=1e-8)
        else:
            self.opt_sparse = torch.optim.SparseAdam(model.sparse_parameters(), lr=lr_s)

    def run(self, fn, mode, batch, train, dropout):
        m = self.model
        labels = batch["labels"] if train else None
        if mode == "whole":
            return fn(batch, train, dropout)
        dense = fn if mode == "dense" else m.dense
        return dense(m.lookups(batch), batch["masks"], labels, train, dropout)

    def losses(self, batch, dropout):
        self.model.train()
        return self.run(self.train_fn, self.train_mode, batch, True, dropout)

    def train_step(self, batch):
        self.opt_dense.zero_grad(set_to_none=True)
        self.opt_sparse.zero_grad(set_to_none=True)
        loss = self.losses(batch, self.model.dropout).sum()
        loss.backward()
        self.opt_dense.step()
        self.opt_sparse.step()

    def infer(self, batch):
        self.model.eval()
        with torch.inference_mode():
            return self.run(self.infer_fn, self.infer_mode, batch, False, 0.0)


def first_loss(runner, batch):
    """The training-mode losses on batch 0 with dropout 0, BatchNorm's running stats restored."""
    m = runner.model
    saved = [t.clone() for t in (m.bn_mean, m.bn_var)] if m.bn else []
    with torch.no_grad():
        loss = runner.losses(batch, 0.0).float().cpu().tolist()
    if m.bn:
        m.bn_mean.copy_(saved[0])
        m.bn_var.copy_(saved[1])
    return loss


def check_loss(ours, theirs, label):
    ok = len(ours) == len(theirs) and all(
        abs(a - b) <= ATOL + RTOL * abs(b) for a, b in zip(ours, theirs))
    diff = max((abs(a - b) for a, b in zip(ours, theirs)), default=float("nan"))
    print(f"first loss {label}: torch {ours}, wgrec {theirs}, max |Δ| {diff:.3g} "
          f"(tolerance {ATOL:g} + {RTOL:g}·|wgrec|): {'same model' if ok else 'MISMATCH'}",
          file=sys.stderr)
    return ok


def time_train(runner, batches, device, steps, windows):
    """Training samples/s: the median over windows of `steps` steps (cycling through the batches
    from batch 1, as wgrec's), after one warm-up window."""
    rows = batches[0]["labels"].shape[0]
    k = [1]

    def window():
        for _ in range(steps):
            runner.train_step(batches[k[0] % len(batches)])
            k[0] += 1

    return rows * steps / median_seconds(window, windows, device, warmup=1)


def time_infer(runner, batches, device, steps, windows):
    """Inference samples/s (eval forward + sigmoid), likewise, cycling from batch 0."""
    rows = batches[0]["labels"].shape[0]

    def window():
        for i in range(steps):
            runner.infer(batches[i % len(batches)])

    return rows * steps / median_seconds(window, windows, device, warmup=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="also time under torch.compile")
    ap.add_argument("--steps", type=int, default=None, help="steps per window (wgrec.json's steps)")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--sparse-optim", choices=("adagrad", "sparseadam"), default="adagrad")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (CPU; default: PyTorch's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # With --json, stdout is the one JSON object; the readable lines go to stderr.
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    torch.sparse.check_sparse_tensor_invariants.disable()  # opted out explicitly (no warning)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        fail("--device cuda: CUDA is not available")
    d = args.dir
    with open(os.path.join(d, "model.json")) as fh:
        desc = json.load(fh)
    with open(os.path.join(d, "wgrec.json")) as fh:
        wg = json.load(fh)
    steps = args.steps or int(wg.get("steps", 5))
    device = torch.device(args.device)
    init = load_file(os.path.join(d, "init.safetensors"))
    path = os.path.join(d, "batches.safetensors")
    batches = load_batches(load_file(path), desc, device, path)

    runner = Runner(Model(desc, init).to(device), args.sparse_optim)
    ours = first_loss(runner, batches[0])
    theirs = [float(x) for x in wg["first_loss"]]
    if not check_loss(ours, theirs, "eager"):
        fail("the PyTorch model is not wgrec's (first-step losses differ): no benchmark")
    train = time_train(runner, batches, device, steps, args.windows)
    infer = time_infer(runner, batches, device, steps, args.windows)
    label = f"{desc.get('architecture', 'single')}, {args.device} ({torch.get_num_threads()} " \
            f"threads), torch {torch.__version__}, batch " \
            f"{batches[0]['labels'].shape[0]}, {steps} steps × {args.windows} windows, tables: " \
            f"{args.sparse_optim}"
    say(f"eager   train {train:12.0f} samples/s   infer {infer:12.0f} samples/s   ({label})")
    compiled = {"train": None, "infer": None}
    notes = {}
    if args.compile:
        # Training: the whole model first; Inductor may reject the sparse gradients of the
        # lookups, then the dense part alone (the lookups eager). Inference: the whole model.
        for what, modes in (("train", ("whole", "dense")), ("infer", ("whole",))):
            for mode in modes:
                try:
                    kw = {"train_mode": mode} if what == "train" else {"infer_mode": mode}
                    r = Runner(Model(desc, init).to(device), args.sparse_optim, **kw)
                    if what == "train":
                        cl = first_loss(r, batches[0])
                        if not check_loss(cl, theirs, f"compiled ({mode})"):
                            raise RuntimeError(f"compiled first loss {cl} differs from wgrec's")
                        compiled[what] = time_train(r, batches, device, steps, args.windows)
                    else:
                        compiled[what] = time_infer(r, batches, device, steps, args.windows)
                    notes.setdefault(what, []).append(f"{mode} compiled")
                    break
                except Exception as e:  # noqa: BLE001 — a failing torch.compile is reported
                    notes.setdefault(what, []).append(f"{mode} n/a: {short_error(e)}")
                    print(f"compile {what} {notes[what][-1]}", file=sys.stderr)
        fmt = lambda v: f"{v:12.0f}" if v is not None else f"{'n/a':>12}"
        say(f"compile train {fmt(compiled['train'])} samples/s   infer {fmt(compiled['infer'])} "
              f"samples/s   (train: {'; '.join(notes['train'])}; infer: {'; '.join(notes['infer'])})")
    say(f"wgrec   train {wg['train_samples_per_sec']:12.0f} samples/s   infer "
          f"{wg['infer_samples_per_sec']:12.0f} samples/s   ({wg.get('adapter', '?')})")
    if args.json:
        print(json.dumps({
            "train_samples_per_sec": train,
            "infer_samples_per_sec": infer,
            "compile_train_samples_per_sec": compiled["train"],
            "compile_infer_samples_per_sec": compiled["infer"],
            "compile_notes": notes or None,
            "first_loss": ours,
            "first_loss_wgrec": theirs,
            "architecture": desc.get("architecture", "single"),
            "sparse_optimizer": args.sparse_optim,
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "steps": steps,
            "windows": args.windows,
        }))


if __name__ == "__main__":
    main()
