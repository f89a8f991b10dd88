"""Synthetic text with planted "protected" passages, as next-token examples for a small language
model (a classifier over the vocabulary that reads the previous CONTEXT tokens, one-hot).

Background text comes from a sparse Markov chain over VOCAB tokens (each token has BRANCH likely
successors); n_passages random token sequences of length passage_len are planted, each copied
``copies`` times into the training set (rare sequences the model memorises). The training
examples are (context, next token) windows:

    train       background windows (10% with a wrong next token: ``flipped``) and every window of
                every planted copy (``planted``, grouped by passage in ``planted_group``)
    test        held-out background windows (the LDS / leave-one-out test points)
    triggered   one window per position of each passage: the prompts whose continuation
                reproduces the passage; label = the passage's next token. Groups
                (``planted_group``, ``triggered_group``) are (passage, position) pairs: the
                planted examples of a prompt are the ``copies`` copies of that very window, and a
                good attribution puts them on top.

Returned as a :class:`~interplab.data.digits.PlantedDigits` (the generic planted-data record;
``y_clean`` holds the true next tokens, ``source_index`` each training window's position in the
generated stream).
"""

from __future__ import annotations

import torch

from interplab.data.digits import PlantedDigits
from interplab.errors import ConfigError

Tensor = torch.Tensor
VOCAB = 16
CONTEXT = 3
BRANCH = 3
N_IN = VOCAB * CONTEXT


def encode(contexts: Tensor) -> Tensor:
    """[n, CONTEXT] token ids -> one-hot [n, CONTEXT * VOCAB] (float64)."""
    return torch.nn.functional.one_hot(contexts, VOCAB).reshape(len(contexts), -1).to(torch.float64)


def _chain(gen: torch.Generator) -> Tensor:
    probs = torch.full((VOCAB, VOCAB), 0.02 / (VOCAB - BRANCH), dtype=torch.float64)
    for t in range(VOCAB):
        nxt = torch.randperm(VOCAB, generator=gen)[:BRANCH]
        probs[t, nxt] = 0.98 / BRANCH
    return probs / probs.sum(1, keepdim=True)


def _background(probs: Tensor, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """n windows sampled from the chain: contexts [n, CONTEXT], next tokens [n]."""
    seq = [int(torch.randint(VOCAB, (1,), generator=gen))]
    for _ in range(n + CONTEXT):
        seq.append(int(torch.multinomial(probs[seq[-1]], 1, generator=gen)))
    seq_t = torch.tensor(seq)
    ctx = torch.stack([seq_t[i : i + CONTEXT] for i in range(n)])
    return ctx, seq_t[CONTEXT : CONTEXT + n]


def _windows(passage: Tensor) -> tuple[Tensor, Tensor]:
    n = len(passage) - CONTEXT
    return torch.stack([passage[i : i + CONTEXT] for i in range(n)]), passage[CONTEXT:]


def planted_passages(
    n_train: int,
    n_test: int,
    *,
    n_passages: int = 3,
    passage_len: int = 8,
    copies: int = 4,
    flip_fraction: float = 0.1,
    seed: int = 0,
) -> PlantedDigits:
    per = passage_len - CONTEXT
    n_planted = n_passages * copies * per
    if passage_len <= CONTEXT or n_planted >= n_train or not 0 <= flip_fraction < 0.5:
        raise ConfigError(
            f"passages need passage_len > {CONTEXT}, fewer planted windows ({n_planted}) "
            f"than training examples ({n_train}) and flip_fraction in [0, 0.5)"
        )
    gen = torch.Generator().manual_seed(seed)
    probs = _chain(gen)
    n_bg = n_train - n_planted
    ctx, nxt = _background(probs, n_bg + n_test, gen)
    order = torch.randperm(n_bg + n_test, generator=gen)
    bg, test = order[:n_bg], order[n_bg:]
    passages = [torch.randint(VOCAB, (passage_len,), generator=gen) for _ in range(n_passages)]
    p_ctx, p_nxt, p_group = [], [], []
    for g, p in enumerate(passages):
        c, y = _windows(p)
        p_ctx += [c] * copies
        p_nxt += [y] * copies
        p_group += [g * per + torch.arange(per).repeat(copies)]
    x_ctx = torch.cat([ctx[bg], *p_ctx])
    y_clean = torch.cat([nxt[bg], *p_nxt])
    y_train = y_clean.clone()
    flipped = torch.randperm(n_bg, generator=gen)[: round(flip_fraction * n_bg)].sort().values
    y_train[flipped] = (
        y_clean[flipped] + torch.randint(1, VOCAB, (len(flipped),), generator=gen)
    ) % VOCAB
    trig = [_windows(p) for p in passages]
    return PlantedDigits(
        x_train=encode(x_ctx),
        y_train=y_train,
        y_clean=y_clean,
        x_test=encode(ctx[test]),
        y_test=nxt[test],
        x_triggered=encode(torch.cat([c for c, _ in trig])),
        y_triggered=torch.cat([y for _, y in trig]),
        flipped=flipped,
        planted=torch.arange(n_bg, n_train),
        target=-1,
        source_index=torch.cat([bg, torch.full((n_planted,), -1)]),
        triggered_labels=torch.cat([y for _, y in trig]),
        planted_group=torch.cat(p_group),
        triggered_group=torch.arange(n_passages * per),
    )
