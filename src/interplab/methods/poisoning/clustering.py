"""Representation-based poison detectors: activation clustering and spectral signatures.

**Activation clustering** (Chen et al. 2018). For each label ``c``, the hidden activations of
the examples labelled ``c`` are centred and reduced by PCA to ``n_components`` dimensions and
split by 2-means. A backdoor makes the poisoned examples of the target label a separate cluster
(they share the trigger, and their other features belong to other classes), so the class's
*smaller* cluster is the suspect and a clean split is the evidence. Score: an example in the
smaller cluster of its class scores ``max(S_c, 0) * (1 + s_i) / 2`` where ``S_c`` is the mean
silhouette of the class's split (how cleanly the class falls in two) and ``s_i`` the example's own
silhouette; examples in the larger cluster score 0. New inputs are put in the nearer cluster (by
centroid) of their label's split and scored the same way against the training members.

**Spectral signature** (Tran et al. 2018). For each label ``c``, centre the hidden activations of
the class and take the top right singular vector ``v_c``; an example's raw score is its squared
projection ``((h - mu_c) . v_c)^2``. Poison shifts the class mean along one direction, which the
top singular vector picks up. Examples of all classes are ranked on the raw score: dividing by a
class's scale would erase the very evidence of a poisoned class (a dominant direction with a
large singular value). Tran et al. rank within each class and remove a fixed fraction of each.
"""

from __future__ import annotations

import torch

from interplab.methods.poisoning.baselines import METRIC
from interplab.methods.registry import register

Tensor = torch.Tensor


def two_means(z: Tensor, gen: torch.Generator, restarts: int = 5, iters: int = 50) -> Tensor:
    """Labels in {0, 1} of the best (least inertia) of ``restarts`` k-means++ runs with k = 2."""
    best, best_inertia = torch.zeros(len(z), dtype=torch.long), float("inf")
    for _ in range(restarts):
        first = z[torch.randint(len(z), (1,), generator=gen)]
        d = ((z - first) ** 2).sum(1)
        second = z[torch.multinomial(d + 1e-12, 1, generator=gen)]
        centres = torch.cat([first, second])
        for _ in range(iters):
            assign = torch.cdist(z, centres).argmin(1)
            new = torch.stack(
                [z[assign == k].mean(0) if (assign == k).any() else centres[k] for k in (0, 1)]
            )
            if torch.allclose(new, centres):
                break
            centres = new
        inertia = float(((z - centres[assign]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = assign, inertia
    return best


def silhouettes(dist: Tensor, own: Tensor, members: Tensor, exclude_self: bool) -> Tensor:
    """Silhouette ``(b - a) / max(a, b)`` of each row of ``dist`` [m, n] (distances to the ``n``
    clustered points, whose cluster is ``members`` in {0, 1}) given its own cluster ``own`` [m]."""
    out = torch.zeros(len(dist))
    for k in (0, 1):
        rows = own == k
        if not rows.any():
            continue
        same, other = members == k, members != k
        n_same = int(same.sum()) - (1 if exclude_self else 0)
        if n_same < 1 or not other.any():
            continue
        a = dist[rows][:, same].sum(1) / n_same
        b = dist[rows][:, other].mean(1)
        out[rows] = (b - a) / torch.maximum(a, b).clamp_min(1e-12)
    return out


@register("poisoning", "activation_clustering", kind="method", cost_unit="passes", metric=METRIC)
class ActivationClustering:
    """Per-label PCA + 2-means on hidden activations; the smaller cluster is suspect."""

    needs_site = True

    def __init__(self, seed: int = 0, n_components: int = 10, min_class: int = 4) -> None:
        self.seed, self.n_components, self.min_class = seed, n_components, min_class

    def fit(self, batch) -> ActivationClustering:
        h, y = batch.hidden, batch.y
        gen = torch.Generator().manual_seed(self.seed)
        scores = torch.zeros(len(h))
        self.classes_: dict[int, dict] = {}
        for c in y.unique().tolist():
            idx = (y == c).nonzero().flatten()
            if len(idx) < self.min_class:
                continue
            mean = h[idx].mean(0)
            _, _, vt = torch.linalg.svd(h[idx] - mean, full_matrices=False)
            basis = vt[: min(self.n_components, len(idx) - 1)].T
            z = (h[idx] - mean) @ basis
            members = two_means(z, gen)
            small = int((members == 1).sum() < (members == 0).sum())
            s = silhouettes(torch.cdist(z, z), members, members, exclude_self=True)
            strength = max(float(s.mean()), 0.0)
            state = {
                "mean": mean,
                "basis": basis,
                "z": z,
                "members": members,
                "small": small,
                "strength": strength,
                "centres": torch.stack([z[members == k].mean(0) for k in (0, 1)]),
            }
            self.classes_[c] = state
            scores[idx] = self._score(state, members, s)
        self.details_ = {
            "split_silhouette": {int(c): round(v["strength"], 4) for c, v in self.classes_.items()},
            "small_cluster_share": {
                int(c): round(float((v["members"] == v["small"]).float().mean()), 4)
                for c, v in self.classes_.items()
            },
        }
        self.scores_ = scores
        return self

    @staticmethod
    def _score(state: dict, own: Tensor, s: Tensor) -> Tensor:
        return (own == state["small"]).float() * state["strength"] * (1 + s) / 2

    def score(self, batch) -> Tensor:
        h, y = batch.hidden, batch.y
        scores = torch.zeros(len(h))
        for c, state in self.classes_.items():
            rows = (y == c).nonzero().flatten()
            if not len(rows):
                continue
            z = (h[rows] - state["mean"]) @ state["basis"]
            own = torch.cdist(z, state["centres"]).argmin(1)
            s = silhouettes(torch.cdist(z, state["z"]), own, state["members"], exclude_self=False)
            scores[rows] = self._score(state, own, s)
        return scores


@register("poisoning", "spectral_signature", kind="method", cost_unit="passes", metric=METRIC)
class SpectralSignature:
    """Per-label squared projection on the top singular vector of centred activations."""

    needs_site = True

    def __init__(self, seed: int = 0, min_class: int = 2) -> None:
        self.seed, self.min_class = seed, min_class

    def fit(self, batch) -> SpectralSignature:
        h, y = batch.hidden, batch.y
        self.classes_: dict[int, tuple[Tensor, Tensor, float]] = {}
        for c in y.unique().tolist():
            rows = y == c
            if int(rows.sum()) < self.min_class:
                continue
            mean = h[rows].mean(0)
            _, sv, vt = torch.linalg.svd(h[rows] - mean, full_matrices=False)
            self.classes_[c] = (mean, vt[0], float(sv[0]) ** 2 / int(rows.sum()))
        self.details_ = {"top_variance": {int(c): round(v[2], 4) for c, v in self.classes_.items()}}
        self.scores_ = self.score(batch)
        return self

    def score(self, batch) -> Tensor:
        h, y = batch.hidden, batch.y
        scores = torch.zeros(len(h))
        for c, (mean, v, _) in self.classes_.items():
            rows = y == c
            scores[rows] = ((h[rows] - mean) @ v) ** 2
        return scores
