"""Algorithmic task data for trained organisms (seeded; tokens are int64 [batch, pos]).

induction_batch   BOS + a random sequence of distinct tokens + the same sequence again;
                  the model predicts the repeat (scored in the second half)
induction_repeat_batch
                  BOS + distinct random tokens in which a random-length segment recurs
                  at a random distance: only an induction mechanism predicts the repeat
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


def induction_batch_offset(
    n: int, half: int, pad: int, vocab: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Training data with a random offset: BOS, r filler tokens, x, x, pad - r filler tokens
    (r uniform in 0..pad; all tokens of a row distinct). Returns tokens [n, 1 + pad + 2*half]
    and a mask [n, 1 + pad + 2*half] of positions whose next token is set by induction, so
    the repeat cannot be found from absolute positions alone."""
    keys = torch.rand(n, vocab - 1, generator=generator)
    pool = keys.argsort(-1)[:, : half + pad] + 1
    x, filler = pool[:, :half], pool[:, half:]
    r = torch.randint(0, pad + 1, (n,), generator=generator)
    length = 1 + pad + 2 * half
    tokens = torch.zeros(n, length, dtype=torch.long)
    mask = torch.zeros(n, length, dtype=torch.bool)
    for i in range(n):
        k = int(r[i])
        row = torch.cat([torch.tensor([BOS]), filler[i, :k], x[i], x[i], filler[i, k:]])
        tokens[i] = row
        mask[i, 1 + k + half + 1 : 1 + k + 2 * half] = True  # predicts x_2..x_half of the repeat
    return tokens, mask


def induction_repeat_batch(
    n: int,
    length: int,
    vocab: int,
    seg_len: tuple[int, int],
    generator: torch.Generator,
    *,
    end_at_last: bool = False,
    layout: tuple[Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor]]:
    """Rows of ``length`` tokens: BOS, then distinct random tokens (1..vocab-1), except that a
    segment of L tokens (L uniform in ``seg_len``) starting at s recurs at t >= s + L.
    s, t and L are drawn per row, so neither the absolute position of the repeat nor its
    distance from the first occurrence is fixed: no positional rule predicts it.

    ``end_at_last`` puts the repeat at the end of every row (t = length - L), so positions
    length - seg_len[0] .. length - 2 are inside every row's repeat. ``layout`` = (s, t, L)
    reuses another batch's layout with fresh tokens (a corrupted counterpart).

    Returns tokens [n, length], mask [n, length] (True where the next token is set by the
    repeat: t .. t + L - 2) and the layout (s, t, L), each [n]."""
    lo, hi = seg_len
    if not (1 <= lo <= hi and 1 + 2 * hi <= length and length <= vocab):
        raise ValueError(f"need 1 <= {lo} <= {hi}, 1 + 2*{hi} <= length {length} <= vocab {vocab}")
    pool = torch.rand(n, vocab - 1, generator=generator).argsort(-1)[:, :length] + 1
    if layout is None:
        seg = torch.randint(lo, hi + 1, (n,), generator=generator)
        if end_at_last:
            t = length - seg
        else:  # t uniform in [seg + 1, length - seg]
            t = seg + 1 + (torch.rand(n, generator=generator) * (length - 2 * seg)).long()
        s = 1 + (torch.rand(n, generator=generator) * (t - seg)).long()  # s in [1, t - seg]
        layout = (s, t, seg)
    s, t, seg = layout
    idx = torch.arange(length)[None, :]
    inside = (idx >= t[:, None]) & (idx < (t + seg)[:, None])
    src = torch.where(inside, idx - (t - s)[:, None], idx)
    tokens = pool.gather(1, src)
    tokens[:, 0] = BOS
    mask = inside & (idx < (t + seg - 1)[:, None])
    return tokens, mask, layout


def induction_positions(half: int) -> tuple[int, ...]:
    """Positions whose next token is determined by induction: half+1 .. 2*half-1."""
    return tuple(range(half + 1, 2 * half))


def induction_labels(tokens: Tensor, half: int) -> Tensor:
    """The next token at each scored position: [n, half - 1]."""
    return tokens[:, half + 2 : 2 * half + 1]


def modadd_all(p: int) -> tuple[Tensor, Tensor]:
    """Every pair: tokens [p*p, 3] (= is token p) and labels [p*p]."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], 1)
    return tokens, (a + b) % p
