#!/usr/bin/env bash
# Issue 16's experiments (content and graph features, METHODS.md §1.3–1.4): the configs of
# configs/content/ (and configs/ml100k.toml, the baseline) trained with seeds 1, 2 and 3 as
# scripts/claims.sh trains its configs: seed by seed so a partial sweep is comparable, the `seed` of
# [train] replaced, one `wgrec train --json` line per run appended to OUT/results.jsonl as
# {"config":…,"seed":…,"run":…}. Runs already recorded (and a pre-training already written) are
# skipped, so an interrupted sweep resumes. `python3 scripts/claims-table.py OUT` tabulates it.
#
#   scripts/content.sh ml100k DATA OUT   DATA from `wgrec data fetch ml-100k --into DATA`: pre-trains
#       GraphSAGE once (seed 1) on the click graph of the training split's first half (time order)
#       into OUT/pretrained, prints its held-out AUC, then trains ml100k (the default model),
#       ml100k-sim, ml100k-hashid, ml100k-both on the second half (see `windows` below).
#   scripts/content.sh synth DATA OUT    DATA from `wgrec data synth --rows 200000 --content-dim 32
#       --out DATA`: trains synth-base, synth-hashid, synth-hashid-random, synth-sim.
#
# The configs name their vector files by placeholders, @DATA@ (the data folder) and @PRETRAINED@
# (OUT/pretrained), which this script replaces with absolute paths in its copy of each config: a
# relative path in a config is relative to the config's folder, here OUT. The hashid features' own
# `seed` (the hyperplanes) is not the run's seed and stays as the config says.
set -euo pipefail
cd "$(dirname "$0")/.."
experiment=${1:?ml100k or synth}
data=${2:?data folder}
out=${3:?output folder}
wgrec=${WGREC:-target/release/wgrec}
[ -d "$data" ] || { echo "no data folder $data" >&2; exit 2; }
data=$(cd "$data" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
pretrained=$out/pretrained
touch "$out/results.jsonl"

# GraphSAGE once, on the training split's clicks; its log keeps the held-out AUC for a resumed sweep.
pretrain() {
    if [ ! -f "$pretrained/users.safetensors" ] || [ ! -f "$pretrained/items.safetensors" ] ||
        [ ! -f "$out/pretrain.log" ]; then
        echo "== pretrain graphsage ($(date -u +%H:%M:%S))" >&2
        "$wgrec" pretrain graphsage --data "$out/window-pretrain" --user user_id --item item_id --label click \
            --edges positive --dim 32 --seed 1 --out "$pretrained" >"$out/pretrain.log" 2>&1
    fi
    echo "== graphsage held-out AUC (from $out/pretrain.log):" >&2
    grep -i "auc" "$out/pretrain.log" >&2 || echo "   (its output names no AUC; see the log)" >&2
}

# Two windows of the training split, in its (time) order: GraphSAGE learns from the first half and
# every ranker, the baseline included, trains on the second half (valid and test as they are). The
# embeddings must not have seen the ranker's training clicks: pre-trained on the same rows, the
# user·item similarity of a training row says whether that row is a click-graph edge — a leak
# (MovieLens-100K seed 1 with the whole split in both: valid AUC 0.64 and logloss 1.5 after one
# epoch, against 0.69 and 0.64 without the feature). Production pre-trains on yesterday's log.
windows() {
    local rows half dir
    rows=$(($(wc -l <"$data/train.tsv") - 1))
    half=$((rows / 2))
    for dir in window-pretrain window-rank; do
        mkdir -p "$out/$dir"
        cp "$data/schema.toml" "$out/$dir/"
        ln -sf "$data/valid.tsv" "$data/test.tsv" "$out/$dir/"
    done
    head -n $((half + 1)) "$data/train.tsv" >"$out/window-pretrain/train.tsv"
    { head -n 1 "$data/train.tsv"; tail -n +$((half + 2)) "$data/train.tsv"; } >"$out/window-rank/train.tsv"
    data=$out/window-rank
}

case $experiment in
ml100k)
    configs=(ml100k ml100k-sim ml100k-hashid ml100k-both)
    windows
    pretrain
    ;;
synth)
    configs=(synth-base synth-hashid synth-hashid-random synth-sim synth-hashid-only synth-hashid-random-only)
    for f in items.safetensors items-random.safetensors users.safetensors; do
        [ -f "$data/$f" ] || {
            echo "$data has no $f: make it with wgrec data synth --rows 200000 --content-dim 32 --out $data" >&2
            exit 2
        }
    done
    ;;
*)
    echo "the experiment is ml100k or synth, not $experiment" >&2
    exit 2
    ;;
esac

# The config's copy for one seed: the seed line of [train] (exactly one) and the placeholders replaced.
configure() {
    local file=$1 seed=$2 copy=$3
    awk -v seed="$seed" '
        /^\[/ { train = ($0 == "[train]") }
        train && /^seed = / { $0 = "seed = " seed; n++ }
        { print }
        END { exit n == 1 ? 0 : 1 }' "$file" >"$copy.tmp" ||
        { echo "$file has no single seed line in [train] to replace" >&2; exit 2; }
    sed -e "s|@DATA@|$data|g" -e "s|@PRETRAINED@|$pretrained|g" "$copy.tmp" >"$copy"
    rm "$copy.tmp"
}

for seed in 1 2 3; do
    for config in "${configs[@]}"; do
        file=configs/content/$config.toml
        [ -f "$file" ] || file=configs/$config.toml
        key="\"config\":\"$config\",\"seed\":$seed,"
        if ! grep -q "$key" "$out/results.jsonl"; then
            configure "$file" "$seed" "$out/$config-$seed.toml"
            echo "== train $config seed $seed ($(date -u +%H:%M:%S))" >&2
            line=$("$wgrec" train --config "$out/$config-$seed.toml" --data "$data" \
                --out "$out/run-$config-$seed" --overwrite --json | tail -n 1)
            echo "{$key\"run\":$line}" >>"$out/results.jsonl"
        fi
    done
done
