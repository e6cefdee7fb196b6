#!/usr/bin/env bash
# The dense benches side by side in one run: wgrec (cargo bench --bench dense: GEMM and experts beside
# the FMA ceiling) then PyTorch on the CPU (benches/torch/dense.py, benches/torch/experts.py) on the
# same shapes, then one table with the wgrec / PyTorch ratio per shape.
#
#   scripts/bench-dense.sh [OUT_DIR]        (default bench-out/dense; WGREC_BENCH_SMOKE=1 for tiny sizes)
#
# Needs python3 with torch. Lavapipe figures are CPU figures: the ratio then compares a software
# Vulkan driver with PyTorch's CPU kernels on the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-out/dense}"
mkdir -p "$out"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/wgrec-xdg}"
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
date -u +"%Y-%m-%dT%H:%M:%SZ" > "$out/date.txt"
cargo bench --bench dense 2>"$out/wgrec.log" | tee "$out/wgrec.txt"
python3 benches/torch/dense.py | tee "$out/torch_dense.txt"
python3 benches/torch/experts.py | tee "$out/torch_experts.txt"
python3 - "$out" <<'PY'
import re, sys, pathlib
out = pathlib.Path(sys.argv[1])
def rows(path):
    table = {}
    for line in (out / path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and "/" in parts[0] or (parts and parts[0] == "fma_ceiling"):
            try:
                table[parts[0]] = [None if p == "-" else float(p.rstrip("%")) for p in parts[1:]]
            except ValueError:
                pass
    return table
w = rows("wgrec.txt")
t = {**rows("torch_dense.txt"), **rows("torch_experts.txt")}
adapter = next((l for l in (out / "wgrec.txt").read_text().splitlines() if l.startswith("adapter:")), "")
print(f"\n{adapter}\n")
print("| kernel/shape | wgrec ms | wgrec GFLOP/s | of FMA | PyTorch CPU ms | wgrec / PyTorch |")
print("|---|---:|---:|---:|---:|---:|")
for name, vals in w.items():
    ms, gflops, share = vals[0], vals[1], vals[2]
    torch_ms = t.get(name, [None])[0]
    ratio = f"{torch_ms / ms:.3f}×" if torch_ms and ms else "-"
    fmt = lambda v, spec: "-" if v is None else format(v, spec)
    print(f"| {name} | {fmt(ms, '.3f')} | {fmt(gflops, '.2f')} | {fmt(share, '.1f')}{'%' if share is not None else ''} "
          f"| {fmt(torch_ms, '.3f')} | {ratio} |")
PY
