"""Checks that checkpoints written by `alignment-gap init-model` load in transformers unchanged and give the
same log-probs as `alignment-gap logprobs` (max |difference| <= 1e-4), on random token sequences.

Not run by CI (it needs torch + transformers). Run from the repository root after `cargo build --release`:
    python3 tests/pytorch/check_hf_checkpoint.py [--bin target/release/alignment-gap] [--backend cpu]
"""
import argparse
import json
import subprocess
import tempfile

import torch
from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel, PreTrainedTokenizerFast

SIZES = [  # (layers, d_model, heads, context, vocab)
    (2, 64, 4, 32, 44),
    (3, 48, 6, 20, 101),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/alignment-gap")
    ap.add_argument("--backend", default="cpu")
    args = ap.parse_args()
    worst = 0.0
    for seed, (layers, d, heads, ctx, vocab) in enumerate(SIZES):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([args.bin, "init-model", "--out", tmp, "--layers", str(layers), "--d-model", str(d),
                            "--heads", str(heads), "--context", str(ctx), "--vocab", str(vocab), "--seed", str(seed)],
                           check=True, capture_output=True)
            model = GPT2LMHeadModel.from_pretrained(tmp).eval()
            PreTrainedTokenizerFast(tokenizer_file=f"{tmp}/tokenizer.json")  # loads
            g = torch.Generator().manual_seed(seed)
            for length in (1, 2, ctx // 2, ctx):
                tokens = torch.randint(0, vocab, (length,), generator=g)
                ours = json.loads(subprocess.run(
                    [args.bin, "logprobs", "--model", tmp, "--tokens", ",".join(map(str, tokens.tolist())),
                     "--backend", args.backend], check=True, capture_output=True, text=True).stdout)["logprobs"]
                with torch.no_grad():
                    lp = torch.log_softmax(model(tokens[None]).logits[0], -1)
                theirs = [None] + [float(lp[i, tokens[i + 1]]) for i in range(length - 1)]
                assert ours[0] is None and len(ours) == len(theirs)
                diff = max([abs(a - b) for a, b in zip(ours[1:], theirs[1:])], default=0.0)
                worst = max(worst, diff)
                print(f"L{layers} d{d} H{heads} T{ctx} V{vocab} len {length:>2}: max |ours - transformers| = {diff:.2e}")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([args.bin, "init-model", "--out", tmp, "--layers", str(layers), "--d-model", str(d),
                            "--heads", str(heads), "--context", str(ctx), "--vocab", str(vocab), "--head", "score"],
                           check=True, capture_output=True)
            pm = GPT2ForSequenceClassification.from_pretrained(tmp).eval()
            assert pm.config.num_labels == 1 and pm.config.pad_token_id is not None
            print(f"preference model L{layers} d{d}: loads as GPT2ForSequenceClassification (num_labels=1)")
    print(f"worst max |difference| = {worst:.2e} ({'OK' if worst <= 1e-4 else 'FAIL'})")
    raise SystemExit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
