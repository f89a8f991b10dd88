"""Induction on repeated random tokens: the prompt set and the raw repeated sequences.

induction_task    BOS? + r + r for a random token sequence r; corrupted: BOS? + r' + r (the
                  second half is no longer a repeat); metric logit(next token of r) - mean
                  logit over the second copy
repeated_tokens   [r, r] token rows (optionally after a BOS), for head scores and losses
"""

from __future__ import annotations

from typing import Any

import torch

from interplab.errors import ConfigError
from interplab.tasks.task import Task

Tensor = torch.Tensor


def induction_task(
    tokenizer: Any,
    *,
    n: int = 32,
    seed: int = 0,
    half: int = 8,
    vocab: tuple[int, int] | None = None,
    bos: int | None = None,
) -> Task:
    """BOS? + r + r with r ``half`` random tokens; corrupted BOS? + r' + r. Scored at the
    ``half - 1`` positions of the second copy whose next token is the copy's next token.
    ``vocab``: the (low, high) token id range to draw from (default: ids 1000..min(20000, V))."""
    if not isinstance(half, int) or half < 2:
        raise ConfigError(f"half (the repeated sequence length) must be an int >= 2, got {half!r}")
    size = len(tokenizer) if tokenizer is not None else None
    lo, hi = vocab if vocab is not None else (1000, min(20000, size or 20000))
    if hi - lo < half:
        raise ConfigError(f"token range {lo}..{hi} is too small for {half} random tokens")
    gen = torch.Generator().manual_seed(seed)
    r = torch.randint(lo, hi, (n, half), generator=gen)
    r2 = torch.randint(lo, hi, (n, half), generator=gen)
    clean, corrupt = torch.cat([r, r], 1), torch.cat([r2, r], 1)
    start = 0
    if bos is not None:
        col = torch.full((n, 1), bos)
        clean, corrupt, start = torch.cat([col, clean], 1), torch.cat([col, corrupt], 1), 1
    # position start + half + j (j = 0..half-2) holds r[j] in the second copy; its next is r[j+1]
    positions = torch.arange(start + half, start + 2 * half - 1).expand(n, -1).clone()
    return Task(
        clean,
        corrupt,
        positions,
        r[:, 1:].clone(),
        None,
        metric="logit_diff",
        name="induction",
        description=f"induction on {half} repeated random tokens: logit(next token) - mean "
        "logit over the second copy; corrupted prompts have a different first copy",
    )


def repeated_tokens(
    n_seqs: int, seq_len: int, vocab: tuple[int, int], bos: int | None = None, seed: int = 0
) -> Tensor:
    """[n_seqs, (1 if bos) + 2 * seq_len] int64 token ids: a random sequence twice."""
    gen = torch.Generator().manual_seed(seed)
    r = torch.randint(vocab[0], vocab[1], (n_seqs, seq_len), generator=gen)
    toks = torch.cat([r, r], dim=1)
    if bos is not None:
        toks = torch.cat([torch.full((n_seqs, 1), bos), toks], dim=1)
    return toks
