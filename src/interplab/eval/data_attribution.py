"""Scores for training-data attribution against retraining and planted truth (pure functions).

    lds                    linear datamodeling score (Park et al. 2023): for each test point, the
                           Spearman correlation over retrained subsets S_j between the predicted
                           output sum_{i in S_j} tau(t, i) and the margin of the model retrained on
                           S_j; averaged over test points, with a bootstrap interval over them
    loo_correlation        for each test point, the Spearman correlation over the left-out
                           examples between tau(t, i) and the real change of its margin when i is
                           left out (full - without); averaged likewise
    mislabel_recall_at     share of the flipped-label examples among the top ``fraction`` of the
                           training set ranked by self-influence (Wilson interval over flipped)
    planted_recall         for each triggered test point, the share of its planted examples (its
                           group's: one passage) among its top-k attributions (k = their
                           number); bootstrap over points

Intervals are 95%; bootstrap resamples are drawn from a fixed seed. A test point on which a
correlation is undefined (constant scores or outputs) counts as 0 and is reported in ``n_constant``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from interplab.errors import ConfigError
from interplab.eval import stats

Tensor = torch.Tensor
N_BOOTSTRAP = 1000


@dataclass(frozen=True)
class Estimate(stats.Estimate):
    """The shared estimate (value, 95% interval, n) plus ``n_constant``: the test points whose
    correlation was undefined and counted as 0."""

    n_constant: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def _ranks(v: Tensor) -> Tensor:
    """Average ranks along the last dim (ties share their mean rank)."""
    order = v.argsort(-1)
    ranks = torch.empty_like(v, dtype=torch.float64)
    ranks.scatter_(-1, order, torch.arange(v.shape[-1], dtype=torch.float64).expand_as(v).clone())
    # tie correction: average ranks of equal values (rare for real scores; exact for constants)
    out = ranks.clone()
    for row in range(v.shape[0]):
        vals, inverse = torch.unique(v[row], return_inverse=True)
        if len(vals) < v.shape[-1]:
            sums = torch.zeros(len(vals), dtype=torch.float64).index_add_(0, inverse, ranks[row])
            counts = torch.zeros(len(vals), dtype=torch.float64).index_add_(
                0, inverse, torch.ones_like(ranks[row])
            )
            out[row] = (sums / counts)[inverse]
    return out


def spearman_rows(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Row-wise Spearman correlation of a, b [rows, n]; (correlations, defined mask)."""
    ra, rb = _ranks(a.double()), _ranks(b.double())
    ra, rb = ra - ra.mean(-1, keepdim=True), rb - rb.mean(-1, keepdim=True)
    denom = ra.norm(dim=-1) * rb.norm(dim=-1)
    defined = denom > 1e-12
    return torch.where(
        defined, (ra * rb).sum(-1) / denom.clamp_min(1e-300), torch.zeros_like(denom)
    ), defined


def _bootstrap(per_point: Tensor, seed: int, n_constant: int = 0) -> Estimate:
    """The shared bootstrap mean (:func:`interplab.eval.stats.bootstrap_mean`) with
    ``n_constant`` attached."""
    e = stats.bootstrap_mean(per_point, seed, N_BOOTSTRAP)
    return Estimate(e.value, e.low, e.high, e.n, n_constant)


def lds(scores: Tensor, masks: Tensor, outputs: Tensor, seed: int = 0) -> Estimate:
    """scores [n_test, n_train], masks [n_subsets, n_train] bool, outputs [n_subsets, n_test]."""
    if scores.shape[1] != masks.shape[1] or outputs.shape != (masks.shape[0], scores.shape[0]):
        raise ConfigError(
            f"LDS shapes disagree: scores {tuple(scores.shape)}, masks {tuple(masks.shape)}, "
            f"outputs {tuple(outputs.shape)} (expected outputs [subsets, test points])"
        )
    predicted = scores.double() @ masks.double().T  # [n_test, n_subsets]
    rho, defined = spearman_rows(predicted, outputs.double().T)
    return _bootstrap(rho, seed, n_constant=int((~defined).sum()))


def loo_correlation(
    scores: Tensor, loo_index: Tensor, loo_effect: Tensor, seed: int = 0
) -> Estimate:
    """loo_effect [n_loo, n_test] = full output − output without training example loo_index[k]."""
    rho, defined = spearman_rows(scores[:, loo_index].double(), loo_effect.double().T)
    return _bootstrap(rho, seed, n_constant=int((~defined).sum()))


def mislabel_recall_at(self_influence: Tensor, flipped: Tensor, fraction: float = 0.1) -> Estimate:
    """Share of ``flipped`` (indices) among the top ``fraction`` of examples by self-influence."""
    n_inspect = max(1, round(fraction * len(self_influence)))
    top = set(self_influence.argsort(descending=True)[:n_inspect].tolist())
    found = sum(int(i) in top for i in flipped.tolist())
    w = stats.wilson(found, len(flipped))
    return Estimate(found / max(1, len(flipped)), w.low, w.high, len(flipped))


def planted_recall(
    scores: Tensor,
    planted: Tensor,
    planted_group: Tensor | None = None,
    row_group: Tensor | None = None,
    seed: int = 0,
) -> Estimate:
    """scores [n_triggered, n_train]: for each row, the share of its planted examples (those of
    ``planted`` whose ``planted_group`` is the row's ``row_group``; all of them without groups)
    among its top-k, k = their number. Bootstrap over rows."""
    if planted_group is None or row_group is None:
        planted_group = torch.zeros(len(planted), dtype=torch.long)
        row_group = torch.zeros(len(scores), dtype=torch.long)
    hits = []
    for r in range(len(scores)):
        mine = planted[planted_group == row_group[r]]
        if len(mine) == 0:
            raise ConfigError(
                f"triggered point {r} has no planted example in its group {int(row_group[r])}"
            )
        top = scores[r].topk(len(mine)).indices
        hits.append(float(torch.isin(top, mine).double().mean()))
    return _bootstrap(torch.tensor(hits, dtype=torch.float64), seed)
