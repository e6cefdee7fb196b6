#!/usr/bin/env bash
# Builds everything scripts/device-bench.sh runs and copies it into device-bin/ (git-ignored), so a
# machine with a GPU but no Rust toolchain can run it: the wgrec binary, the kernel test binary and
# the criterion bench binaries (dense, embedding, tim), under stable names.
#
#   scripts/build-device-bin.sh
#
# Build on x86-64 Linux (the device machine's architecture). The Vulkan loader is not bundled here:
# device-bench.sh unpacks .gl/*.deb when the machine has none (see the script).
set -euo pipefail
cd "$(dirname "$0")/.."
out=device-bin
rm -rf "$out"
mkdir -p "$out"
cargo build --release --bin wgrec
cp target/release/wgrec "$out/wgrec"
# cargo names the test and bench executables with hashes; its JSON messages say which is which.
executables() {
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] != ["bin"]:
        print(m["target"]["name"], m["executable"])
'
}
cargo test --release --no-run --test kernels --message-format=json | executables |
    while read -r name exe; do cp "$exe" "$out/$name"; done
cargo bench --no-run --bench dense --bench embedding --bench tim --message-format=json | executables |
    while read -r name exe; do cp "$exe" "$out/bench-$name"; done
# Symbols are not needed there and the device tool carries at most 64 MiB.
strip "$out"/* 2>/dev/null || true
ls -la "$out"
