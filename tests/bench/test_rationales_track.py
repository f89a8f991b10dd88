"""The rationales track: rows, controls, oracles, and what the issue says it must show."""

import pytest

from interplab.bench.spec import parse_spec
from interplab.bench.tracks import TRACK_MODULES, Job, get_track
from interplab.bench.tracks import rationales as R
from interplab.errors import ConfigError, SpecError, UnknownNameError

QUICK = R.SUITES["quick"]


def _values(out):
    return {r["metric"]: r["value"] for r in out.rows}


def test_track_is_registered_with_its_baselines_and_oracles():
    assert TRACK_MODULES["rationales"] == "interplab.bench.tracks.rationales"
    track = get_track("rationales")
    assert track.baselines() == {"random", "nearest_neighbour", "permutation", "oracle:linear_shap"}
    assert R.ORACLES == ("oracle:linear_shap",) and track.kind("oracle:linear_shap") == "oracle"
    for suite in R.SUITES.values():
        assert "random" in suite["methods"]
        assert set(suite["methods"]) <= set(R.METHODS) and set(suite["organisms"]) <= set(
            R.ORGANISMS
        )


def test_oracle_job_is_exact_and_scores_the_headline_at_its_ceiling():
    out = R.run_job(Job("rationales", "credit-linear", "oracle:linear_shap", None))
    v = _values(out)
    assert v["oracle_max_abs_error"] < 1e-6 and v["top_k_recall"] == 1.0
    assert (
        v["claim_accuracy"] >= 0.95 and 0.0 <= v["claim_accuracy_unchecked"] <= v["claim_accuracy"]
    )
    est = out.artifacts["estimates"]["claim_accuracy"]
    assert est["low"] <= est["value"] <= est["high"] + 1e-9 and est["n"] > 0
    assert out.artifacts["estimates"]["top_k_recall"]["k"] == 5  # ⌈20 / 4⌉, not |truth|


def test_the_oracle_is_not_expanded_where_it_cannot_apply_and_the_list_says_why():
    assert R.applies("credit-linear", "oracle:linear_shap")
    for organism in ("credit-rule", "credit-mlp", "cancer-mlp", "digits-rule"):
        assert not R.applies(organism, "oracle:linear_shap")
        assert "linear" in R.why_not(organism, "oracle:linear_shap")
        assert "oracle:linear_shap" not in R.methods_of(organism)
    assert all(R.applies(o, m) for o in R.ORGANISMS for m in R.METHODS if m not in R.ORACLES)
    spec = parse_spec(
        '[rationales]\norganisms = ["credit-rule", "credit-linear"]\n'
        'methods = ["oracle:linear_shap", "random"]\n'
    )
    keys = {j.key for j in spec.all_jobs()}
    assert "rationales/credit-linear/oracle:linear_shap/-/seed0" in keys
    assert "rationales/credit-rule/random/-/seed0" in keys
    assert not any("credit-rule/oracle" in k for k in keys)
    [(job, why)] = spec.left_out()
    assert job.key == "rationales/credit-rule/oracle:linear_shap/-/seed0" and "MLP" in why
    with pytest.raises(SpecError, match="applies to none"):
        parse_spec('[rationales]\norganisms = ["credit-rule"]\nmethods = ["oracle:linear_shap"]\n')
    with pytest.raises(ConfigError, match="does not expand"):
        R.run_job(Job("rationales", "credit-rule", "oracle:linear_shap", None))


def test_bad_names_are_errors():
    with pytest.raises(UnknownNameError):
        R.run_job(Job("rationales", "credit-rul", "random", None))
    with pytest.raises(UnknownNameError):
        R.run_job(Job("rationales", "credit-rule", "shapp", None))
    with pytest.raises(UnknownNameError, match="oracle:linear_shap"):
        R.run_job(Job("rationales", "credit-rule", "linear_shap", None))


def test_headline_leaves_random_far_below_the_best_on_the_quick_organisms():
    """The headline (top-k recall, k = ⌈d/4⌉) computed on the rows the track scores: random ≤ 0.6
    and the best non-oracle method ≥ random + 0.2 on every quick organism (the fast check; the
    slow test below runs the whole track and the summary)."""
    from interplab.eval import rationales as E
    from interplab.methods.rationales import attribute

    for organism in QUICK["organisms"]:
        org, model, rows, bg = R._setup(organism, 0, R.n_rows(organism))
        explained = R._explained(organism, 0, R.n_rows(organism))  # per row (several classes)
        names = list(model.names)
        truth = org.true_attributions(rows)
        feats = org.true_features()
        idx = [names.index(f) for f in feats] if feats is not None else None
        score = {}
        for method in ("integrated_gradients", "occlusion", "random"):
            import torch

            values = torch.stack(
                [
                    attribute(explained[i], x, method=method, baseline=bg, seed=i).values
                    for i, x in enumerate(rows)
                ]
            )
            score[method] = E.attribution_agreement(values, true_values=truth, true_features=idx)[
                "top_k_recall"
            ].value
        best = max(v for m, v in score.items() if m != "random")
        assert score["random"] <= 0.6, (organism, score)
        assert best - score["random"] >= 0.2, (organism, score)


@pytest.mark.slow
def test_quick_track_summary_separates_methods_from_random(tmp_path):
    """Every quick job run, stored and summarised as the report does: random ≤ 0.6 on the
    headline; the best method clears random by ≥ 0.2; the oracle is shown, never ranked;
    every method is ranked over both organisms."""
    import json

    from interplab.bench.runner import execute_job
    from interplab.bench.store import ResultsStore
    from interplab.report.summary import MARGIN, track_summary

    spec = parse_spec(
        f"[rationales]\norganisms = {json.dumps(QUICK['organisms'])}\n"
        f"methods = {json.dumps(QUICK['methods'])}\n"
    )
    with ResultsStore(tmp_path / "results.sqlite") as store:
        for job in spec.jobs():
            rows, artifacts, seconds, error = execute_job(job)
            assert error is None, error
            store.record(job, rows, artifacts, seconds)
        info = track_summary(store)["rationales"]
    assert info["metric"] == "top_k_recall"
    rows = info["methods"]
    assert rows["random"]["score"].mean <= 0.6
    assert (
        info["separates"] is True and info["separation"].count(f"beats random by ≥ {MARGIN:g}") == 1
    )
    ranked = {m for m, r in rows.items() if r["rank"] is not None}
    assert ranked == {"kernel_shap", "integrated_gradients", "occlusion"}
    assert (
        rows["oracle:linear_shap"]["kind"] == "oracle"
        and rows["oracle:linear_shap"]["rank"] is None
    )
    assert all(rows[m]["score"].n == len(QUICK["organisms"]) for m in ranked)


@pytest.mark.slow
def test_what_it_must_show():
    """credit-rule: the best attribution method recovers the scorecard (top-k recall ≥ 0.9), random
    far below; recourse validity 1.0 everywhere; claim accuracy ≥ 0.95 on every organism."""
    agree = {
        m: _values(R.run_job(Job("rationales", "credit-rule", m, None)))["top_k_recall"]
        for m in ("kernel_shap", "integrated_gradients", "occlusion", "random")
    }
    best = max(v for m, v in agree.items() if m != "random")
    assert best >= 0.9 and agree["random"] < best - 0.4
    for organism in R.ORGANISMS:
        rec = _values(R.run_job(Job("rationales", organism, "recourse", None)))
        assert rec["counterfactual_validity"] == 1.0 and rec["actionability"] == 1.0, organism
        claims = R.run_job(Job("rationales", organism, "kernel_shap", None))
        assert _values(claims)["claim_accuracy"] >= 0.95, organism
