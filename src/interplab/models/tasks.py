"""Algorithmic task data for trained organisms (seeded; tokens are int64 [batch, pos]).

    induction_batch   BOS + a random sequence of distinct tokens + the same sequence again;
                      the model predicts the repeat (scored in the second half)
    modadd_batch      [a, b, =] -> (a + b) mod p at the last position
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor
BOS = 0


def induction_batch(n: int, half: int, vocab: int, generator: torch.Generator) -> Tensor:
    """[n, 1 + 2*half] tokens: BOS, x_1..x_half (distinct, from 1..vocab-1), x_1..x_half."""
    keys = torch.rand(n, vocab - 1, generator=generator)
    seq = keys.argsort(-1)[:, :half] + 1
    return torch.cat([torch.full((n, 1), BOS), seq, seq], 1)


def induction_positions(half: int) -> tuple[int, ...]:
    """Positions whose next token is determined by induction: half+1 .. 2*half-1."""
    return tuple(range(half + 1, 2 * half))


def induction_labels(tokens: Tensor, half: int) -> Tensor:
    """The next token at each scored position: [n, half - 1]."""
    return tokens[:, half + 2: 2 * half + 1]


def modadd_all(p: int) -> tuple[Tensor, Tensor]:
    """Every pair: tokens [p*p, 3] (= is token p) and labels [p*p]."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], 1)
    return tokens, (a + b) % p
