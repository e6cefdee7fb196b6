#!/usr/bin/env bash
# Issue 19's scale run: configs/scale/criteo-1e8.toml — one 10^8-row × 16-wide f16 table (3.2 GB of
# weights) and 25 f32 tables of 750,000 rows (1.5 GB with their state) over several storage groups —
# trained for one epoch on synthetic Criteo-layout rows, checkpointed, and the checkpoint read back
# by `wgrec eval`. Prints the memory statement (`wgrec plan`), steps/s, peak resident memory of the
# training process (the lavapipe device's buffers live in it) and the checkpoint's size.
#
#   scripts/scale.sh OUT [ROWS]     ROWS of synthetic data in all (default 80,000: 64,000 to train)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?output folder}
rows=${2:-80000}
wgrec=${WGREC:-target/release/wgrec}
config=configs/scale/criteo-1e8.toml
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ -f "$out/data/train.tsv" ] || "$wgrec" data synth --criteo --rows "$rows" --out "$out/data"
"$wgrec" plan --config "$config" --data "$out/data" | tee "$out/plan.txt"
timed=(); [ -x /usr/bin/time ] && timed=(/usr/bin/time -v -o "$out/train.time")
"${timed[@]}" "$wgrec" train --config "$config" --data "$out/data" --out "$out/run" --overwrite \
    --json | tail -n 1 > "$out/train.json"
"${timed[@]/train.time/eval.time}" "$wgrec" eval --checkpoint "$out/run" --json | tail -n 1 > "$out/eval.json"
python3 - "$out" "$config" <<'PY'
import json, os, re, sys, tomllib
out, config = sys.argv[1], sys.argv[2]
batch = tomllib.load(open(config, "rb"))["train"]["batch_size"]
train = json.load(open(f"{out}/train.json"))
evaluation = json.load(open(f"{out}/eval.json"))
def rss(name):
    try:
        text = open(f"{out}/{name}").read()
    except FileNotFoundError:
        return "n/a"
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return f"{kib / 2**20:.2f} GiB"
ckpt = os.path.getsize(f"{out}/run/last.safetensors")
sps = train["train_samples_per_sec"]
print(f"adapter: {train.get('adapter')}")
print(f"train: {sps:.0f} samples/s = {sps / batch:.3f} steps/s (batch {batch}); "
      f"peak resident {rss('train.time')}")
print(f"checkpoint: {ckpt / 1e9:.2f} GB; eval of it: test AUC {evaluation.get('test_auc', evaluation.get('auc'))}, "
      f"peak resident {rss('eval.time')}")
print(f"train test AUC {train['test_auc']:.4f}")
PY
