#!/usr/bin/env bash
# f16 tables against f32 on MovieLens-100K (BENCHMARKS.md "f16 tables (issue 19)"): the default
# model (configs/ml100k.toml), the same with `dtype = "f16"` (configs/ml100k-f16.toml) and that
# with `[train] stochastic_rounding = true` (ml100k-f16-sr), seeds 1, 2 and 3 each (the config's
# `seed` replaced), one `wgrec train --json` line per run appended to
# OUT/results.jsonl, then the table: test AUC mean ± sample sd, per-seed AUCs, table memory.
#
#   scripts/ml100k-f16.sh DATA OUT
#
# Runs already in results.jsonl are skipped, so an interrupted comparison resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?data folder}
out=${2:?output folder}
wgrec=${WGREC:-target/release/wgrec}
mkdir -p "$out"
touch "$out/results.jsonl"
for config in ml100k ml100k-f16 ml100k-f16-sr; do
    for seed in 1 2 3; do
        if grep -q "\"config\":\"$config\",\"seed\":$seed," "$out/results.jsonl"; then
            continue
        fi
        if [ "$config" = ml100k-f16-sr ]; then
            sed "s/^seed = .*/seed = $seed/; s/^\[train\]\$/[train]\nstochastic_rounding = true/" \
                configs/ml100k-f16.toml >"$out/$config-$seed.toml"
        else
            sed "s/^seed = .*/seed = $seed/" "configs/$config.toml" >"$out/$config-$seed.toml"
        fi
        echo "== $config seed $seed ($(date -u +%H:%M:%S))" >&2
        line=$("$wgrec" train --config "$out/$config-$seed.toml" --data "$data" \
            --out "$out/run-$config-$seed" --overwrite --json | tail -n 1)
        echo "{\"config\":\"$config\",\"seed\":$seed,\"run\":$line}" >>"$out/results.jsonl"
    done
done
python3 - "$out/results.jsonl" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs.setdefault(r["config"], []).append(r)
print("| config | seeds | test AUC (mean ± sd) | per seed | table bytes (weights + state) |")
print("|---|---|---|---|---|")
for config, rs in runs.items():
    aucs = [r["run"]["test_auc"] for r in rs]
    aucs = [a if isinstance(a, float) else list(a.values())[0] for a in aucs]
    tables = rs[0]["run"].get("memory", {}).get("tables", [])
    total = sum(t.get("weights", 0) + t.get("state", 0) for t in tables)
    sd = statistics.stdev(aucs) if len(aucs) > 1 else float("nan")
    per = ", ".join(f"{a:.4f}" for a in aucs)
    print(f"| {config} | {len(rs)} | {statistics.mean(aucs):.4f} ± {sd:.4f} | {per} | {total:,} |")
PY
