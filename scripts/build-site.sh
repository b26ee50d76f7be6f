#!/usr/bin/env bash
# Writes dist/: the page as plain static files that any static file server or GitHub Pages can host —
# index.html, www/ (the page's modules, the wasm package and the shipped SFT and proxy models), and results/ (the committed experiments: their
# figures, summary.md, results.json, metrics.csv and results/index.json, without stage caches or models).
#   bash scripts/build-site.sh                 sets up, builds the wasm package (release) and writes dist/
#   bash scripts/build-site.sh --use-built-wasm  copies the www/pkg/ and www/pkg-relaxed/ already built (the tests build dev ones)
# Then, e.g.: python3 -m http.server --directory dist 8000   (a server must send .wasm as application/wasm).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" != "--use-built-wasm" ]]; then
  bash scripts/setup.sh
  export PATH="$HOME/.cargo/bin:$PATH"
  echo "[site] building the wasm packages into www/pkg/ and www/pkg-relaxed/"
  bash scripts/build-wasm.sh --release
fi
for pkg in pkg pkg-relaxed; do
  [[ -f www/$pkg/alignment_gap_bg.wasm ]] || { echo "[site] www/$pkg/ has no wasm build: run without --use-built-wasm" >&2; exit 1; }
done
[[ -f results/index.json ]] || { echo "[site] results/index.json is missing: run alignment-gap index" >&2; exit 1; }
# Written beside dist/ and renamed into place, so a failed build never leaves half a site.
tmp=$(mktemp -d dist.tmp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/www/pkg" "$tmp/www/pkg-relaxed" "$tmp/results"
cp index.html "$tmp/"
cp www/*.js www/*.css "$tmp/www/"
for pkg in pkg pkg-relaxed; do
  cp www/$pkg/alignment_gap.js www/$pkg/alignment_gap_bg.wasm "$tmp/www/$pkg/"
  if [[ -d www/$pkg/snippets ]]; then cp -r www/$pkg/snippets "$tmp/www/$pkg/"; fi
done
# The shipped SFT and proxy models (alignment-gap ship-stages) and their manifest, without the stage cache.
if [[ -f www/stages/index.json ]]; then
  mkdir -p "$tmp/www/stages"
  cp www/stages/index.json www/stages/*.safetensors "$tmp/www/stages/"
fi
cp results/index.json "$tmp/results/"
for dir in results/*/; do
  name=$(basename "$dir")
  [[ -f "$dir/results.json" ]] || continue
  mkdir -p "$tmp/results/$name"
  find "$dir" -maxdepth 1 -type f \( -name '*.svg' -o -name '*.md' -o -name 'results.json' -o -name 'metrics.csv' \) -exec cp {} "$tmp/results/$name/" \;
done
# GitHub Pages: serve the files as they are (no Jekyll).
touch "$tmp/.nojekyll"
chmod -R a+rX "$tmp"
rm -rf dist
mv "$tmp" dist
trap - EXIT
echo "[site] wrote dist/ ($(du -sh dist | cut -f1), $(find dist -type f | wc -l) files); serve it with any static server, e.g. python3 -m http.server --directory dist 8000"
