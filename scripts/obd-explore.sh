#!/usr/bin/env bash
# Issue 18's OBD table (BENCHMARKS.md, "OBD: Thompson sampling vs greedy"): configs/obd-explore.toml
# (8 bootstrap heads; `gaussian` as $1 for the Gaussian head) trained on the random log's first 70%
# for seeds 1, 2, 3; for each, wgrec policy greedy and thompson (1,000 posterior draws per logged
# row) on the test part, estimated by wgrec ope (IPS, SNIPS, DR, 1,000 bootstrap resamples, 95%);
# beside them the logged random policy's on-policy rate on the same rows and the logged
# Bernoulli-TS policy's on bts.tsv. Prints the markdown table.
#
#   (from the repository root)
#   wgrec data fetch obd --into data/obd && cargo build --release && scripts/obd-explore.sh
#   DATA=/elsewhere/obd OUT=runs/x scripts/obd-explore.sh gaussian
set -euo pipefail
kind=${1:-bootstrap}
data=${DATA:-data/obd}
out=${OUT:-runs/obd-explore}
wgrec=${WGREC:-target/release/wgrec}
case $kind in
  bootstrap) config=configs/obd-explore.toml ;;
  gaussian) config=configs/obd-explore-gaussian.toml ;;
  *) echo "usage: $0 [bootstrap|gaussian]" >&2; exit 2 ;;
esac
mkdir -p "$out"

# The uniform-random target on a log of n rows: 1/80 for each of the 80 items.
uniform() {
  python3 -c "import sys; n = sum(1 for _ in open(sys.argv[1])) - 1; print('\t'.join(f'p_{a}' for a in range(80))); print(('\t'.join(['0.0125'] * 80) + '\n') * n, end='')" "$1"
}
uniform "$data/test.tsv" > "$out/uniform-test.tsv"
uniform "$data/bts.tsv" > "$out/uniform-bts.tsv"
"$wgrec" ope --log "$data/test.tsv" --schema "$data/schema.toml" --policy "$out/uniform-test.tsv" \
  --json > "$out/random.json"
"$wgrec" ope --log "$data/bts.tsv" --schema "$data/schema.toml" --policy "$out/uniform-bts.tsv" \
  --json > "$out/bts.json"

for seed in 1 2 3; do
  run="$out/$kind-s$seed"
  sed "s/^seed = 1$/seed = $seed/" "$config" > "$run.toml"
  "$wgrec" train --config "$run.toml" --data "$data" --out "$run" --overwrite --json \
    | tail -n 1 > "$run-train.json"
  for rule in greedy thompson; do
    "$wgrec" policy --checkpoint "$run" --log "$data/test.tsv" --actions-from "$data/train.tsv" \
      --policy "$rule" --draws 1000 --seed "$seed" --out "$run-$rule.tsv" \
      --reward-model "$run-q.tsv"
    "$wgrec" ope --log "$data/test.tsv" --schema "$data/schema.toml" --policy "$run-$rule.tsv" \
      --reward-model "$run-q.tsv" --json > "$run-$rule.json"
  done
done
python3 scripts/obd-explore-table.py "$out" "$kind"
