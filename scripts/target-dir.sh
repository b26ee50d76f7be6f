#!/usr/bin/env bash
# Prints cargo's target directory for this checkout: CARGO_TARGET_DIR (or a cargo config) may move it out
# of ./target, so scripts ask cargo instead of assuming.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
