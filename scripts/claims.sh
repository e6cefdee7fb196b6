#!/usr/bin/env bash
# The runs behind docs/claims.md: each named config of configs/claims/ (or configs/) trained with
# seeds 1, 2 and 3 (the config's `seed` replaced), seed by seed so a partial sweep is comparable,
# one `wgrec train --json` line per run appended to OUT/results.jsonl, then `wgrec analyze` of
# each run appended to OUT/analyses.jsonl.
#
#   scripts/claims.sh DATA OUT config…      e.g. scripts/claims.sh data/ml100k runs/claims ml100k-me1 ml100k-se32
#
# DATA is `wgrec data fetch ml-100k --into DATA`'s folder (or a `wgrec data synth` folder for the
# synth configs). Runs and analyses already recorded are skipped, so an interrupted sweep resumes.
# `python3 scripts/claims-table.py OUT` prints the tables docs/claims.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?data folder}
out=${2:?output folder}
shift 2
[ $# -gt 0 ] || { echo "name at least one config" >&2; exit 2; }
wgrec=${WGREC:-target/release/wgrec}
mkdir -p "$out"
touch "$out/results.jsonl" "$out/analyses.jsonl"
for seed in 1 2 3; do
    for config in "$@"; do
        file=configs/claims/$config.toml
        [ -f "$file" ] || file=configs/$config.toml
        key="\"config\":\"$config\",\"seed\":$seed,"
        run=$out/run-$config-$seed
        if ! grep -q "$key" "$out/results.jsonl"; then
            grep -q "^seed = " "$file" || { echo "$file has no seed line to replace" >&2; exit 2; }
            sed "s/^seed = .*/seed = $seed/" "$file" >"$out/$config-$seed.toml"
            echo "== train $config seed $seed ($(date -u +%H:%M:%S))" >&2
            line=$("$wgrec" train --config "$out/$config-$seed.toml" --data "$data" \
                --out "$run" --overwrite --json | tail -n 1)
            echo "{$key\"run\":$line}" >>"$out/results.jsonl"
        fi
        if [ "${CLAIMS_ANALYZE:-1}" = 1 ] && ! grep -q "$key" "$out/analyses.jsonl"; then
            echo "== analyze $config seed $seed ($(date -u +%H:%M:%S))" >&2
            line=$("$wgrec" analyze --checkpoint "$run" --data "$data" --out "$run-analysis" --json | tail -n 1)
            echo "{$key\"analysis\":$line}" >>"$out/analyses.jsonl"
        fi
    done
done
