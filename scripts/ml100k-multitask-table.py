#!/usr/bin/env python3
"""The table of scripts/ml100k-multitask.sh: per config and task, validation and test AUC, GAUC and
logloss as mean ± sample standard deviation over the seeds, and the training samples/s (median).

Usage: python3 scripts/ml100k-multitask-table.py RESULTS.jsonl
"""
import json
import statistics
import sys


def cell(values, digits=4):
    if len(values) < 2:
        return f"{values[0]:.{digits}f}" if values else "–"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main(path):
    runs = {}
    for line in open(path):
        r = json.loads(line)
        runs.setdefault(r["config"], []).append(r)
    print("| config | task | seeds | valid AUC | test AUC | test GAUC | test logloss | best epochs | samples/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config, rs in runs.items():
        tasks = rs[0]["run"]["test_auc"]
        tasks = list(tasks) if isinstance(tasks, dict) else ["click" if config == "ml100k" else "love"]
        for task in tasks:
            def get(key):
                out = []
                for r in rs:
                    v = r["run"][key]
                    out.append(v[task] if isinstance(v, dict) else v)
                return out
            epochs = ",".join(str(r["run"]["best_epoch"]) for r in rs)
            speed = statistics.median(r["run"]["train_samples_per_sec"] for r in rs)
            print(f"| {config} | {task} | {len(rs)} | {cell(get('valid_auc'))} | {cell(get('test_auc'))} | "
                  f"{cell(get('test_gauc'))} | {cell(get('test_logloss'))} | {epochs} | {speed:,.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
