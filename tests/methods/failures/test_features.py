"""SAE latents as failure-explanation units: a TopK SAE trained on clean hidden activations of a
digits organism, latents scored, patched back by contribution, checked by restoration."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, ShapeError, UnknownNameError
from interplab.eval.failures import leftover_rate, restoration_rate
from interplab.methods.attacks import pgd
from interplab.methods.dictionaries import DictionaryConfig, SparseDictionary
from interplab.methods.failures import explain_failure, explain_failure_features, patch_latents
from interplab.models.trojans import digits
from interplab.zoo import trojans


@pytest.fixture(scope="module")
def case():
    torch.set_num_threads(1)
    org = trojans.load("twin-patch-digits")
    sae = trojans.digits_sae("twin-patch-digits")
    x, y = digits("score")
    r = pgd(org.model, x, y, eps=0.1, steps=10, restarts=2)
    ok = r.success & r.clean_correct
    return org.model, sae, x[ok], r.x_adv[ok]


def test_sae_is_trained_on_clean_activations_and_reconstructs_them(case):
    model, sae, _, _ = case
    x, _ = digits("train")
    _, cache = model.run_with_cache(x, [trojans.ACT_SITE])
    a = cache[trojans.ACT_SITE]
    assert sae.config.activation == "topk" and sae.d_in == a.shape[1]
    with torch.no_grad():
        err = (sae(a) - a).pow(2).sum() / (a - a.mean(0)).pow(2).sum()
        assert (sae.encode(a) > 0).sum(-1).max() <= sae.config.k
    assert float(err) < 0.5  # the dictionary explains most of the clean variance


def test_patching_nothing_or_everything_is_exact(case):
    model, sae, x, xa = case
    e = explain_failure_features(
        model, x, xa, site=trojans.ACT_SITE, dictionary=sae, method="random"
    )
    assert bool((e.fail_labels != e.clean_labels).all())
    assert restoration_rate(model, x, xa, e, 0).value == 0.0  # nothing patched: still failing
    assert leftover_rate(model, x, xa, e, 0).value == 1.0  # the rest = the whole clean site
    none = torch.zeros(len(x), sae.W_dec.shape[0], dtype=torch.bool)
    _, cc = model.run_with_cache(x, [trojans.ACT_SITE])
    _, fc = model.run_with_cache(xa, [trojans.ACT_SITE])
    assert torch.allclose(
        patch_latents(
            model, trojans.ACT_SITE, sae, cc[trojans.ACT_SITE], fc[trojans.ACT_SITE], xa, none
        ),
        model.run(xa),
        atol=1e-5,
    )


def test_attribution_is_exact_before_a_linear_readout(case):
    """``act`` feeds a linear layer, so the attribution-patching estimate of each latent's effect
    must equal the exact one-latent patch."""
    model, sae, x, xa = case
    kw = dict(site=trojans.ACT_SITE, dictionary=sae)
    act = explain_failure_features(model, x, xa, method="activation", **kw)
    att = explain_failure_features(model, x, xa, method="attribution", **kw)
    assert torch.allclose(act.scores, att.scores, atol=1e-3, rtol=1e-3)
    assert act.cost.forward > att.cost.forward and att.cost.backward == 1


def test_sae_latents_restore_adversarial_failures_beside_neurons_and_random(case):
    model, sae, x, xa = case
    k = 8
    e = explain_failure_features(model, x, xa, site=trojans.ACT_SITE, dictionary=sae)
    rand = explain_failure_features(
        model, x, xa, site=trojans.ACT_SITE, dictionary=sae, method="random"
    )
    ours, ctrl = restoration_rate(model, x, xa, e, k), restoration_rate(model, x, xa, rand, k)
    assert ours.n == ctrl.n == len(x) and ours.low > ctrl.high
    assert leftover_rate(model, x, xa, e, k).value < leftover_rate(model, x, xa, rand, k).value
    units = [(trojans.ACT_SITE, i) for i in range(model.module.out.in_features)]
    neurons = explain_failure(model, x, xa, units=units)
    assert (
        0.0 <= restoration_rate(model, x, xa, neurons, k).value <= 1.0
    )  # reported beside, not ranked


def test_bad_input(case):
    model, sae, x, xa = case
    with pytest.raises(UnknownNameError):
        explain_failure_features(model, x, xa, site=trojans.ACT_SITE, dictionary=sae, method="nope")
    wrong = SparseDictionary(
        DictionaryConfig(d_in=sae.d_in + 1, d_latent=8, activation="topk", k=2)
    )
    with pytest.raises(ShapeError):
        explain_failure_features(model, x, xa, site=trojans.ACT_SITE, dictionary=wrong)
    transcoder = SparseDictionary(DictionaryConfig(d_in=sae.d_in, d_latent=8, d_out=4))
    with pytest.raises(ConfigError, match="transcoder"):
        explain_failure_features(model, x, xa, site=trojans.ACT_SITE, dictionary=transcoder)
    with pytest.raises(UnknownNameError):
        trojans.digits_sae("trojan-token")
