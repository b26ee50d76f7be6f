#!/usr/bin/env bash
# Sets up, builds the wasm package and the CLI, and serves the page on http://127.0.0.1:8080.
# Arguments go to `alignment-gap serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "[serve] building the wasm packages into www/pkg/ and www/pkg-relaxed/"
bash scripts/build-wasm.sh --release
echo "[serve] building the CLI"
cargo build --release --bin alignment-gap
# Ask cargo where it put the binary: CARGO_TARGET_DIR (or a config) may move it out of ./target.
target_dir=$(bash scripts/target-dir.sh)
exec "$target_dir/release/alignment-gap" serve "$@"
