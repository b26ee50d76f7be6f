"""Writes tests/fixtures/gpt2_tiny.safetensors: a PyTorch + transformers reference for the Rust engine.

A tiny GPT-2 (Hugging Face's GPT2LMHeadModel, eager attention, GELU tanh, tied head) from a fixed seed, with
every parameter perturbed so no bias or gain is trivially 0 or 1. It runs forward on a batch, the masked
sequence log-prob loss  loss = -mean_b sum_t w[b,t] * log p(target[b,t] | tokens[b,<=t]),  backward, and then
10 AdamW steps (decoupled weight decay on matrices, global-norm clipping, warm-up + cosine schedule) on the same
batch, recording the loss before each step and after the last.

Not run by CI (it needs torch). Run: python3 tests/pytorch/make_fixture.py
"""
import json
import math
import os

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "gpt2_tiny.safetensors")
CFG = dict(n_layer=2, n_embd=16, n_head=4, n_positions=8, vocab_size=23)
B, T = 3, 8
OPT = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, max_grad_norm=1.0)
SCHED = dict(warmup_steps=3, total_steps=10, min_lr_ratio=0.1)
STEPS = 10


def lr_factor(step):  # the same formula as train::optim::Schedule::factor (1-based step)
    w, total, lo = SCHED["warmup_steps"], SCHED["total_steps"], SCHED["min_lr_ratio"]
    if step <= w:
        return step / max(w, 1)
    progress = min((step - w) / (total - w), 1.0)
    return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * progress))


def preference_model_reference(config):
    """GPT2ForSequenceClassification (one label): scores read at each sequence's last non-pad token, and the
    gradients of loss = sum_b coef[b] * score[b]."""
    torch.manual_seed(1)
    config = GPT2Config.from_dict({**config.to_dict(), "num_labels": 1, "pad_token_id": 0})
    config._attn_implementation = "eager"
    pm = GPT2ForSequenceClassification(config).float()
    with torch.no_grad():
        for p in pm.parameters():
            p.add_(0.05 * torch.randn_like(p))
    tokens = torch.randint(1, CFG["vocab_size"], (B, T))  # no pad inside a sequence...
    lengths = [T, 5, 3]
    for b, n in enumerate(lengths):
        tokens[b, n:] = 0  # ...only after it
    coef = torch.randn(B)
    scores = pm(tokens).logits.squeeze(-1)
    (coef * scores).sum().backward()
    out = {f"pm.param.{n}": p.detach().clone() for n, p in pm.named_parameters()}
    out.update({f"pm.grad.{n}": p.grad.detach().clone() for n, p in pm.named_parameters()})
    out["pm.tokens"] = tokens.to(torch.int32)
    out["pm.last"] = torch.tensor([n - 1 for n in lengths], dtype=torch.int32)
    out["pm.coef"] = coef
    out["pm.scores"] = scores.detach()
    return out


def main():
    torch.manual_seed(0)
    config = GPT2Config(
        **CFG, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, tie_word_embeddings=True,
    )
    config._attn_implementation = "eager"
    model = GPT2LMHeadModel(config).float()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    names = [n for n, _ in model.named_parameters()]  # lm_head.weight is tied, so not listed
    params = dict(model.named_parameters())

    tokens = torch.randint(0, CFG["vocab_size"], (B, T))
    targets = torch.cat([tokens[:, 1:], torch.zeros(B, 1, dtype=tokens.dtype)], dim=1)
    weights = torch.tensor([
        [0, 0, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 1, 1, 1, 0],
    ], dtype=torch.float32)

    def loss_fn():
        logits = model(tokens).logits
        lp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return logits, -(lp * weights).sum(dim=1).mean()

    out = {f"param.{n}": params[n].detach().clone() for n in names}
    logits, loss = loss_fn()
    loss.backward()
    out.update({f"grad.{n}": params[n].grad.detach().clone() for n in names})
    out["logits"] = logits.detach().reshape(B * T, -1).clone()
    out["loss"] = loss.detach().reshape(1)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": OPT["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"],
    )
    losses, norms = [], []
    model.zero_grad()
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        _, loss = loss_fn()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), OPT["max_grad_norm"])))
        losses.append(float(loss.detach()))
        for g in opt.param_groups:
            g["lr"] = OPT["lr"] * lr_factor(step)
        opt.step()
    with torch.no_grad():
        losses.append(float(loss_fn()[1]))
    out["trajectory.loss"] = torch.tensor(losses, dtype=torch.float32)
    out["trajectory.grad_norm"] = torch.tensor(norms, dtype=torch.float32)
    out["tokens"] = tokens.to(torch.int32)
    out["targets"] = targets.to(torch.int32)
    out["weights"] = weights

    out.update(preference_model_reference(config))
    meta = {"config": CFG, "batch": B, "seq": T, "adamw": OPT, "schedule": SCHED, "steps": STEPS,
            "torch": torch.__version__, "param_names": names}
    out = {k: v.contiguous() for k, v in out.items()}
    save_file(out, OUT, metadata={"fixture": json.dumps(meta)})
    print(f"wrote {OUT}: loss {losses[0]:.6f} -> {losses[-1]:.6f}, {sum(v.numel() for v in out.values())} values")


if __name__ == "__main__":
    main()
