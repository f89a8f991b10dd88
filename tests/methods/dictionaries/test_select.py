from __future__ import annotations

import inspect

import pytest
import torch

from interplab.data.synthetic import SyntheticConfig, SyntheticFeatures
from interplab.errors import ConfigError, ShapeError
from interplab.methods.dictionaries import (
    DictionaryConfig,
    activation_scale,
    k_ladder,
    sweep_sparsity,
)
from interplab.methods.dictionaries.select import choose


def _activations(mean_active: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    org = SyntheticFeatures(
        SyntheticConfig(n_features=64, d=32, mean_active=mean_active, seed=seed)
    )
    return org.sample(16384, 5 * 10**6).x, org.sample(2048, 6 * 10**6).x


def _topk(seed: int = 123) -> DictionaryConfig:
    # A dictionary seed unlike the organism's: with equal seeds its init would hold the true directions.
    return DictionaryConfig(
        d_in=32, d_latent=128, activation="topk", lr=3e-3, batch_size=512, seed=seed
    )


def test_the_sweep_sees_activations_only():
    params = set(inspect.signature(sweep_sparsity).parameters)
    assert params == {
        "config",
        "field",
        "ladder",
        "x",
        "held_out_x",
        "y",
        "held_out_y",
        "steps",
        "min_gain",
    }
    org = SyntheticFeatures(SyntheticConfig(n_features=16, d=8, seed=0))
    with pytest.raises(ConfigError, match="activations only"):
        sweep_sparsity(_topk(), "k", (1, 2), org, org.sample(64, 1).x, steps=1)  # type: ignore[arg-type]


def test_the_choice_is_a_function_of_the_activations():
    x, held = _activations(4.0)
    first = sweep_sparsity(_topk(), "k", k_ladder(32, 128), x, held, steps=60)
    again = sweep_sparsity(_topk(), "k", k_ladder(32, 128), x.clone(), held.clone(), steps=60)
    assert first == again


def test_chosen_k_is_within_a_factor_two_of_the_true_l0_and_grows_with_it():
    chosen = {}
    for mean_active in (2.0, 8.0):
        sweep = sweep_sparsity(
            _topk(), "k", k_ladder(32, 128), *_activations(mean_active), steps=300
        )
        assert mean_active / 2 <= sweep.chosen <= 2 * mean_active, sweep
        assert (
            sweep.values == k_ladder(32, 128)[: len(sweep.values)]
        )  # a prefix of the ladder, in order
        assert sweep.chosen in sweep.values and len(sweep.variance_explained) == len(sweep.values)
        chosen[mean_active] = sweep.chosen
    assert chosen[8.0] > chosen[2.0]


def test_rule_picks_the_first_setting_whose_next_rung_gains_little():
    assert choose([1, 2, 4, 8], [0.5, 0.7, 0.88, 0.9]) == 4
    assert choose([1, 2, 4], [0.91, 0.93, 0.94]) == 1
    assert choose([1, 2, 4], [0.3, 0.5, 0.7]) == 4  # still gaining: the densest tried
    assert choose([1, 2, 4], [0.3, float("nan"), 0.7]) == 4


def test_ladder_and_scale():
    assert k_ladder(5, 40) == (1, 2, 4)
    assert k_ladder(32, 16) == (1, 2, 4, 8, 16)
    assert k_ladder(1, 8) == (1,)
    x = torch.randn(4096, 8)
    assert activation_scale(3 * x + 5) == pytest.approx(3 * activation_scale(x))


def test_relu_sweep_and_transcoder_arguments():
    x, held = _activations(4.0)
    relu = DictionaryConfig(
        d_in=32, d_latent=64, activation="relu", lr=3e-3, batch_size=256, seed=9
    )
    scale = activation_scale(x)
    sweep = sweep_sparsity(
        relu, "l1_coefficient", [r * scale for r in (1.0, 0.1, 0.01)], x, held, steps=40
    )
    assert sweep.field == "l1_coefficient" and sweep.chosen in sweep.values
    assert list(sweep.l0) == sorted(sweep.l0)  # a weaker penalty never gives sparser codes
    with pytest.raises(ShapeError, match="transcoder"):
        sweep_sparsity(relu, "k", (1,), x, held, y=x, held_out_y=held, steps=1)
    with pytest.raises(ConfigError, match="field"):
        sweep_sparsity(relu, "d_latent", (1,), x, held, steps=1)
