"""Fairness organisms: the planted proxy reliance holds in the weights, checked here by the
test's own interventions on held-out rows of the cached models; a failing truth refuses."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import UnknownNameError, VerificationError
from interplab.zoo import fairness as Z


def _flip_rates(org: Z.FairOrganism, column: str) -> tuple[float, float]:
    """(model's, rule's) share of held-out decisions that change when ``column`` is flipped."""
    x = org.data.x[org.test_idx]
    j = org.names.index(column)
    moved = x.clone()
    moved[:, j] = 1 - moved[:, j]
    lv, proxy = org.spec.level, org.truth["proxy"]
    model = float((org.decide(moved) != org.decide(x)).double().mean())
    rule = Z.planted_approves(moved, org.names, lv, proxy) != Z.planted_approves(
        x, org.names, lv, proxy
    )
    return model, float(rule.double().mean())


def test_inputs_exclude_protected_features_and_both_zones_carry_the_group():
    org = Z.get("fair-credit-age-strong-v0", 0)
    assert not set(Z.EXCLUDED) & set(org.names)
    assert {org.truth["proxy"], org.truth["decoy"]} == set(Z.SYNTHETIC)
    g = org.protected.double()
    corr = [
        float(torch.corrcoef(torch.stack([org.data.x[:, org.names.index(c)], g]))[0, 1])
        for c in Z.SYNTHETIC
    ]
    assert min(corr) > 0.6 and abs(corr[0] - corr[1]) < 0.1  # screening cannot tell them apart


def test_strong_proxy_flips_decisions_as_planted_and_twin_and_decoy_do_not():
    strong = Z.get("fair-credit-age-strong-v0", 0)
    twin = Z.get("fair-credit-age-none-v0", 0)
    assert twin.truth["proxy"] == strong.truth["proxy"]  # same data, no reliance
    model, rule = _flip_rates(strong, strong.truth["proxy"])
    assert rule > 0.2 and abs(model - rule) <= Z.FLIP_TOLERANCE
    assert _flip_rates(twin, twin.truth["proxy"])[0] <= Z.MAX_UNUSED_FLIP
    for org in (strong, twin):
        assert _flip_rates(org, org.truth["decoy"])[0] <= Z.MAX_UNUSED_FLIP
        x = org.data.x[org.test_idx]
        rule_y = Z.planted_approves(x, org.names, org.spec.level, org.truth["proxy"])
        assert float((org.decide(x) == rule_y).double().mean()) >= Z.MIN_AGREEMENT


def test_weak_proxy_changes_the_rows_the_rule_changes():
    org = Z.get("fair-credit-sex-weak-v0", 0)
    x = org.data.x[org.test_idx]
    proxy = org.truth["proxy"]
    moved = Z.flipped(x, org.names, proxy)
    rule = Z.planted_approves(moved, org.names, "weak", proxy) != Z.planted_approves(
        x, org.names, "weak", proxy
    )
    assert int(rule.sum()) >= Z.MIN_RULE_FLIPS
    changed = org.decide(moved) != org.decide(x)
    assert float(changed[rule].double().mean()) >= Z.MIN_FLIP_RECALL
    assert _flip_rates(org, org.truth["decoy"])[0] <= Z.MAX_UNUSED_FLIP


def test_a_failing_check_refuses_the_organism(monkeypatch):
    Z.get.cache_clear()
    monkeypatch.setattr(Z, "MAX_UNUSED_FLIP", -1.0)  # no decoy can pass: the load must refuse
    with pytest.raises(VerificationError, match="decoy_flip_rate"):
        Z.load("fair-credit-age-none-v0", 0)


def test_corrupted_weights_fail_the_checks():
    org = Z.get("fair-credit-age-strong-v0", 0)
    model = Z.T.TabularNet(org.features, org.spec.train.hidden)
    model.load_state_dict(org.model.state_dict())
    cols = model.groups[org.names.index(org.truth["proxy"])]
    with torch.no_grad():
        model.net[0].weight[:, cols] = 0.0  # the net can no longer read the proxy
    checks = Z.verify(
        model.eval(),
        org.data.x[org.test_idx],
        org.names,
        "strong",
        org.truth["proxy"],
        org.truth["decoy"],
    )
    bad = Z.failed_checks(checks, reliant=True)
    assert any("proxy_flip" in b for b in bad)


def test_cache_is_reused_and_names_are_checked(monkeypatch):
    first = Z.load("fair-credit-sex-none-v0", 0)
    monkeypatch.setattr(Z, "_train", lambda *a: pytest.fail("retrained a cached organism"))
    again = Z.load("fair-credit-sex-none-v0", 0)
    for k, v in first.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])
    with pytest.raises(UnknownNameError):
        Z.load("fair-credit-height-none-v0", 0)
    names = {e.name for e in Z.entries()}
    assert names == set(Z.NAMES) and "fair-credit-age-weak-v3" in names


def test_a_cached_model_that_lost_its_reliance_is_refused_on_load():
    """Weights rewritten in the cache (hash updated, so the file looks valid) are re-verified
    on load: a strong organism whose proxy input was zeroed is refused, not used."""
    import hashlib
    import json
    import shutil

    from interplab.models.io import atomic_write_text, save_tensors

    name = "fair-credit-sex-strong-v0"
    org = Z.load(name, 0)
    directory = Z.cache_dir() / "fairness" / f"{name}-{Z.fingerprint(org.spec)}" / "seed0"
    state = {k: v.clone() for k, v in org.model.state_dict().items()}
    cols = org.model.groups[org.names.index(org.truth["proxy"])]
    state["net.0.weight"][:, cols] = 0.0
    save_tensors(directory / "model.safetensors", state)
    stored = json.loads((directory / "truth.json").read_text())
    stored["weights_sha256"] = hashlib.sha256(
        (directory / "model.safetensors").read_bytes()
    ).hexdigest()
    atomic_write_text(directory / "truth.json", json.dumps(stored))
    try:
        with pytest.raises(VerificationError, match="proxy_flip"):
            Z.load(name, 0)
    finally:  # later tests in the session get a rebuilt organism, not this one
        shutil.rmtree(directory)
        Z.get.cache_clear()
