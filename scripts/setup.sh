#!/usr/bin/env bash
# One set-up path for a fresh machine, used by scripts/serve.sh, scripts/test.sh and CI. Idempotent: it
# checks each piece, installs only what is missing, and says what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
say() { echo "[setup] $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. The wasm target of the Rust toolchain.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "installing rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 2. System packages: headless Chromium + its driver (WebGPU on SwiftShader), lavapipe (Vulkan on the CPU), and a
#    python3 (the page test serves dist/ with its plain http.server) when none is on the PATH.
missing=()
for pkg in chromium chromium-driver mesa-vulkan-drivers libvulkan1; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 3. wasm-bindgen-cli at exactly the version Cargo.lock pins (otherwise wasm-pack builds one every run).
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "cargo install wasm-bindgen-cli $want (was: ${have:-none}; ~6 min on 2 cores)"
  cargo install wasm-bindgen-cli --version "$want" --force
fi

# 4. wasm-pack.
if ! command -v wasm-pack >/dev/null; then
  say "cargo install wasm-pack (~3 min)"
  cargo install wasm-pack --version 0.15.1
fi

say "ready: $(rustc --version), wasm-bindgen $want, $(wasm-pack --version), $(chromium --version 2>/dev/null | head -1)"
