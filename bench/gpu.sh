#!/usr/bin/env bash
# The GPU check and speed measurement, in one go (under 8 minutes on a real GPU): every kernel against its
# CPU twin on the card (`doctor`), the per-op profile of a train step at S and M, and the bench at S/M/L
# with each step's share of the attainable GEMM rate. Writes everything to $OUT (default bench/gpu-out/):
# doctor.txt, bench.txt (the table for bench/RESULTS.md, the card named in it), bench.json.
#
# The binary: $B, else target/release/alignment-gap, else built with cargo (a machine without a Rust
# toolchain needs $B: build it here and carry it).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/gpu-out}"
mkdir -p "$OUT"
B="${B:-target/release/alignment-gap}"
if [ ! -x "$B" ]; then
  cargo build --release --bin alignment-gap
  B=target/release/alignment-gap
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
start=$(date +%s)
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
} | tee "$OUT/machine.txt"
echo "== doctor (every kernel against its CPU twin on the card) =="
timeout 120 "$B" doctor --backend gpu | tee "$OUT/doctor.txt"
echo "== bench with per-op profile, S and M =="
timeout 180 "$B" bench --backend gpu --sizes S,M --repeats 3 --profile | tee "$OUT/profile.txt"
echo "== bench S/M/L =="
timeout 180 "$B" bench --backend gpu --sizes S,M,L --repeats 5 --json "$OUT/bench.json" | tee "$OUT/bench.txt"
echo "== done in $(( $(date +%s) - start )) s; results in $OUT/ =="
