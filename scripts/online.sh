#!/usr/bin/env bash
# Issue 17's ml-100k experiment (docs/online.md): configs/ml100k-online.toml trained on the first
# 80% (the train split) with seeds 1, 2 and 3, then the last 20% (valid then test, in time order, as
# a folder of two partitions) streamed three ways from each trained run, with progressive
# validation (every row scored before the model learns from it):
#   online        learns, and gives new ids rows (admit_after as the config says)
#   no-admission  learns, new ids read the OOV row
#   frozen        the trained model, unchanged (scores only)
# Each `wgrec online --json` summary goes to OUT/<mode>-<seed>.json, each batch run's summary to
# OUT/batch-<seed>.json; runs already done are skipped, so an interrupted sweep resumes.
# `python3 scripts/online-table.py OUT` tabulates it; `wgrec online-curves` draws the windows.
#
#   scripts/online.sh DATA OUT     DATA from `wgrec data fetch ml-100k --into DATA`
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?data folder}
out=${2:?output folder}
window=${WINDOW:-2000}
wgrec=${WGREC:-target/release/wgrec}
[ -d "$data" ] || { echo "no data folder $data" >&2; exit 2; }
data=$(cd "$data" && pwd)
mkdir -p "$out/stream"
out=$(cd "$out" && pwd)
ln -sfn "$data/valid.tsv" "$out/stream/1-valid.tsv"
ln -sfn "$data/test.tsv" "$out/stream/2-test.tsv"
for seed in 1 2 3; do
    config=$out/ml100k-online-seed$seed.toml
    sed "s/^seed = 1$/seed = $seed/" configs/ml100k-online.toml > "$config"
    grep -q "^seed = $seed$" "$config" || { echo "seed not set in $config" >&2; exit 1; }
    if [ ! -s "$out/batch-$seed.json" ]; then
        "$wgrec" train --config "$config" --data "$data" --out "$out/batch-$seed" --overwrite \
            --json | tail -n 1 > "$out/batch-$seed.json.tmp"
        mv "$out/batch-$seed.json.tmp" "$out/batch-$seed.json"
    fi
    for mode in online no-admission frozen; do
        [ -s "$out/$mode-$seed.json" ] && continue
        flags=()
        [ "$mode" = frozen ] && flags=(--frozen)
        [ "$mode" = no-admission ] && flags=(--no-admission)
        "$wgrec" online --from "$out/batch-$seed" --stream "$out/stream" --out "$out/$mode-$seed" \
            --overwrite --window "$window" --checkpoint-every 1000 "${flags[@]}" --json \
            | tail -n 1 > "$out/$mode-$seed.json.tmp"
        mv "$out/$mode-$seed.json.tmp" "$out/$mode-$seed.json"
    done
done
