"""Failure explanation: scores, restoration and leftover on adversarial and triggered inputs."""

from __future__ import annotations

import pytest
import torch

from interplab.core.sites import Component, Site
from interplab.errors import UnknownNameError
from interplab.eval.failures import leftover_rate, localisation_auroc, restoration_rate
from interplab.methods.attacks import pgd
from interplab.methods.failures import explain_failure
from interplab.models import trojan_tokens as tt
from interplab.models.trojans import digits
from interplab.zoo import trojans


@pytest.fixture(scope="module")
def adversarial():
    org = trojans.load("twin-patch-digits")
    x, y = digits("score")
    r = pgd(org.model, x, y, eps=0.1, steps=10, restarts=2)
    ok = r.success & r.clean_correct
    units = [(trojans.ACT_SITE, i) for i in range(org.model.module.out.in_features)]
    return org.model, x[ok], r.x_adv[ok], units


def test_all_units_restore_everything_and_none_restore_nothing(adversarial):
    model, x, xa, units = adversarial
    e = explain_failure(model, x, xa, units=units, method="activation")
    assert restoration_rate(model, x, xa, e, len(units)).value == 1.0
    assert leftover_rate(model, x, xa, e, len(units)).value == 0.0


def test_named_units_restore_adversarial_examples_better_than_random(adversarial):
    model, x, xa, units = adversarial
    k = 16
    best = max(
        restoration_rate(
            model, x, xa, explain_failure(model, x, xa, units=units, method=m), k
        ).value
        for m in ("activation", "attribution")
    )
    rand = restoration_rate(
        model, x, xa, explain_failure(model, x, xa, units=units, method="random"), k
    )
    assert best >= 0.9
    assert rand.high < best


def test_triggered_inputs_localise_the_trojan_units():
    org = trojans.load("trojan-patch-digits")
    x, y = digits("score")
    x = x[y != org.target]
    units = [(trojans.ACT_SITE, i) for i in range(72)]
    e = explain_failure(org.model, x, org.trigger.apply(x), units=units, method="attribution")
    assert localisation_auroc(e.mean_scores(), org.truth_units) > 0.9
    # a fixed budget (the failures track's K_UNITS), never the truth's size
    assert restoration_rate(org.model, x, org.trigger.apply(x), e, 16).value >= 0.9


def test_token_trojan_heads_and_whole_site_units():
    org = trojans.load("trojan-token")
    gen = torch.Generator().manual_seed(tt.SCORE_SEED)
    x = tt.clean_batch(64, gen)
    x = x[x[:, 0] != tt.TARGET]
    xt, _ = tt.add_trigger(x, gen)
    heads = [(Site(Component.ATTN_Z, 0), h) for h in range(4)]
    e = explain_failure(org.model, x, xt, units=heads, method="activation")
    assert localisation_auroc(e.mean_scores(), org.truth_units) == 1.0
    mlp = explain_failure(
        org.model, x, xt, units=heads + [(Site(Component.MLP_OUT, 0), None)], method="attribution"
    )
    assert mlp.scores.shape == (len(x), 5)
    with pytest.raises(UnknownNameError):
        explain_failure(org.model, x, xt, units=heads, method="nope")
