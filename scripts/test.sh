#!/usr/bin/env bash
# Sets up and runs every test: native (cargo test: CPU, and WGSL on lavapipe) and in headless Chromium
# (wasm-pack test: WGSL on SwiftShader through WebGPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"   # silences a harmless Vulkan loader warning
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
start=$(date +%s)

echo "== native tests (cargo test) =="
cargo test

echo "== browser tests (wasm-pack test --headless --chrome) =="
wasm-pack test --headless --chrome

echo "== page tests (the served page in headless Chromium; screenshots in target/screenshots/) =="
bash scripts/build-wasm.sh --dev
# dist/, the static site, from that package: one page test serves it with a plain static server.
bash scripts/build-site.sh --use-built-wasm
(cd tests/page && npm ci --no-audit --no-fund --loglevel=error)
target_dir=$(bash scripts/target-dir.sh)
ALIGNMENT_GAP_BIN="$target_dir/debug/alignment-gap" node --test tests/page/page.test.mjs

echo "== all tests passed in $(( $(date +%s) - start )) s =="
