"""The same benchmark as `alignment-gap bench`, in PyTorch eager on the CPU, for a side-by-side ratio.

Model: Hugging Face GPT2LMHeadModel (eager attention, GELU tanh, tied head), context 32, vocab 44, sizes
S (2 layers, d 64, 4 heads), M (4, 128, 4), L (6, 256, 8). Train step: forward, the masked sequence
log-prob loss on 128 sequences, backward, global-norm clipping, AdamW. Sampling: 128 prompts of 8 tokens
to 32 tokens with the KV cache (generate, do_sample), no early stop.

Run: python3 bench/pytorch_bench.py [--threads 1 2] [--repeats 5] [--attn eager,sdpa] [--device cpu|cuda]
(needs torch + transformers; on cuda every timing waits for the device)
"""
import argparse
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

BATCH, CONTEXT, VOCAB, PROMPT = 128, 32, 44, 8
SIZES = [("S", 2, 64, 4), ("M", 4, 128, 4), ("L", 6, 256, 8)]


def flops(layers, c, b=BATCH, t=CONTEXT, v=VOCAB):  # same accounting as src/bench.rs
    n = b * t
    return 3.0 * (layers * (24 * n * c * c + 4 * n * t * c) + 2 * n * c * v)


def bench(name, layers, d, heads, repeats, attn="eager", device="cpu"):
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=CONTEXT, n_embd=d, n_layer=layers, n_head=heads,
                     activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     layer_norm_epsilon=1e-5, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    cfg._attn_implementation = attn
    model = GPT2LMHeadModel(cfg).to(device)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, VOCAB, (BATCH, CONTEXT), generator=g)
    targets = torch.cat([tokens[:, 1:], torch.zeros(BATCH, 1, dtype=tokens.dtype)], 1)
    weights = torch.zeros(BATCH, CONTEXT)
    weights[:, PROMPT:CONTEXT - 1] = 1
    tokens, targets, weights = tokens.to(device), targets.to(device), weights.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)

    def step():
        opt.zero_grad()
        lp = torch.log_softmax(model(tokens).logits, -1).gather(-1, targets[..., None])[..., 0]
        (-(lp * weights).sum(1).mean()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    sync()
    train_ms = (time.perf_counter() - start) / repeats * 1e3

    prompts = tokens[:, :PROMPT]
    sample_repeats = (repeats + 1) // 2

    def sample():
        with torch.no_grad():
            model.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=True, max_length=CONTEXT,
                           min_length=CONTEXT, use_cache=True, pad_token_id=0)

    sample()
    sync()
    start = time.perf_counter()
    for _ in range(sample_repeats):
        sample()
    sync()
    sample_ms = (time.perf_counter() - start) / sample_repeats * 1e3
    params = sum(p.numel() for p in model.parameters())
    return (name, params, train_ms, BATCH * CONTEXT / (train_ms / 1e3), flops(layers, d) / (train_ms / 1e3) / 1e9,
            BATCH * (CONTEXT - PROMPT) / (sample_ms / 1e3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="S,M,L")
    ap.add_argument("--attn", default="eager", help="comma-separated: eager, sdpa")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    if args.device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}")
    print(f"batch {BATCH} x context {CONTEXT}, vocab {VOCAB}; torch {torch.__version__}")
    print(f"{'size':<5} {'params':>10} {'train step (ms)':>16} {'train tokens/s':>16} {'GFLOP/s':>10} {'sample tokens/s':>18}  backend")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, layers, d, heads in SIZES:
            if name not in args.sizes.split(","):
                continue
            for attn in args.attn.split(","):
                r = bench(name, layers, d, heads, args.repeats, attn, args.device)
                where = f"{threads} thread(s)" if args.device == "cpu" else "f32"
                print(f"{r[0]:<5} {r[1]:>10} {r[2]:>16.1f} {r[3]:>16.0f} {r[4]:>10.2f} {r[5]:>18.0f}  "
                      f"pytorch {attn} {args.device}, {where}")


if __name__ == "__main__":
    main()
