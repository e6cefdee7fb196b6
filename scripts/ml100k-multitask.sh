#!/usr/bin/env bash
# The two-task MovieLens-100K comparison of BENCHMARKS.md ("Several tasks on MovieLens-100K"):
# each config of docs/multitask.md trained with seeds 1, 2 and 3 (the config's `seed` replaced),
# one `wgrec train --json` line per run appended to OUT/results.jsonl, then the table.
#
#   scripts/ml100k-multitask.sh DATA OUT [config names…]
#
# DATA is `wgrec data fetch ml-100k --into DATA`'s folder; the default configs are ml100k (click
# alone), ml100k-love, ml100k-shared, ml100k-mmoe, ml100k-ame, ml100k-stem and ml100k-ple. Runs
# already in results.jsonl are skipped, so an interrupted comparison resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?data folder}
out=${2:?output folder}
shift 2
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(ml100k ml100k-love ml100k-shared ml100k-mmoe ml100k-ame ml100k-stem ml100k-ple)
wgrec=${WGREC:-target/release/wgrec}
mkdir -p "$out"
touch "$out/results.jsonl"
for config in "${configs[@]}"; do
    for seed in 1 2 3; do
        if grep -q "\"config\":\"$config\",\"seed\":$seed," "$out/results.jsonl"; then
            continue
        fi
        sed "s/^seed = .*/seed = $seed/" "configs/$config.toml" >"$out/$config-$seed.toml"
        echo "== $config seed $seed ($(date -u +%H:%M:%S))" >&2
        line=$("$wgrec" train --config "$out/$config-$seed.toml" --data "$data" \
            --out "$out/run-$config-$seed" --overwrite --json | tail -n 1)
        echo "{\"config\":\"$config\",\"seed\":$seed,\"run\":$line}" >>"$out/results.jsonl"
    done
done
python3 scripts/ml100k-multitask-table.py "$out/results.jsonl"
