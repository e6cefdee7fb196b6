#!/usr/bin/env bash
# Issue 18's closed-loop simulation (docs/simulate.md): the world of configs/worlds/simulate.toml
# with the model of configs/simulate.toml, every policy over SEEDS seeds (5); the curves go to
# docs/bench/simulate-{regret,clicks}.png and the summary table is printed (BENCHMARKS.md,
# "Closed-loop simulation"); then greedy, UCB and Thompson again with the Gaussian head
# (configs/simulate-gaussian.toml) into OUT-gaussian. The machine and date are printed.
#
#   scripts/simulate.sh [OUT]     OUT defaults to runs/simulate
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/simulate}
seeds=${SEEDS:-5}
wgrec=${WGREC:-target/release/wgrec}
[ -x "$wgrec" ] || cargo build --release
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, $(uname -m)"
mkdir -p "$(dirname "$out")"
start=$(date +%s)
"$wgrec" simulate --world configs/worlds/simulate.toml --out "$out" --seeds "$seeds" \
    2> "$out.log" | tee "$out.summary.md"
tail -n 1 "$out.log"
echo "wall: $(( $(date +%s) - start )) s"
mkdir -p docs/bench
cp "$out/regret.png" docs/bench/simulate-regret.png
cp "$out/clicks.png" docs/bench/simulate-clicks.png
echo "with the Gaussian head (configs/simulate-gaussian.toml):"
"$wgrec" simulate --world configs/worlds/simulate.toml --model configs/simulate-gaussian.toml \
    --out "$out-gaussian" --seeds "$seeds" --policies greedy,ucb:1,thompson \
    2> "$out-gaussian.log" | tee "$out-gaussian.summary.md"
tail -n 1 "$out-gaussian.log"
echo "wall (both): $(( $(date +%s) - start )) s"
