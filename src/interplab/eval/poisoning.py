"""Scores for poisoned-data detection (:mod:`interplab.methods.poisoning`).

    poison_detection_auroc     AUROC of per-example suspicion over the training set against the
                               indices that were really poisoned (recorded when poisoning)
    precision_at_poison_rate   precision among the ``rate * n`` most suspicious examples
    trigger_detection_auroc    AUROC of the suspicion of new inputs, triggered vs clean

AUROC is the Mann–Whitney statistic: the probability that a random positive outscores a random
negative, ties counting one half (so constant scores give exactly 0.5). Precision at a rate is
tie-aware: when the cut falls inside a group of equal scores, that group counts by its share of
positives (the expectation over random tie-breaking), so no index order leaks into the number.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interplab.errors import ConfigError, ShapeError

Tensor = torch.Tensor


def _scores(scores: Tensor | Sequence[float]) -> Tensor:
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    if not bool(torch.isfinite(s).all()):
        raise ConfigError("suspicion scores must be finite numbers")
    return s


def _mask(n: int, positives: Tensor | Sequence[int], as_indices: bool) -> Tensor:
    p = torch.as_tensor(positives)
    if not as_indices:
        if p.shape != (n,):
            raise ShapeError(
                f"a positive mask must have one entry per score ({n}), got {tuple(p.shape)}"
            )
        return p.bool()
    p = p.long().flatten()
    if len(p) and (int(p.min()) < 0 or int(p.max()) >= n):
        raise ShapeError(
            f"positive indices must lie in [0, {n}), got range [{int(p.min())}, {int(p.max())}]"
        )
    mask = torch.zeros(n, dtype=torch.bool)
    mask[p] = True
    return mask


def auroc(scores: Tensor | Sequence[float], positive: Tensor | Sequence[bool]) -> float:
    """P(score of a random positive > score of a random negative), ties 1/2
    (:func:`interplab.methods.probing.concept.auroc` on a positive mask)."""
    from interplab.methods.probing.concept import auroc as labelled_auroc

    s = _scores(scores)
    return labelled_auroc(s, _mask(len(s), positive, as_indices=False))


def poison_detection_auroc(
    scores: Tensor | Sequence[float], poisoned_idx: Tensor | Sequence[int]
) -> float:
    """AUROC of training-set suspicion ``scores`` [n] against the poisoned indices."""
    s = _scores(scores)
    return auroc(s, _mask(len(s), poisoned_idx, as_indices=True))


def precision_at_rate(
    scores: Tensor | Sequence[float], positive: Tensor | Sequence[bool], rate: float
) -> float:
    """Expected precision among the ``round(rate * n)`` highest scores (ties shared out)."""
    s = _scores(scores)
    pos = _mask(len(s), positive, as_indices=False).double()
    if not 0 < rate <= 1:
        raise ConfigError(f"rate must lie in (0, 1], got {rate}")
    k = max(1, int(round(rate * len(s))))
    cut = torch.sort(s, descending=True).values[k - 1]
    above, tied = s > cut, s == cut
    take = k - int(above.sum())
    hits = float(pos[above].sum()) + take * float(pos[tied].mean())
    return hits / k


def precision_at_poison_rate(
    scores: Tensor | Sequence[float], poisoned_idx: Tensor | Sequence[int]
) -> float:
    """Precision among the top ``len(poisoned_idx)`` examples, i.e. at the true poison rate."""
    s = _scores(scores)
    mask = _mask(len(s), poisoned_idx, as_indices=True)
    if not mask.any():
        raise ConfigError("precision at the poison rate needs at least one poisoned example")
    return precision_at_rate(s, mask, float(mask.sum()) / len(s))


def trigger_detection_auroc(
    clean: Tensor | Sequence[float], triggered: Tensor | Sequence[float]
) -> float:
    """AUROC of suspicion on triggered inputs (positives) vs clean inputs (negatives)."""
    c, t = _scores(clean), _scores(triggered)
    return auroc(torch.cat([t, c]), torch.cat([torch.ones(len(t)), torch.zeros(len(c))]).bool())
