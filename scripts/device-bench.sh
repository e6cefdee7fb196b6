#!/usr/bin/env bash
# Every GPU figure wgrec reports, and the PyTorch CUDA baseline, in one call on a bare Linux x86-64
# machine with an NVIDIA driver, Python and PyTorch but no Rust toolchain and no network (the lent
# device machine): the kernel tests on the real GPU, `wgrec tune` on the bench model (its cache
# then used by every later step), the per-layer profile, the whole model and the kernels against
# PyTorch CUDA, `wgrec bench --json`, the scaling sweeps, the criterion sweeps (embedding, dense,
# TIM), then benches/torch/{dense,experts,tim}.py on CUDA, same shapes. Steps run in that order
# (most wanted first); a step that would start after WGREC_DEVICE_DEADLINE_S seconds (default 540)
# is skipped and says so, so one call stays within the device's 10-minute limit.
#
#   scripts/build-device-bin.sh                # here, first: fills device-bin/
#   scripts/device-bench.sh [OUT]              # there: results under OUT (default $OUT, else bench-out/device)
#
# Vulkan loader: if the machine has no libvulkan, the script unpacks .gl/*.deb (libvulkan1 and
# friends, fetched once as the device README says) and, if no NVIDIA ICD is registered, points
# VK_DRIVER_FILES at the driver's own manifest.
#
# Dry run on lavapipe (here, no GPU), proving the script before it meets a GPU:
#   scripts/build-device-bin.sh && WGREC_DEVICE_DRY_RUN=1 scripts/device-bench.sh bench-out/dry
# (smoke sizes, PyTorch on the CPU). The full run is sized to finish in under 8 minutes on an H100.
#
# Files written (8; the device tool brings back at most 8): summary.txt (the tables), all.log (every
# step's output), wgrec-bench.json, scaling_{rows,tim}.png, training_{batch,tables}.png, results.tar.gz (vs-torch/:
# wgrec.json, torch.json, table.md, the whole-model comparison; scaling/: the JSON and every chart;
# tune/: the tune cache and report; profile.json).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-bench-out/device}}"
mkdir -p "$out"
bin=device-bin
dry="${WGREC_DEVICE_DRY_RUN:-0}"
if [ ! -x "$bin/wgrec" ]; then
    echo "no $bin/wgrec: run scripts/build-device-bin.sh first" >&2
    exit 2
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
    if ls .gl/*.deb >/dev/null 2>&1; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    else
        echo "no Vulkan loader and no .gl/*.deb to unpack" >&2
    fi
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ] &&
    ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES="$nvidia_icd"
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/wgrec-xdg}"
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
export PYTHONUNBUFFERED=1
quick=()
criterion=(--bench --warm-up-time 0.3 --measurement-time 1)
if [ "$dry" = 1 ]; then
    # torch.compile on the CPU costs ~20 s a kernel here: the dry run compiles one kernel's worth
    # (the budget is checked before each kernel) to prove the path, the rest read "not run".
    export WGREC_BENCH_SMOKE=1 WGREC_TORCH_DEVICE=cpu WGREC_BENCH_QUICK=1 WGREC_BENCH_REPEATS=3
    export WGREC_TORCH_COMPILE_BUDGET=1
    quick=(--quick)
else
    # CUDA compiles (Triton) take seconds each; two minutes bounds them within the 8-minute run.
    export WGREC_TORCH_DEVICE=cuda WGREC_TORCH_COMPILE_BUDGET=120
fi
log="$out/all.log"
summary="$out/summary.txt"
: >"$log"
: >"$summary"
failed=0
deadline="${WGREC_DEVICE_DEADLINE_S:-540}"
# step NAME COMMAND…: runs it with its output appended to all.log; the tail of its stdout (its
# summary table) goes to summary.txt and to this script's stdout. Past the deadline: skipped.
step() {
    local name=$1
    shift
    local start=$SECONDS
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "== $name: skipped (${SECONDS} s elapsed, deadline ${deadline} s)" | tee -a "$log" "$summary"
        failed=1
        return
    fi
    echo "== $name: $*" | tee -a "$log"
    "$@" >"$out/.stdout" 2>>"$log"
    local rc=$?
    cat "$out/.stdout" >>"$log"
    {
        echo "== $name (exit $rc, $((SECONDS - start)) s)"
        # criterion's per-bench chatter stays in all.log; the summary tables start at "adapter:".
        if grep -q '^adapter:' "$out/.stdout"; then
            sed -n '/^adapter:/,$p' "$out/.stdout"
        else
            tail -n 40 "$out/.stdout"
        fi
        echo
    } | tee -a "$summary"
    [ "$rc" = 0 ] || failed=1
}
# The device tool brings back at most 8 files: the result folders are built outside $out and
# come back as one archive, the charts beside it.
work=$(mktemp -d)
mkdir -p "$work/tune"
# Every wgrec below compiles with the choices this run's tune makes (and nothing a user cached).
export WGREC_TUNE_CACHE="$work/tune/tune.json"
unset WGREC_VARIANT
step devices "$bin/wgrec" devices
step kernel-tests "$bin/kernels" --test-threads 4
# The bench model's choices (the STEM model shares most of its shape classes; the rest stay default).
step tune timeout 180 "$bin/wgrec" tune --bench-model "${quick[@]}" --rounds 5 --steps 3
cp "$out/.stdout" "$work/tune/report.txt" 2>/dev/null || true
step devices-verbose "$bin/wgrec" devices --verbose
step profile "$bin/wgrec" bench --profile "${quick[@]}"
"$bin/wgrec" bench --profile --json "${quick[@]}" >"$work/profile.json" 2>>"$log" || failed=1
step vs-torch env WGREC_BIN="$bin/wgrec" scripts/bench-vs-torch.sh "$work/vs-torch"
step wgrec-bench "$bin/wgrec" bench "${quick[@]}"
"$bin/wgrec" bench --json "${quick[@]}" >"$out/wgrec-bench.json" 2>>"$log" || failed=1
step scaling "$bin/wgrec" bench --scaling "$work/scaling" "${quick[@]}" --repeats 5
step bench-embedding "$bin/bench-embedding" "${criterion[@]}"
step bench-dense "$bin/bench-dense" "${criterion[@]}"
step bench-tim "$bin/bench-tim" "${criterion[@]}"
step torch-dense python3 benches/torch/dense.py
step torch-experts python3 benches/torch/experts.py
step torch-tim python3 benches/torch/tim.py
rm -f "$out/.stdout"
# The device tool returns at most 8 files: 4 charts here, every chart and JSON in the archive.
for png in scaling_rows scaling_tim training_batch training_tables; do
    cp "$work/scaling/$png.png" "$out"/ 2>>"$log" || failed=1
done
tar -czf "$out/results.tar.gz" --exclude='*.safetensors' -C "$work" vs-torch scaling tune profile.json 2>>"$log" || failed=1
rm -rf "$work"
echo "results: $summary, $log, $out/wgrec-bench.json, $out/results.tar.gz, 4 charts (*.png)"
exit "$failed"
