"""Causal report section: hypotheses per kind with intervals; the ground truth apart."""

from __future__ import annotations

from interplab.report.causal import causal_section


def _rows(method, values, prefix=""):
    return [
        {
            "organism": "o",
            "method": method,
            "ablation": None,
            "metric": prefix + m,
            "value": v,
            "seconds": 0.0,
        }
        for m, v in values.items()
    ]


ROWS = (
    _rows(
        "misaligned",
        {
            "counterfactual_accuracy_interchange": 0.03,
            "counterfactual_accuracy_ablation": 0.35,
            "counterfactual_accuracy_new_input": 1.0,
            "n_interchange": 200,
            "n_ablation": 200,
            "n_new_input": 200,
        },
    )
    + _rows(
        "ground_truth",
        {
            "counterfactual_accuracy_interchange": 1.0,
            "counterfactual_accuracy_new_input": 1.0,
            "n_interchange": 200,
            "n_new_input": 200,
        },
        prefix="selfcheck_",
    )
    + _rows("probe:hist", {"probe_selectivity": 0.54, "probe_accuracy": 1.0})
)
ESTIMATES = {
    "misaligned": {
        "counterfactual_accuracy_interchange": {
            "value": 0.03,
            "low": 0.014,
            "high": 0.064,
            "n": 200,
        }
    }
}
OMITTED = {
    "ground_truth": {"selfcheck_counterfactual_accuracy_ablation": "calls no component irrelevant"},
    "circuit_eap": {"counterfactual_accuracy_interchange": "locates no variable"},
}


def test_ground_truth_is_a_selfcheck_apart_from_the_ranked_hypotheses():
    html = causal_section(ROWS, "o", ESTIMATES, OMITTED)
    ranked, rest = html.split("Scorer self-check (not a result)")
    assert "misaligned" in ranked and "ground_truth" not in ranked
    assert "<td class='name'>ground_truth</td><td>1.000" in rest
    assert "title='calls no component irrelevant'>n/a" in rest
    assert "0.030 [0.01, 0.06] <span class='muted'>n=200</span>" in ranked
    assert "0.350 <span class='muted'>n=200</span>" in ranked  # no interval stored: n from rows
    assert "probe_selectivity" in rest and "locates no variable" in rest
    assert causal_section(ROWS, "other") == ""


def test_methods_come_before_controls_and_say_how_they_chose():
    rows = (
        ROWS
        + _rows("das", {"counterfactual_accuracy_interchange": 0.985, "n_interchange": 200})
        + _rows("random", {"counterfactual_accuracy_interchange": 0.03, "n_interchange": 200})
    )
    settings = {
        "das": {
            "alignment": {
                "hist": {
                    "site": "L0.resid_post",
                    "k": 4,
                    "heldout_iia": {"L0.resid_pre": 0.0, "L0.resid_post": 0.98},
                }
            }
        },
        "circuit_eap": {
            "eap_circuit": {
                "k": 4,
                "n_edges": 13,
                "rule": "own rule",
                "recovered_at_k": 1.0,
                "nodes": ["L0.H0", "L0.MLP"],
            }
        },
    }
    html = causal_section(rows, "o", ESTIMATES, OMITTED, settings)
    ranked = html.split("Scorer self-check (not a result)")[0]
    order = [ranked.index(f"<td class='name'>{m}</td>") for m in ("das", "random", "misaligned")]
    assert order == sorted(order)
    assert "hist @ L0.resid_post (k=4, held-out IIA there 0.98)" in ranked
    assert "top 4 of 13 edges (own rule; recovered 1.00) -&gt; L0.H0, L0.MLP" in ranked
    assert "How the methods chose" not in causal_section(ROWS, "o", ESTIMATES, OMITTED)
