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

echo "== all tests passed in $(( $(date +%s) - start )) s =="
