"""Steering interventions on a tiny random Llama: ablation removes the projection at the hooked
site, addition shifts it by alpha * gap, hooks never outlive a run, random controls are seeded."""

from __future__ import annotations

import pytest
import torch

from interplab.core.hooks import count_hooks
from interplab.core.sites import Component, Site
from interplab.errors import ConfigError, ShapeError
from interplab.methods.steering import Direction, diff_in_means
from interplab.methods.steering.intervene import (
    Steering,
    compare_steering,
    last_logits,
    last_token_activations,
    random_direction,
    steering_intervention,
)
from interplab.models.pretrained.llama import LlamaConfig
from tests.llama_helpers import random_llama

SITE = Site(Component.RESID_POST, 0)
LATER = Site(Component.RESID_POST, 1)


@pytest.fixture(scope="module")
def lm():
    return random_llama(
        LlamaConfig(
            d_vocab=64, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=24, n_ctx=32
        ),
        seed=3,
    )


@pytest.fixture(scope="module")
def direction():
    gen = torch.Generator().manual_seed(0)
    return diff_in_means(
        torch.randn(20, 16, generator=gen) + 1.0, torch.randn(20, 16, generator=gen)
    )


TOKENS = torch.randint(0, 64, (3, 7), generator=torch.Generator().manual_seed(5))


def _site_value(lm, steering, direction, site=SITE):
    iv = steering_intervention(SITE, direction, steering)
    _, cache = lm.run_with_cache(TOKENS, [site], interventions=[] if iv is None else [iv])
    return cache[site]


def test_ablation_removes_the_projection_at_every_position(lm, direction):
    before = direction.project(_site_value(lm, Steering("none"), direction))
    after = direction.project(_site_value(lm, Steering("ablate"), direction))
    assert before.abs().min() > 1e-3  # there was something to remove
    assert torch.allclose(after, torch.zeros_like(after), atol=1e-4)


def test_ablation_leaves_the_orthogonal_part_alone(lm, direction):
    plain = _site_value(lm, Steering("none"), direction)
    ablated = _site_value(lm, Steering("ablate"), direction)
    v = direction.vector
    assert torch.allclose(plain - ablated, direction.project(plain).unsqueeze(-1) * v, atol=1e-4)


@pytest.mark.parametrize("alpha", [2.0, -0.5])
def test_addition_shifts_the_projection_by_alpha_gap(lm, direction, alpha):
    before = direction.project(_site_value(lm, Steering("none"), direction))
    after = direction.project(_site_value(lm, Steering("add", alpha), direction))
    assert torch.allclose(after - before, torch.full_like(before, alpha * direction.gap), atol=1e-4)


def test_steering_changes_later_layers_and_the_output(lm, direction):
    plain = _site_value(lm, Steering("none"), direction, LATER)
    pushed = _site_value(lm, Steering("add", 3.0), direction, LATER)
    assert (plain - pushed).abs().max() > 1e-2
    iv = steering_intervention(SITE, direction, Steering("add", 3.0))
    assert not torch.allclose(lm.run(TOKENS), lm.run_with(TOKENS, [iv]))


def test_hooks_are_removed_after_a_run_and_after_an_error(lm, direction):
    module = lm.module
    assert count_hooks(module) == 0
    for s in (Steering("ablate"), Steering("add", 1.0)):
        lm.run_with(TOKENS, [steering_intervention(SITE, direction, s)])
        assert count_hooks(module) == 0
    wrong = Direction(torch.ones(5) / 5**0.5, 1.0, 0.0)  # 5 features; the site has 16
    for s in (Steering("ablate"), Steering("add", 1.0)):
        with pytest.raises(ShapeError, match="the direction 5"):
            last_logits(lm, [[1, 2, 3]], [steering_intervention(SITE, wrong, s)])
        assert count_hooks(module) == 0
    with pytest.raises(ShapeError):
        compare_steering(lm, [[1, 2]], SITE, wrong, lambda x: x[:, 0], n_random=0)
    assert count_hooks(module) == 0


def test_last_logits_batches_by_length_like_single_runs(lm):
    prompts = [[1, 2, 3], [4, 5], [6, 7, 8], [9]]
    batched = last_logits(lm, prompts)
    for i, p in enumerate(prompts):
        assert torch.allclose(batched[i], lm.run(torch.tensor([p]))[0, -1], atol=1e-5)
    acts = last_token_activations(lm, SITE, prompts)
    _, cache = lm.run_with_cache(torch.tensor([prompts[1]]), [SITE])
    assert acts.shape == (4, 16) and torch.allclose(acts[1], cache[SITE][0, -1])
    with pytest.raises(ShapeError, match="no prompts"):
        last_logits(lm, [])
    with pytest.raises(ShapeError, match="prompt 1 has no tokens"):
        last_logits(lm, [[1], []])


def test_steering_values_check_their_arguments(direction):
    assert steering_intervention(SITE, direction, Steering("none")) is None
    assert Steering("add", -2.0).label == "add -2" and Steering("ablate").label == "ablate"
    with pytest.raises(ConfigError, match="unknown steering kind 'scale'"):
        Steering("scale")
    with pytest.raises(ConfigError, match="alpha applies to kind 'add' only"):
        Steering("ablate", 1.0)


def test_random_directions_are_unit_seeded_and_take_the_same_step(direction):
    a, b, c = (
        random_direction(direction, 1),
        random_direction(direction, 1),
        random_direction(direction, 2),
    )
    assert torch.equal(a.vector, b.vector) and not torch.equal(a.vector, c.vector)
    assert float(a.vector.norm()) == pytest.approx(1.0) and a.gap == direction.gap
    assert abs(float(a.vector @ direction.vector)) < 0.9


def test_compare_steering_runs_every_condition(lm, direction):
    prompts = [[1, 2, 3], [4, 5], [6, 7, 8]]
    calls = []
    cmp = compare_steering(
        lm,
        prompts,
        SITE,
        direction,
        lambda logits: logits[:, 0] - logits[:, 1],
        alphas=(1.0, 2.0),
        n_random=2,
        seed=7,
        progress=calls.append,
    )
    labels = [c.label for c in cmp.conditions]
    assert labels[:6] == [
        "none",
        "learned ablate",
        "learned add +1",
        "learned add -1",
        "learned add +2",
        "learned add -2",
    ]
    assert labels[6] == "random#7 ablate" and labels[-1] == "random#8 add -2" and len(labels) == 16
    assert calls == labels and all(len(c.scores) == 3 for c in cmp.conditions)
    base = last_logits(lm, prompts)
    assert cmp.conditions[0].scores == pytest.approx((base[:, 0] - base[:, 1]).tolist(), abs=1e-5)
    assert cmp.find("learned", "add", 2.0)[0].steering == Steering("add", 2.0)
    assert len(cmp.find("random", "ablate")) == 2
    d = cmp.to_dict()
    assert d["site"] == "L0.resid_post" and len(d["conditions"]) == 16
    for bad in ((0.0,), (), (-1.0,)):
        with pytest.raises(ConfigError, match="alphas must be positive"):
            compare_steering(lm, prompts, SITE, direction, lambda x: x[:, 0], alphas=bad)
