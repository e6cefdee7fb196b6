#!/usr/bin/env python3
"""The tables of docs/claims.md from scripts/claims.sh's OUT/results.jsonl and OUT/analyses.jsonl:
per config, test AUC / logloss as mean ± sample standard deviation over the seeds (with the seeds
counted), and the analysis numbers each claim reads (information abundance, TIM's rank correlation,
loss gradients on negatives, per-split AUCs).

Usage: python3 scripts/claims-table.py OUT [config…]
"""
import json
import statistics
import sys


def cell(values, digits=4):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) < 2:
        return f"{values[0]:.{digits}f} (1 seed)"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def load(path, field):
    runs = {}
    try:
        for line in open(path):
            r = json.loads(line)
            runs.setdefault(r["config"], {})[r["seed"]] = r[field]
    except FileNotFoundError:
        pass
    return runs


def task_value(run, key, task=None):
    v = run.get(key)
    if isinstance(v, dict):
        return v.get(task) if task else next(iter(v.values()))
    return v


def metrics_table(results, configs):
    print("| config | seeds | valid AUC | test AUC | test logloss | best epochs |")
    print("|---|---|---|---|---|---|")
    for c in configs:
        rs = results.get(c, {})
        if not rs:
            continue
        seeds = sorted(rs)
        get = lambda k: [task_value(rs[s], k) for s in seeds]
        epochs = ",".join(str(rs[s]["best_epoch"]) for s in seeds)
        print(f"| {c} | {len(seeds)} | {cell(get('valid_auc'))} | {cell(get('test_auc'))} | "
              f"{cell(get('test_logloss'))} | {epochs} |")


def collapse_table(analyses, configs):
    print("| config | seeds | IA of each field's whole embedding (tables side by side) | "
          "frequency-weighted | mean IA per (field, table) |")
    print("|---|---|---|---|---|")
    for c in configs:
        an = analyses.get(c, {})
        if not an:
            continue
        seeds = sorted(an)
        cols = [an[s]["collapse"] for s in seeds]
        print(f"| {c} | {len(seeds)} | {cell([x['mean_ia_concat'] for x in cols], 2)} | "
              f"{cell([x['mean_ia_concat_weighted'] for x in cols], 2)} | "
              f"{cell([x['mean_ia'] for x in cols], 2)} |")


def entangle_table(analyses, configs):
    rows = []
    for c in configs:
        an = analyses.get(c, {})
        ents = [an[s]["entanglement"] for s in sorted(an) if an[s].get("entanglement")]
        if not ents:
            continue
        for t, task in enumerate(ents[0]["tasks"]):
            for b, split in enumerate(ents[0]["splits"]):
                aucs = [e["splits"][b]["auc"][t] for e in ents]
                rowcount = ents[0]["splits"][b]["rows"]
                rows.append(f"| {c} | {task} | {split['bin']} | {rowcount} | {cell(aucs, 4)} |")
    if rows:
        print("| config | task | split (user's share of task-0 positives) | test rows (seed 1) | AUC |")
        print("|---|---|---|---|---|")
        print("\n".join(rows))
    for c in configs:
        an = analyses.get(c, {})
        ents = [an[s]["entanglement"] for s in sorted(an) if an[s].get("entanglement")]
        if ents and ents[0]["mixture"] == "learned":
            print(f"\n{c}: mean gate weight per tower over experts {ents[0]['experts']} (mean over seeds)\n")
            for u, tower in enumerate(ents[0]["towers"]):
                means = [statistics.mean(e["gate_mean"][u][k] for e in ents) for k in range(len(ents[0]["experts"]))]
                print(f"- {tower}: " + ", ".join(f"{m:.3f}" for m in means))


def tim_table(analyses, configs):
    print("| config | seeds | Spearman ρ (data MI vs learned attention) | cells |")
    print("|---|---|---|---|")
    for c in configs:
        an = analyses.get(c, {})
        tims = [an[s]["tim"] for s in sorted(an) if an[s].get("tim")]
        if tims:
            print(f"| {c} | {len(tims)} | {cell([t.get('spearman') for t in tims], 3)} | "
                  f"{tims[0].get('cells')} |")


def gradient_table(analyses, configs):
    print("| config (trained with) | seeds | output | loss measured | mean \\|∂L/∂z\\| on negatives (e-4) | "
          "on positives (e-4) | negatives × N |")
    print("|---|---|---|---|---|---|---|")
    for c in configs:
        an = analyses.get(c, {})
        if not an:
            continue
        seeds = sorted(an)
        outs = an[seeds[0]]["gradients"]["outputs"]
        for o, out in enumerate(outs):
            for k, loss in enumerate(out["losses"]):
                if loss["loss"] == "list":
                    continue
                get = lambda key: [an[s]["gradients"]["outputs"][o]["losses"][k][key] for s in seeds]
                print(f"| {c} ({out['trained_with']}) | {len(seeds)} | {out['output']} | {loss['loss']} | "
                      f"{cell([v * 1e4 for v in get('negative')], 3)} | "
                      f"{cell([v * 1e4 for v in get('positive')], 3)} | {cell(get('negative_scaled'), 3)} |")


def main(out, configs):
    results = load(f"{out}/results.jsonl", "run")
    analyses = load(f"{out}/analyses.jsonl", "analysis")
    configs = configs or list(results)
    print("### Metrics\n")
    metrics_table(results, configs)
    print("\n### Information abundance\n")
    collapse_table(analyses, configs)
    print("\n### TIM correlation\n")
    tim_table(analyses, configs)
    print("\n### Loss gradients\n")
    gradient_table(analyses, configs)
    print("\n### Entanglement\n")
    entangle_table(analyses, configs)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
