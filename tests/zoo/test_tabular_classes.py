"""credit-tiers, the three-class decision organism: its planted truth is verified by intervening
on the trained model on held-out rows (here, independently of the check its builder ran)."""

import torch

from interplab.models import tabular as T
from interplab.zoo import tabular as Z


def _draw(x: torch.Tensor, cols: list[int], pool: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    out = x.clone()
    out[:, cols] = pool[torch.randint(0, pool.shape[0], (x.shape[0],), generator=gen)][:, cols]
    return out


def test_the_scorecard_features_decide_the_class_and_nothing_else_does():
    org = Z.get("credit-tiers")
    assert org.classes == Z.TIERS == ("refuse", "review", "approve")
    assert set(org.true_features()) == set(T.SCORECARD)
    names = org.data.names
    deciding = [names.index(f) for f in T.SCORECARD]
    others = [j for j in range(len(names)) if j not in deciding]
    x, pool = org.test_rows, org.background  # held-out rows; replacements from training rows
    assert not set(org.train_idx.tolist()) & set(org.test_idx.tolist())
    with torch.no_grad():
        pred = org.model(x).argmax(1)
        assert org.model(x).shape == (x.shape[0], 3)
        # the model follows the planted rule on rows it never saw
        assert float((pred == Z.tier_of(x, names)).double().mean()) >= 0.98
        # resampling the 16 other features leaves the class as it was
        kept = org.model(_draw(x, others, pool, 11)).argmax(1) == pred
        assert float(kept.double().mean()) >= 0.98
        # resampling the 4 scorecard features moves the class where the rule says
        moved = _draw(x, deciding, pool, 12)
        follows = org.model(moved).argmax(1) == Z.tier_of(moved, names)
        assert float(follows.double().mean()) >= 0.98
        # and each class can be set by the scorecard features alone
        tiers = Z.tier_of(pool, names)
        for c in range(3):
            rows = _draw(x, deciding, pool[tiers == c], 13 + c)
            assert float((org.model(rows).argmax(1) == c).double().mean()) >= 0.98
    # every class occurs among the held-out decisions (a three-class question, not two)
    assert torch.bincount(pred, minlength=3).min() >= 40


def test_the_builder_recorded_its_intervention_check():
    org = Z.get("credit-tiers")
    checks = org.truth["intervention"]
    assert checks["n"] == org.test_rows.shape[0] == 400
    assert {
        "agrees_with_rule",
        "others_resampled_keep_class",
        "rule_resampled_follows_rule",
        "set_to_refuse",
        "set_to_review",
        "set_to_approve",
    } <= set(checks)
    assert all(v >= Z.MIN_RULE_ACCURACY for k, v in checks.items() if k != "n")
    assert org.truth["kind"] == "tiers" and org.true_attributions(org.test_rows[:3]) is None


def test_the_organism_contract_keeps_the_truth_apart_from_scored_rows():
    import interplab as ip

    o = ip.organism("credit-tiers")
    record = o.check_independent()
    assert record["overlap"] == 0 and record["scoring_rows"] == 400
    assert o.truth.content["features"] == list(T.SCORECARD)


def test_a_model_that_ignores_the_rule_is_refused(monkeypatch):
    """A model whose class comes from one unrelated feature (age) fails the builder's check, and
    the builder refuses it with VerificationError."""
    import pytest

    from interplab.errors import VerificationError

    org = Z.get("credit-tiers")
    j = org.data.names.index("age")

    class Wrong(torch.nn.Module):
        def forward(self, x):
            age = x[:, j : j + 1]
            return torch.cat([age - 30, torch.zeros_like(age), 40 - age], 1)

    checks = Z.verify_tiers(Wrong(), org.data, org.test_idx, org.train_idx, 0)
    assert checks["agrees_with_rule"] < 0.8 and checks["others_resampled_keep_class"] < 0.98
    monkeypatch.setattr(Z, "fit_classes", lambda *a, **k: Wrong())
    spec = Z.SPECS["credit-tiers"]
    with pytest.raises(VerificationError, match="others_resampled_keep_class"):
        Z._train_tiers(
            spec,
            org.data,
            org.background,
            org.data.y[org.train_idx],
            spec.train,
            org.train_idx,
            org.test_idx,
            0,
        )
