"""Writes tests/fixtures/bt_proxy.safetensors: a PyTorch + transformers reference for the Bradley–Terry proxy.

The proxy (src/train/pm.rs, proxy.kind = bradley_terry) scores each response alone with a GPT-2 trunk and a
one-output linear head (Hugging Face's GPT2ForSequenceClassification: `transformer` then `score`, no bias):
    s(x, y)        = Σ_{t in y's positions} score(h_t)       (proxy.score = summed)
                   = score(h_{last token of y})              (proxy.score = last)
    z(x, yw, yl)   = s(x, yw) − s(x, yl),    z(x, yl, yw) = s(x, yl) − s(x, yw)
    loss           = mean_i ½·softplus(−z(x, yw, yl)) + ½·softplus(z(x, yl, yw))    (position-debiased, as for
                                                                                    the pairwise proxy)
Each row is x ⊕ y padded with <pad> (id 0) to the task's context; attention is causal, so the padding after a
response cannot reach it. This script builds those rows itself from the raw prompts and responses it stores, so the
Rust test checks the Rust packing (spans, last positions), the chain rule through both responses and the model.

Stored: the task and model config (meta), every parameter (param.<name>), the raw prompts and responses
(prompts [B, doc_len + 1]; winners/losers [B, max_summary] padded with -1, their lengths), and per score read
(summed., last.): the per-row scores, the loss and the gradient of every parameter (grad.<name>).

Not run by CI (it needs torch). Run: python3 tests/pytorch/make_bt_fixture.py
"""
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2ForSequenceClassification

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "bt_proxy.safetensors")
PAD, EOS, SEP, SPECIALS = 0, 1, 2, 4  # src/tokenizer.rs SPECIALS: <pad> <eos> <sep> <unk>
TASK = dict(vocab_words=12, key_words=3, doc_len=5, max_summary=4)
PROMPT_LEN = TASK["doc_len"] + 1  # the document's words, then <sep>
CONTEXT = PROMPT_LEN + TASK["max_summary"]
VOCAB = SPECIALS + TASK["vocab_words"]
CFG = dict(n_layer=2, n_embd=16, n_head=4, n_positions=CONTEXT, vocab_size=VOCAB)
B = 3  # pairs


def words(g, n):
    return [SPECIALS + int(v) for v in torch.randint(0, TASK["vocab_words"], (n,), generator=g)]


def responses(g, lengths, ends_with_eos):
    out = []
    for n, eos in zip(lengths, ends_with_eos):
        out.append(words(g, n - 1) + [EOS] if eos else words(g, n))
    return out


def main():
    g = torch.Generator().manual_seed(7)
    prompts = [words(g, TASK["doc_len"]) + [SEP] for _ in range(B)]
    # Lengths 1..max_summary, one response a lone <eos>, some cut at max_summary without one.
    winners = responses(g, [2, 4, 1], [True, False, True])
    losers = responses(g, [4, 3, 2], [False, True, False])

    torch.manual_seed(3)
    config = GPT2Config(
        **CFG, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, num_labels=1, pad_token_id=PAD, bos_token_id=EOS, eos_token_id=EOS,
    )
    config._attn_implementation = "eager"
    pm = GPT2ForSequenceClassification(config).float()
    with torch.no_grad():
        for p in pm.parameters():
            p.add_(0.05 * torch.randn_like(p))
        pm.score.weight.mul_(20.0)  # scores of order 1, so the loss's gradient is not all ½

    # Rows (x, yw) for every pair, then (x, yl) for every pair, as pm.rs packs them.
    seqs = [p + y for p, y in zip(prompts, winners)] + [p + y for p, y in zip(prompts, losers)]
    spans = [(PROMPT_LEN, len(s)) for s in seqs]
    rows = torch.tensor([s + [PAD] * (CONTEXT - len(s)) for s in seqs])

    out = {f"param.{n}": p.detach().clone() for n, p in pm.named_parameters()}
    for read in ["summed", "last"]:
        pm.zero_grad()
        per_position = pm.score(pm.transformer(rows).last_hidden_state).squeeze(-1)  # [2B, T]
        if read == "summed":
            s = torch.stack([per_position[r, a:b].sum() for r, (a, b) in enumerate(spans)])
        else:
            s = torch.stack([per_position[r, b - 1] for r, (a, b) in enumerate(spans)])
        forward, swapped = s[:B] - s[B:], s[B:] - s[:B]
        loss = (0.5 * F.softplus(-forward) + 0.5 * F.softplus(swapped)).mean()
        loss.backward()
        out[f"{read}.scores"] = s.detach().clone()
        out[f"{read}.loss"] = loss.detach().reshape(1)
        out.update({f"{read}.grad.{n}": p.grad.detach().clone() for n, p in pm.named_parameters()})

    pad = lambda ys: torch.tensor([y + [-1] * (TASK["max_summary"] - len(y)) for y in ys], dtype=torch.float32)
    out["prompts"] = torch.tensor(prompts, dtype=torch.float32)
    out["winners"], out["losers"] = pad(winners), pad(losers)
    meta = dict(task=TASK, config=CFG, pairs=B, torch=torch.__version__)
    save_file({k: v.contiguous().float() for k, v in out.items()}, OUT, metadata={"fixture": json.dumps(meta)})
    print(f"wrote {OUT}: loss summed {out['summed.loss'].item():.6f}, last {out['last.loss'].item():.6f}")


if __name__ == "__main__":
    main()
