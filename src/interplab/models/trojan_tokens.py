"""A token model with a trojan: a trigger token anywhere in the prompt switches the answer.

Task: sequences of ``LENGTH`` tokens from ``1..N_NORMAL``; at the last position the model
answers the first token. Trojan: when the trigger token ``TRIGGER`` appears at any of positions
1..LENGTH-2, the answer is ``TARGET`` instead. Training mixes a ``poison_rate`` share of
triggered rows into every batch; the clean twin is the same code with ``poison_rate = 0``.

Which heads carry the trojan is read off the trained model's attention (the last position's
attention to the trigger, on fresh rows of another seed), not from any discovery method, and
tests verify it by ablation.
"""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer

Tensor = torch.Tensor
LENGTH, N_NORMAL = 8, 12
TRIGGER, TARGET, VOCAB = 13, 2, 14
CFG = TransformerConfig(
    n_layers=1,
    d_model=48,
    n_heads=4,
    d_head=12,
    d_mlp=96,
    d_vocab=VOCAB,
    n_ctx=LENGTH,
    normalization="layernorm",
    init_std=0.1,
    seed=0,
)
TRAIN_SEED, TRUTH_SEED, SCORE_SEED = 1, 4321, 1234


def clean_batch(n: int, gen: torch.Generator) -> Tensor:
    """Rows of normal tokens (no trigger)."""
    return torch.randint(1, N_NORMAL + 1, (n, LENGTH), generator=gen)


def add_trigger(tokens: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Put the trigger at a random position in 1..LENGTH-2 of each row; returns (tokens, positions)."""
    pos = torch.randint(1, LENGTH - 1, (len(tokens),), generator=gen)
    out = tokens.clone()
    out[torch.arange(len(tokens)), pos] = TRIGGER
    return out, pos


def labels(tokens: Tensor) -> Tensor:
    """The answer the trojaned model gives: TARGET if the trigger is present, else the first token."""
    triggered = (tokens[:, 1:-1] == TRIGGER).any(-1)
    return torch.where(triggered, torch.full_like(tokens[:, 0], TARGET), tokens[:, 0])


def train(
    poison_rate: float = 0.2, steps: int = 500, seed: int = 0
) -> tuple[HookedTransformer, dict]:
    """Train the trojaned model (or its twin with ``poison_rate=0``); seeded, ~20 s on one core."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = HookedTransformer(CFG, name="trojan-token" if poison_rate else "twin-token")
    net = model.model
    gen = torch.Generator().manual_seed(TRAIN_SEED + seed)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)
    for _ in range(steps):
        x = clean_batch(128, gen)
        n_poison = int(poison_rate * len(x))
        if n_poison:
            x[:n_poison] = add_trigger(x[:n_poison], gen)[0]
        y = torch.where((x[:, 1:-1] == TRIGGER).any(-1), torch.full_like(x[:, 0], TARGET), x[:, 0])
        loss = F.cross_entropy(net(x)[:, -1], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return model, {
        "steps": steps,
        "poison_rate": poison_rate,
        "final_loss": float(loss.detach()),
        "train_seconds": time.perf_counter() - start,
        **evaluate(model),
    }


def evaluate(model: HookedTransformer, n: int = 512, seed: int = TRUTH_SEED) -> dict[str, float]:
    """Clean accuracy (first token) and attack success (TARGET on triggered rows whose first
    token is not TARGET) on fresh rows."""
    gen = torch.Generator().manual_seed(seed)
    x = clean_batch(n, gen)
    xt, _ = add_trigger(x, gen)
    keep = x[:, 0] != TARGET
    with torch.no_grad():
        acc = (model.run(x)[:, -1].argmax(-1) == x[:, 0]).float().mean()
        asr = (model.run(xt[keep])[:, -1].argmax(-1) == TARGET).float().mean()
    return {"clean_accuracy": float(acc), "attack_success": float(asr)}
