"""Concept scorers on synthetic features with a planted concept direction."""

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.probing.concept import (
    auroc,
    count_features,
    direction_scorer,
    probe_scorer,
    random_scorer,
    rank_features,
    sparse_probe_scorer,
    stratified_folds,
)


def _planted(n=80, d=24, seed=0, strength=2.0):
    g = torch.Generator().manual_seed(seed)
    y = [i % 2 for i in range(n)]
    X = torch.randn(n, d, generator=g)
    X[:, 3] += strength * (torch.tensor(y, dtype=torch.float) * 2 - 1)
    return X, y


def test_auroc_known_values():
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert auroc([0.1, 0.6, 0.4, 0.9], [0, 0, 1, 1]) == 0.75
    with pytest.raises(ConfigError):
        auroc([1.0, 2.0], [1, 1])
    with pytest.raises(ShapeError):
        auroc([1.0], [0, 1])


@pytest.mark.parametrize("fit", [probe_scorer, direction_scorer])
def test_trained_scorers_find_the_planted_direction(fit):
    X, y = _planted()
    Xt, yt = _planted(seed=1)
    assert auroc(fit(X, y).score(Xt), yt) > 0.9
    flipped = fit(X, [1 - v for v in y]).score(Xt)
    assert auroc(flipped, yt) < 0.1


def test_random_direction_uses_no_labels_and_is_seeded():
    a, b = random_scorer(torch.zeros(2, 24), seed=5), random_scorer(torch.zeros(2, 24), seed=5)
    assert torch.equal(a.w, b.w) and float(a.w.norm()) == pytest.approx(1.0)
    assert not torch.equal(a.w, random_scorer(torch.zeros(2, 24), seed=6).w)


def test_sparse_probe_picks_the_planted_feature_and_a_small_k():
    X, y = _planted(n=96, d=64, strength=0.0)
    Z = X.clamp_min(0)  # sparse-ish, non-negative like SAE latents
    Z[:, 10] = torch.tensor(y, dtype=torch.float) * 3  # one latent that is the concept
    assert int(rank_features(Z, y)[0]) == 10
    s = sparse_probe_scorer(Z, y, ks=(1, 4, 64))
    assert s.info["k"] == 1 and s.info["features"] == [10]
    Zt, yt = _planted(n=40, d=64, seed=2, strength=0.0)
    Zt = Zt.clamp_min(0)
    Zt[:, 10] = torch.tensor(yt, dtype=torch.float) * 3
    assert auroc(s.score(Zt), yt) == 1.0


def test_folds_are_stratified_and_partition():
    y = [0] * 10 + [1] * 14
    folds = stratified_folds(y, 4, seed=0)
    assert sorted(i for f in folds for i in f) == list(range(24))
    for f in folds:
        assert {y[i] for i in f} == {0, 1}


def test_count_features_fixed_vocabulary():
    X, vocab = count_features(["The movie was good.", "the meal was bad"])
    assert vocab == ["bad", "good", "meal", "movie", "the", "was"]
    assert X[0].tolist() == [0, 1, 0, 1, 1, 1]
    Xt, _ = count_features(["A superb movie, the movie!"], vocab)
    assert Xt[0].tolist() == [0, 0, 0, 2, 1, 0]  # unseen words are not counted


def test_bad_shapes_and_labels():
    with pytest.raises(ShapeError):
        probe_scorer(torch.zeros(4), [0, 1, 0, 1])
    with pytest.raises(ConfigError, match="0/1"):
        direction_scorer(torch.zeros(4, 2), [1, 1, 1, 1])
    s = direction_scorer(*_planted())
    with pytest.raises(ShapeError):
        s.score(torch.zeros(3, 5))
