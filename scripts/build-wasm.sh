#!/usr/bin/env bash
# Builds the page's two WebAssembly packages; worker.js loads one per browser:
#   www/pkg/          SIMD128 (every browser with WebGPU; the page's UI thread always uses this one)
#   www/pkg-relaxed/  SIMD128 + relaxed SIMD: the GEMM's multiply-adds fused where the processor has FMA
#                     (Chrome/Edge 114+, Firefox 145+; Safari refuses modules that hold relaxed ops)
#   bash scripts/build-wasm.sh [--release|--dev]     (default --release)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
profile="${1:---release}"
[[ "$profile" == "--release" || "$profile" == "--dev" ]] || { echo "build-wasm.sh: '$profile' is not --release or --dev" >&2; exit 2; }
echo "[wasm] www/pkg/ (SIMD128, $profile)"
wasm-pack build "$profile" --target web --out-dir www/pkg --no-typescript --no-pack
# The relaxed build keeps a target directory of its own: other flags in the same one would make cargo rebuild
# each build from scratch every time.
echo "[wasm] www/pkg-relaxed/ (SIMD128 + relaxed SIMD, $profile)"
target_dir=$(bash scripts/target-dir.sh)
CARGO_TARGET_DIR="$target_dir/wasm-relaxed" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
  wasm-pack build "$profile" --target web --out-dir www/pkg-relaxed --no-typescript --no-pack
