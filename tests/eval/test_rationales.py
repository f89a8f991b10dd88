"""Scores for rationales on hand-built inputs whose answers are known."""

import math

import torch

from interplab.data.tabular import Feature
from interplab.eval import rationales as E
from interplab.methods.rationales import DecisionModel
from interplab.methods.rationales.rationale import Claim, Rationale
from interplab.methods.rationales.recourse import Counterfactual, Recourse

FEATURES = (
    Feature("a", "numeric", low=0, high=10),
    Feature("b", "numeric", low=0, high=10),
    Feature("age", "numeric", low=18, high=90, immutable=True),
)
# approve when a > 5: b and age never matter
MODEL = DecisionModel(FEATURES, lambda x: x[:, 0] - 5.0)


def _option(row):
    return Counterfactual(torch.tensor(row, dtype=torch.float64), (), 0.0, True, 0.0)


def test_counterfactual_scores_recompute_validity_and_actionability():
    x = torch.tensor([2.0, 1.0, 40.0], dtype=torch.float64)
    rec = Recourse(
        "t",
        False,
        (
            _option([6.0, 1.0, 40.0]),  # flips, legal
            _option([4.0, 9.0, 40.0]),  # does not flip (claims valid: rechecked)
            _option([7.0, 1.0, 30.0]),  # flips but changes age
            _option([11.0, 1.0, 40.0]),  # flips, out of range
        ),
    )
    s = E.counterfactual_scores(MODEL, [x], [rec])
    assert s["counterfactual_validity"].value == 0.75 and s["counterfactual_validity"].n == 4
    assert s["actionability"].value == 0.5
    assert s["sparsity"].value == 1.5  # 1 + 2 + 2 + 1 changed features
    assert s["counterfactual_validity"].low < 0.75 < s["counterfactual_validity"].high


def _rationale(x, claims):
    return Rationale(
        x,
        bool(MODEL.decide(x[None])[0]),
        "",
        0.0,
        None,
        None,
        tuple(claims),
        (),
        FEATURES,
        ("refuse", "approve"),
    )


def test_claim_accuracy_retests_claims_independently():
    x = torch.tensor([2.0, 1.0, 40.0], dtype=torch.float64)
    bg = torch.tensor([[a, b, 30.0] for a in range(11) for b in range(11)], dtype=torch.float64)
    true_claims = [
        Claim("irrelevant", "", {"feature": "b"}, ""),
        Claim("irrelevant", "", {"feature": "age"}, ""),
        Claim("counterfactual", "", {"set": {}, "ranges": {"a": [6.0, 9.0]}, "outcome": True}, ""),
        Claim("direction", "", {"feature": "a", "sign": -1, "min_effect": 0.1}, ""),
        Claim("share", "", {"features": ["a"], "share": 1.0, "tolerance": 0.05}, ""),
    ]
    false_claims = [
        Claim("irrelevant", "", {"feature": "a"}, ""),
        Claim("counterfactual", "", {"set": {}, "ranges": {"a": [4.0, 9.0]}, "outcome": True}, ""),
        Claim("direction", "", {"feature": "b", "sign": -1, "min_effect": 0.1}, ""),
        Claim("share", "", {"features": ["b"], "share": 0.5, "tolerance": 0.1}, ""),
    ]
    ok = E.claim_accuracy(MODEL, [_rationale(x, true_claims)], bg)
    bad = E.claim_accuracy(MODEL, [_rationale(x, false_claims)], bg)
    assert ok["claim_accuracy"].value == 1.0 and ok["claim_accuracy"].n == 5
    assert bad["claim_accuracy"].value == 0.0


def test_agreement_metrics():
    assert E.top_k_recall(torch.tensor([0.1, -5.0, 3.0, 0.0]), [1, 2], k=2) == 1.0
    assert E.top_k_recall(torch.tensor([9.0, -5.0, 3.0, 0.0]), [1, 2], k=2) == 0.5
    # k above |true|: recall out of the true features; k below: out of the k that fit
    assert E.top_k_recall(torch.tensor([9.0, -5.0, 3.0, 0.0]), [2], k=3) == 1.0
    assert E.top_k_recall(torch.tensor([9.0, -5.0, 3.0, 0.0]), [0, 1, 2], k=2) == 1.0
    assert math.isclose(E.spearman(torch.tensor([1.0, 2, 3]), torch.tensor([10.0, 20, 30])), 1.0)
    assert math.isclose(E.spearman(torch.tensor([1.0, 2, 3]), torch.tensor([3.0, 2, 1])), -1.0)
    truth = torch.tensor([[0.0, 2.0, -1.0, 0.0]])
    out = E.attribution_agreement(
        torch.tensor([[0.0, 1.0, 0.5, 0.1]]), true_values=truth, true_features=[1, 2]
    )
    assert out["top_k_recall"].value == 1.0 and "attribution_agreement" not in out


def test_top_k_is_a_fixed_share_of_the_features_never_the_truth_size():
    assert [E.top_k(d) for d in (1, 4, 20, 64)] == [1, 1, 5, 16]
    values = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.4, 0.3]])  # d = 8: k = 2
    small = E.attribution_agreement(values, true_features=[0])["top_k_recall"].value
    large = E.attribution_agreement(values, true_features=[0, 1, 2, 3])["top_k_recall"].value
    assert small == 1.0 and large == 1.0, "the same k (2) whatever the truth's size"
    assert E.attribution_agreement(values, true_features=[6, 7])["top_k_recall"].value == 0.0


def test_random_attributions_score_about_k_over_d():
    """The floor the headline is judged against: random |φ| ranks put each feature in the top k
    with probability k/d."""
    gen = torch.Generator().manual_seed(0)
    d, n = 20, 4000
    values = torch.randn(n, d, generator=gen)
    rec = E.attribution_agreement(values, true_features=[0, 3, 7, 11])["top_k_recall"]
    assert abs(rec.value - E.top_k(d) / d) < 3 * (rec.high - rec.low)
    assert rec.high < 0.3


def test_without_a_feature_set_a_rows_true_features_are_its_largest_contributions():
    truth = torch.tensor([[0.0, 0.1, 9.0, -8.0, 7.0, 6.0, 0.2, 0.3]])  # top 4: 2, 3, 4, 5
    hit = torch.tensor([[0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0]])  # k = 2: both in the top 4
    miss = torch.tensor([[1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    assert E.attribution_agreement(hit, true_values=truth)["top_k_recall"].value == 1.0
    assert E.attribution_agreement(miss, true_values=truth)["top_k_recall"].value == 0.0


def test_deletion_curve_is_lower_for_the_right_ranking():
    x = torch.tensor([[9.0, 1.0, 40.0]], dtype=torch.float64)
    bg = torch.tensor([[a, 5.0, 30.0] for a in range(11)], dtype=torch.float64)
    right = E.deletion_insertion(MODEL, x, torch.tensor([[3.0, 1.0, 0.0]]), bg)
    wrong = E.deletion_insertion(MODEL, x, torch.tensor([[0.0, 1.0, 3.0]]), bg)
    assert right["deletion_auc"].value < wrong["deletion_auc"].value
    assert right["insertion_auc"].value > wrong["insertion_auc"].value


def test_stability_of_a_deterministic_and_a_random_method():
    rows = torch.tensor([[2.0, 1.0, 40.0], [7.0, 3.0, 50.0]], dtype=torch.float64)
    bg = rows.repeat(5, 1) + torch.arange(10, dtype=torch.float64)[:, None] * 0.1
    fixed = E.stability(lambda x, s: torch.tensor([3.0, 2.0, 1.0]), FEATURES, rows, bg)
    noisy = E.stability(
        lambda x, s: torch.randn(3, generator=torch.Generator().manual_seed(s)), FEATURES, rows, bg
    )
    assert math.isclose(fixed.value, 1.0) and noisy.value < 0.9
