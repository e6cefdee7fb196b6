#!/usr/bin/env bash
# Issue 17's throughput comparison: the same model (configs/ml100k-online.toml) on the same 20,000
# rows (MovieLens-100K's last 20%: valid then test), by batch training (`wgrec train`, a read-ahead
# loader thread, one step per batch; its train_samples_per_sec counts the training passes only) and
# by `wgrec online` warm-started from a trained run (per batch: id admission, a progressive-
# validation forward pass with its read-back, one training step; checkpoints every 1000 batches),
# and `wgrec online --frozen` (scoring only). REPEATS runs each (3), medians printed.
#
#   scripts/online-speed.sh DATA OUT     DATA from `wgrec data fetch ml-100k --into DATA`
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?data folder}
out=${2:?output folder}
repeats=${REPEATS:-3}
wgrec=${WGREC:-target/release/wgrec}
data=$(cd "$data" && pwd)
mkdir -p "$out/data" "$out/stream"
out=$(cd "$out" && pwd)
cp "$data/schema.toml" "$out/data/"
{ cat "$data/valid.tsv"; tail -n +2 "$data/test.tsv"; } > "$out/data/train.tsv"
cp "$data/valid.tsv" "$out/data/valid.tsv"
cp "$data/test.tsv" "$out/data/test.tsv"
ln -sfn "$data/valid.tsv" "$out/stream/1-valid.tsv"
ln -sfn "$data/test.tsv" "$out/stream/2-test.tsv"
[ -d "$out/warm" ] || "$wgrec" train --config configs/ml100k-online.toml --data "$data" --out "$out/warm" > /dev/null
for r in $(seq "$repeats"); do
    "$wgrec" train --config configs/ml100k-online.toml --data "$out/data" --out "$out/batch" \
        --overwrite --json 2> /dev/null | tail -n 1 | python3 -c \
        'import json,sys; print("batch", json.load(sys.stdin)["train_samples_per_sec"])'
    for mode in learn frozen; do
        flags=(); [ "$mode" = frozen ] && flags=(--frozen)
        "$wgrec" online --from "$out/warm" --stream "$out/stream" --out "$out/online-$mode" \
            --overwrite --window 2000 --checkpoint-every 1000 "${flags[@]}" --json 2> /dev/null \
            | tail -n 1 | python3 -c \
            "import json,sys; print('online-$mode', json.load(sys.stdin)['rows_per_sec'])"
    done
done | tee "$out/speed.txt"
python3 - "$out/speed.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, value = line.split()
    runs.setdefault(mode, []).append(float(value))
batch = statistics.median(runs["batch"])
for mode, values in runs.items():
    m = statistics.median(values)
    print(f"{mode}: median {m:.0f} rows/s over {len(values)} runs ({', '.join(f'{v:.0f}' for v in values)}); {m / batch:.2f}x batch training")
PY
