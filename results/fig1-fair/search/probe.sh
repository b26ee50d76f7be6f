#!/usr/bin/env bash
# probe NAME SEED [--set ...]: the fig1 preset's stages (SFT, D_golden, held-out pairs, proxy) with a one-step alignment run
set -euo pipefail
name=$1; seed=$2; shift 2
cd "$(dirname "$0")/../../.."
MATMUL_NUM_THREADS=1 target/release/alignment-gap reproduce --preset fig1 --seeds $seed --out /tmp/search/$name --cache /tmp/search/cache --overwrite \
  --set steps=1 --set 'offline_steps=[1]' --set offline_patience=0 --set golden_reference=false --set 'betas=[0.1]' --set 'offline_lrs=[]' --set 'align_seeds=[]' \
  "$@" > /tmp/search/$name.log 2>&1
python3 -c "
import json;r=json.load(open('/tmp/search/$name/results.json'));p=r['proxy'][0];t=dict((k,v) for k,v in r['timings'].items()) if isinstance(r['timings'],dict) else r['timings']
print('$name', p, t)" >> /tmp/search/summary.txt
