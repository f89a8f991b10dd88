"""The steering summary's numbers (Wilson rates, moved share, verdicts against the random
control) and the page: self-contained, with the model note, table and bars."""

from __future__ import annotations

import pytest

from interplab.report.steering import steering_report, summarise


def _cond(direction, kind, alpha, scores, seed=None):
    label = kind if kind != "add" else f"add {alpha:+g}"
    if direction == "learned":
        label = "learned " + label
    elif direction == "random":
        label = f"random#{seed} " + label
    return {
        "label": label,
        "direction": direction,
        "kind": kind,
        "alpha": alpha,
        "seed": seed,
        "scores": scores,
    }


def result(learned_up, random_up):
    base = [0.5, -0.5, 1.0, -1.0]
    conds = [
        _cond("-", "none", 0.0, base),
        _cond("learned", "ablate", 0.0, [0.6, -0.4, 1.1, -0.9]),
        _cond("learned", "add", 2.0, [b + learned_up for b in base]),
        _cond("learned", "add", -2.0, [b - learned_up for b in base]),
    ]
    for seed, shift in ((0, random_up), (1, -random_up)):
        conds += [
            _cond("random", "ablate", 0.0, base, seed),
            _cond("random", "add", 2.0, [b + shift for b in base], seed),
            _cond("random", "add", -2.0, [b - shift for b in base], seed),
        ]
    return {
        "model": "smollm2-135m",
        "concept": "sentiment",
        "model_note": "BASE model, not Instruct",
        "site": "L15.resid_post",
        "gap": 40.0,
        "alphas": [2.0],
        "fit_projection_auc": 1.0,
        "task": {
            "n_fit": [8, 8],
            "eval_prompts": ["The movie was <b>"],
            "eval_words": {"positive": ["good"], "negative": ["bad"]},
        },
        "conditions": conds,
        "notes": ["ablation note"],
    }


def test_rates_intervals_and_moved_share():
    s = summarise(result(3.0, 0.2))
    assert s["n"] == 4
    none, ablate, up, down = s["rows"]
    assert none["positive_rate"]["value"] == 0.5 and none["moved_share"] is None
    assert up["positive_rate"]["value"] == 1.0 and up["positive_rate"]["low"] < 1.0
    assert down["positive_rate"]["value"] == 0.0 and down["moved"] == "down"
    assert up["moved_share"]["value"] == 1.0 and ablate["moved_share"]["value"] == 1.0
    assert up["mean_log_odds"]["value"] == pytest.approx(3.0)
    assert up["mean_log_odds"]["low"] < 3.0 < up["mean_log_odds"]["high"]
    ctrl = {(c["kind"], c["alpha"]): c for c in s["control"]}
    assert ctrl[("add", 2.0)]["n_directions"] == 2
    assert ctrl[("add", 2.0)]["mean_log_odds"]["max"] == pytest.approx(0.2)
    assert ctrl[("add", 2.0)]["moved_share"]["mean"] == 0.5  # one random direction up, one down


def test_verdicts_follow_the_control():
    strong = {v["alpha"]: v for v in summarise(result(3.0, 0.2))["verdicts"]}
    assert strong[2.0]["beyond_random"] and strong[-2.0]["beyond_random"]
    assert strong[2.0]["rate_beyond_random"]
    weak = {v["alpha"]: v for v in summarise(result(0.2, 3.0))["verdicts"]}
    assert not weak[2.0]["beyond_random"] and not weak[-2.0]["beyond_random"]


def test_page_is_self_contained_and_says_which_model():
    html = steering_report(result(3.0, 0.2))
    assert html.startswith("<!doctype html>") and "<svg" in html
    assert "BASE model, not Instruct" in html and "smollm2-135m" in html and "ablation note" in html
    assert "learned add +2" in html and "beyond" in html and "NOT beyond" not in html
    assert "&lt;b&gt;" in html  # prompts are escaped
    assert "http://" not in html and "https://" not in html and "<script src" not in html
    assert "NOT beyond" in steering_report(result(0.2, 3.0))
