#!/usr/bin/env bash
# The GPU check and speed measurement, in one go (under 9 minutes on a real GPU): every kernel against its
# CPU twin on the card (`doctor`), the per-op profile of a train step at S and M (each op run to completion, and
# inside the real step by GPU timestamps), the bench at S/M/L with each
# step's share of the attainable GEMM rate, PyTorch on the same card beside it (where python3 has torch with
# CUDA), and the whole *Figure 1 (quick)* pipeline on the card with its stage times. Writes to $OUT (default
# bench/gpu-out/), at most 9 files: machine.txt, doctor.txt, profile.txt, bench.txt (the table for
# bench/RESULTS.md, the card named in it), bench.json, bench-register.txt (the register-blocked matmul instead of
# the tiled one), pytorch.txt, quick.log, quick-results.json.
# A step that fails is reported and the script goes on, so one bad kernel does not hide the timings.
#
# The binary: $B, else target/release/alignment-gap, else built with cargo (a machine without a Rust
# toolchain needs $B: build it here and carry it).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/gpu-out}"
mkdir -p "$OUT"
B="${B:-target/release/alignment-gap}"
if [ ! -x "$B" ]; then
  cargo build --release --bin alignment-gap || exit 1
  B=target/release/alignment-gap
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
start=$(date +%s)
step() { # step NAME LIMIT_S FILE -- command…: run it with a time limit, keep its output, say how it ended
  local name=$1 limit=$2 file=$3; shift 4
  echo "== $name =="
  local t0=$(date +%s)
  timeout "$limit" "$@" 2>&1 | tee "$file"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $(( $(date +%s) - t0 )) s =="
}
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) CPUs"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null || true
  lscpu 2>/dev/null | grep -m1 'Model name' || true
} | tee "$OUT/machine.txt"
step "doctor (every kernel against its CPU twin on the card)" 90 "$OUT/doctor.txt" -- "$B" doctor --backend gpu
step "bench with per-op profile, S and M" 120 "$OUT/profile.txt" -- "$B" bench --backend gpu --sizes S,M --repeats 3 --profile
step "bench S/M/L" 120 "$OUT/bench.txt" -- "$B" bench --backend gpu --sizes S,M,L --repeats 5 --json "$OUT/bench.json"
# The same with the register-blocked matmul (the software adapters' kernel), to see what the tiled one buys.
ALIGNMENT_GAP_GPU_MATMUL=register step "bench S/M with the register-blocked matmul" 60 "$OUT/bench-register.txt" -- \
  "$B" bench --backend gpu --sizes S,M --repeats 5
if python3 -c 'import torch, transformers; assert torch.cuda.is_available()' 2>/dev/null; then
  step "PyTorch on the same card (f32, eager and SDPA attention)" 120 "$OUT/pytorch.txt" -- \
    python3 bench/pytorch_bench.py --device cuda --sizes S,M,L --repeats 20 --threads 1 --attn eager,sdpa
fi
quick=$(mktemp -d)
step "Figure 1 (quick), the whole pipeline on the card" 150 "$OUT/quick.log" -- \
  "$B" reproduce --preset fig1-quick --backend gpu --out "$quick"
cp "$quick/results.json" "$OUT/quick-results.json" 2>/dev/null || true
echo "== done in $(( $(date +%s) - start )) s; results in $OUT/ =="
