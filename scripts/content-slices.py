#!/usr/bin/env python3
"""Test AUC of scripts/content.sh's runs on the slices a content feature is for: test rows whose item
the ranker's training split never shows ("cold"), or shows fewer than 5 times ("rare"), and, when
OUT/pretrained holds GraphSAGE's files, the rows whose user and item both have a vector there
("covered": where the similarity is a cosine, not its missing value). Each run's best checkpoint
scores the slice through `wgrec predict`.

Usage: python3 scripts/content-slices.py OUT [config…]   (WGREC names the binary; default
target/release/wgrec). The training split is the one each run trained on (its data-path.txt).
"""
import collections
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile


def auc(labels, scores):
    pairs = sorted(zip(scores, labels))
    pos = sum(labels)
    neg = len(labels) - pos
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg = (i + j + 1) / 2  # mean 1-based rank of the tie group
        rank_sum += avg * sum(l for _, l in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def covered(out):
    """(user ids, item ids) with a vector in OUT/pretrained, or None without one."""
    folder = os.path.join(out, "pretrained")
    if not os.path.isfile(os.path.join(folder, "users.safetensors")):
        return None
    from safetensors.numpy import load_file

    ids = lambda side: {str(i) for i in load_file(os.path.join(folder, f"{side}.safetensors"))["ids"]}
    return ids("users"), ids("items")


def slices(data, work, vectors):
    seen = collections.Counter()
    with open(os.path.join(data, "train.tsv")) as f:
        rows = csv.reader(f, delimiter="\t")
        item = next(rows).index("item_id")
        for r in rows:
            seen[r[item]] += 1
    with open(os.path.join(data, "test.tsv")) as f:
        lines = f.readlines()
    header, body = lines[0], lines[1:]
    names = header.rstrip("\n").split("\t")
    item, user = names.index("item_id"), names.index("user_id")
    keeps = [("cold", lambda r: seen[r[item]] == 0), ("rare", lambda r: seen[r[item]] < 5)]
    if vectors:
        keeps.append(("covered", lambda r: r[user] in vectors[0] and r[item] in vectors[1]))
    out = {}
    for name, keep in keeps:
        path = os.path.join(work, f"{name}.tsv")
        with open(path, "w") as f:
            f.write(header)
            f.writelines(l for l in body if keep(l.rstrip("\n").split("\t")))
        out[name] = path
    return out


def scored(wgrec, run, path, work):
    out = os.path.join(work, "p.tsv")
    subprocess.run([wgrec, "predict", "--checkpoint", run, "--input", path, "--output", out],
                   check=True, capture_output=True)
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(out) as f:
        preds = list(csv.DictReader(f, delimiter="\t"))
    return auc([int(r["click"]) for r in rows], [float(p["p_click"]) for p in preds]), len(rows)


def main(out, configs):
    wgrec = os.environ.get("WGREC", "target/release/wgrec")
    runs = collections.defaultdict(dict)
    for line in open(os.path.join(out, "results.jsonl")):
        r = json.loads(line)
        runs[r["config"]][r["seed"]] = os.path.join(out, f"run-{r['config']}-{r['seed']}")
    configs = configs or list(runs)
    with tempfile.TemporaryDirectory() as work:
        data = open(os.path.join(next(iter(runs[configs[0]].values())), "data-path.txt")).read().strip()
        paths = slices(data, work, covered(out))
        print("| config | seeds | " + " | ".join(f"{k} test AUC" for k in paths) + " | rows |")
        print("|---|---|" + "---|" * len(paths) + "---|")
        for c in configs:
            got = {k: [scored(wgrec, runs[c][s], p, work) for s in sorted(runs[c])] for k, p in paths.items()}
            cell = lambda v: f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f} ({', '.join(f'{x:.4f}' for x in v)})"
            cells = " | ".join(cell([a for a, _ in got[k]]) for k in paths)
            rows = ", ".join(str(got[k][0][1]) for k in paths)
            print(f"| {c} | {len(runs[c])} | {cells} | {rows} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
