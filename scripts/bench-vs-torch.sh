#!/usr/bin/env bash
# wgrec against PyTorch in one run: `wgrec bench --json` (the kernel suite, src/bench/mod.rs), then
# the same kernels on the same shapes in PyTorch (benches/torch/suite.py: eager and torch.compile),
# then one ratio table per kernel (Markdown) with machine, adapter, command and date.
#
#   scripts/bench-vs-torch.sh [OUT_DIR]      (default bench-out/vs-torch)
#
# Environment:
#   WGREC_BENCH_QUICK=1       both sides on the suite's small shapes (a smoke run)
#   WGREC_BENCH_REPEATS=N     timed runs per kernel on both sides (default 10; medians)
#   WGREC_TORCH_DEVICE=cuda   PyTorch on CUDA (default cpu)
#   WGREC_TORCH_COMPILE=0     skip torch.compile (its column reads "not run")
#   WGREC_TORCH_COMPILE_BUDGET=S  stop compiling after S seconds of it (later kernels: "not run")
#   WGREC_TORCH_THREADS=N     torch threads of the whole-model comparison (CPU; default PyTorch's)
#   WGREC_BIN=path            a prebuilt wgrec (device-bin/wgrec on the device machine); otherwise
#                             `cargo build --release --bin wgrec` first
# First benches/torch/check.py checks the PyTorch baselines against loops over the definitions.
# Files: OUT/wgrec.json, OUT/torch.json, OUT/table.md (also printed), OUT/date.txt, and the whole-model
# comparisons under OUT/model/ (the one-task model) and OUT/model-stem/ (the same features and
# experts as a two-task STEM model, METHODS.md §3): the export, wgrec.json, torch.json.
#
# On lavapipe the wgrec figures are CPU figures (a software Vulkan driver) and PyTorch runs on the
# same cores: the ratio then compares two CPU implementations, not a GPU with a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-out/vs-torch}"
mkdir -p "$out"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/wgrec-xdg}"
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
repeats="${WGREC_BENCH_REPEATS:-10}"
device="${WGREC_TORCH_DEVICE:-cpu}"
quick=()
[ "${WGREC_BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
torch_args=(--json --device "$device" --repeats "$repeats" "${quick[@]}")
[ "${WGREC_TORCH_COMPILE:-1}" = 0 ] && torch_args+=(--no-compile)
[ -n "${WGREC_TORCH_COMPILE_BUDGET:-}" ] && torch_args+=(--compile-budget "$WGREC_TORCH_COMPILE_BUDGET")
bin="${WGREC_BIN:-}"
if [ -z "$bin" ]; then
    cargo build --release --bin wgrec >&2
    bin=target/release/wgrec
fi
date -u +"%Y-%m-%d %H:%M UTC" >"$out/date.txt"
wgrec_cmd=("$bin" bench --json --repeats "$repeats" "${quick[@]}")
torch_cmd=(python3 benches/torch/suite.py "${torch_args[@]}")
# The baselines must compute what wgrec computes before their times mean anything.
python3 benches/torch/check.py >&2
echo "== ${wgrec_cmd[*]}" >&2
"${wgrec_cmd[@]}" >"$out/wgrec.json"
echo "== ${torch_cmd[*]}" >&2
"${torch_cmd[@]}" >"$out/torch.json"
# The whole model: wgrec writes the bench model (src/bench/train.rs: M = 2 tables with DCNv2 and
# GwPFM, TIM, MNS, BatchNorm, MLP 128-64; dropout 0), its initial state and 8 batches, and times
# training and inference on them; benches/torch/model.py rebuilds the same model from that export,
# checks that its first training step gives wgrec's loss, and times it eager and compiled.
# The same again with --architecture stem (two tasks, a table set each beside the shared one,
# per-task gates with stop-gradient, a tower per task) under OUT/model-stem/.
for arch in single stem; do
    dir="$out/model"
    [ "$arch" = single ] || dir="$out/model-$arch"
    mkdir -p "$dir"
    model_cmd=("$bin" bench --export-model "$dir" --architecture "$arch" --json "${quick[@]}")
    echo "== ${model_cmd[*]}" >&2
    "${model_cmd[@]}" >"$dir/wgrec-run.json"
    model_torch=(python3 benches/torch/model.py "$dir" --device "$device" --json)
    [ "${WGREC_TORCH_COMPILE:-1}" = 0 ] || model_torch+=(--compile)
    [ -n "${WGREC_TORCH_THREADS:-}" ] && model_torch+=(--threads "$WGREC_TORCH_THREADS")
    echo "== ${model_torch[*]}" >&2
    "${model_torch[@]}" >"$dir/torch.json"
done
model_cmd[3]='DIR' model_cmd[5]='{single,stem}'
model_torch[2]='DIR'
python3 - "$out" "${wgrec_cmd[*]}" "${torch_cmd[*]}" "${model_cmd[*]}" "${model_torch[*]}" <<'PY' | tee "$out/table.md"
import json, os, pathlib, platform, sys
out, wcmd, tcmd = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
mcmd, mtcmd = sys.argv[4], sys.argv[5]
w = json.loads((out / "wgrec.json").read_text())
t = json.loads((out / "torch.json").read_text())
cpu = platform.processor() or platform.machine()
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
try:
    mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1]
    mem = f"{int(mem) / 2**20:.0f} GiB"
except (OSError, StopIteration):
    mem = "?"
print(f"- Date: {(out / 'date.txt').read_text().strip()}")
print(f"- Machine: {cpu}, {os.cpu_count()} cores, {mem}; {platform.system()} {platform.release()}")
print(f"- wgrec adapter: `{w['adapter']}`, {w['clock']}")
print(f"- PyTorch: {t['torch']} on {t['device']} ({t['device_name']}), {t['threads']} threads")
print(f"- Commands: `{wcmd}`; `{tcmd}` (driver: `scripts/bench-vs-torch.sh`)")
print("- Speed ratio = PyTorch ms / wgrec ms: **> 1 means wgrec is faster**. Medians of "
      f"{t['repeats']} timed runs on both sides.")
print()
print("| kernel | shape | wgrec ms | of ceiling | torch eager ms | torch.compile ms | speed ratio vs eager | speed ratio vs compile |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
torch_by = {r["kernel"]: r for r in t["results"]}
notes = []
for r in w["results"]:
    k = r["kernel"]
    share = f"{100 * r['of_ceiling']:.1f}% {'copy' if r['unit'] == 'gb_per_s' else 'FMA'}"
    tr = torch_by.get(k)
    if tr is None:
        if k.endswith("_ceiling"):
            print(f"| {k} | {r['shape']} | {r['median_ms']:.3f} | {share} | | | | |")
        continue
    e, c = tr["eager_ms"], tr["compile_ms"]
    cs = "n/a" if c is None else f"{c:.3f}"
    if c is None and tr.get("compile_note"):
        notes.append(f"{k}: {tr['compile_note']}")
    ratio_c = "n/a" if c is None else f"{c / r['median_ms']:.2f}×"
    print(f"| {k} | {r['shape']} | {r['median_ms']:.3f} | {share} | {e:.3f} | {cs} "
          f"| {e / r['median_ms']:.2f}× | {ratio_c} |")
print()
models = [(arch, json.loads((out / d / "wgrec.json").read_text()),
           json.loads((out / d / "torch.json").read_text()),
           json.loads((out / d / "model.json").read_text()))
          for arch, d in (("single", "model"), ("stem", "model-stem"))]
print(f"Whole model (`{mcmd}`; `{mtcmd}`): same model, same initial weights, same batches; "
      "first-step loss per task " + "; ".join(
          f"{arch}: wgrec {wm['first_loss']} vs PyTorch {tm.get('first_loss')}"
          for arch, wm, tm, _ in models) + ".")
print()
print("| whole model | shape | wgrec samples/s | torch eager samples/s | torch.compile samples/s | speed ratio vs eager | speed ratio vs compile |")
print("|---|---|---:|---:|---:|---:|---:|")
def fmt(v):
    return "n/a" if v is None else f"{v:,.0f}"
def ratio(w, t):
    return "n/a" if t is None else f"{w / t:.2f}×"
for arch, wm, tm, desc in models:
    shape = (f"{arch} ({len(desc['tasks'])} task{'s' if len(desc['tasks']) > 1 else ''}), batch "
             f"{wm['batch']}, {len(desc['groups'])} groups / "
             f"{sum(len(g['tables']) for g in desc['groups'])} tables, {len(desc['features'])} features, "
             f"{sum(t['rows'] for t in desc['tables']):,} embedding rows")
    for what, wk, tk, ck in [("training", "train_samples_per_sec", "train_samples_per_sec",
                              "compile_train_samples_per_sec"),
                             ("inference", "infer_samples_per_sec", "infer_samples_per_sec",
                              "compile_infer_samples_per_sec")]:
        w_, t_, c_ = wm[wk], tm.get(tk), tm.get(ck)
        print(f"| {what} | {shape} | {fmt(w_)} | {fmt(t_)} | {fmt(c_)} | {ratio(w_, t_)} | {ratio(w_, c_)} |")
print()
tm = models[0][2]
print("Whole-model speed ratio = wgrec samples/s / PyTorch samples/s (> 1: wgrec faster). "
      f"PyTorch tables: {tm.get('sparse_optimizer')} on sparse gradients (wgrec: row-wise Adagrad), "
      f"{tm.get('threads')} threads.")
for arch, d in (("single", "model"), ("stem", "model-stem")):
    try:
        kernels = json.loads((out / d / "wgrec-run.json").read_text()).get("kernels") or []
    except (OSError, ValueError):
        kernels = []
    tuned = [f"{k['family']} {k['class']}: {k['variant']}" for k in kernels if k["variant"] != "default"]
    print(f"- wgrec kernels ({arch}): {len(kernels)} choices, "
          + (f"{len(tuned)} not default ({'; '.join(tuned)})" if tuned else "every one the default variant"))
for arch, _, tm, _ in models:
    notes_m = tm.get("compile_notes") or {}
    for k, n in (notes_m.items() if isinstance(notes_m, dict) else enumerate(notes_m)):
        print(f"- torch.compile ({arch}), {k}: {'; '.join(n) if isinstance(n, list) else n}")
if notes:
    print()
    print("torch.compile n/a:")
    for n in notes:
        print(f"- {n}")
PY
