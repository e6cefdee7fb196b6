#!/usr/bin/env python3
"""Tabulates scripts/online.sh's sweep: per mode (online, no-admission, frozen) and seed, the
progressive-validation figures of the stream (the mean of the windows' AUCs, the logloss and
calibration over every scored row), and the paired differences from the frozen model, mean ± sample
standard deviation over the seeds. Usage: python3 scripts/online-table.py OUT [TASK]"""
import json
import statistics
import sys
from pathlib import Path

MODES = ["online", "no-admission", "frozen"]


def figures(path, task):
    report = json.loads(Path(path).read_text())
    windows = report["windows"]
    aucs = [w["tasks"][task]["auc"] for w in windows if w["tasks"][task]["auc"] is not None]
    total = windows[-1]["total"][task]
    admitted = sum(s["counters"]["admitted"] for s in report["ids"])
    return {
        "auc": statistics.fmean(aucs),
        "logloss": total["logloss"],
        "calibration": total["calibration"],
        "rows": report["rows"],
        "rows_per_sec": report["rows_per_sec"],
        "admitted": admitted,
    }


def spread(values):
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def main():
    out = Path(sys.argv[1])
    task = sys.argv[2] if len(sys.argv) > 2 else "click"
    seeds = sorted(int(p.stem.split("-")[-1]) for p in out.glob("frozen-*.json"))
    table = {m: {s: figures(out / f"{m}-{s}.json", task) for s in seeds if (out / f"{m}-{s}.json").exists()} for m in MODES}
    print(f"seeds {seeds}, task {task}\n")
    print("| mode | mean window AUC | stream logloss | calibration | rows/s | ids admitted |")
    print("|---|---|---|---|---|---|")
    for m in MODES:
        rows = table[m].values()
        if not rows:
            continue
        col = lambda k: spread([r[k] for r in rows])
        rate = statistics.median(r["rows_per_sec"] for r in rows)
        admitted = statistics.median(r["admitted"] for r in rows)
        print(f"| {m} | {col('auc')} | {col('logloss')} | {col('calibration')} | {rate:.0f} | {admitted:.0f} |")
    print("\npaired differences (per seed, then mean ± sd):\n")
    for a, b in [("online", "frozen"), ("no-admission", "frozen"), ("online", "no-admission")]:
        common = [s for s in seeds if s in table[a] and s in table[b]]
        if not common:
            continue
        for k in ["auc", "logloss"]:
            d = [table[a][s][k] - table[b][s][k] for s in common]
            per = ", ".join(f"{x:+.4f}" for x in d)
            print(f"- {a} − {b}, {k}: {per} → {spread(d)}")
    batch = [json.loads((out / f"batch-{s}.json").read_text()) for s in seeds if (out / f"batch-{s}.json").exists()]
    if batch:
        rate = statistics.median(b["train_samples_per_sec"] for b in batch)
        print(f"\nbatch training: test AUC {spread([b['test_auc'] for b in batch])}, {rate:.0f} samples/s (median)")


main()
