"""The failures track runs its quick jobs and reports the method beside its controls."""

from __future__ import annotations

import pytest

from interplab.bench.tracks import Job, failures, get_track
from interplab.errors import UnknownNameError


def _rows(organism, method):
    out = get_track("failures").run(Job("failures", organism, method, None, 0))
    return {r["metric"]: r["value"] for r in out.rows}, out.artifacts


def test_track_interface_and_baselines_named():
    track = get_track("failures")
    assert track.families == ("failures", "attacks")
    # the controls are registry baselines, named plainly (no "baseline:" prefix)
    assert {"random", "activation_change", "weight_norm"} <= track.baselines()
    assert not any(m.startswith("baseline:") for m in track.method_names())
    assert track.kind("attribution") == "method"
    with pytest.raises(UnknownNameError):
        track.run(Job("failures", "nope", "pgd", None, 0))


@pytest.mark.slow  # minutes on 2 cores: the full suite (CI) runs it
def test_explanations_beat_random_on_the_patch_trojan():
    ours, arts = _rows("trojan-patch-digits", "activation")
    rand, _ = _rows("trojan-patch-digits", "random")
    assert ours["restoration_rate"] > rand["restoration_rate"]
    assert ours["leftover_rate"] < rand["leftover_rate"]
    assert ours["trojan_localisation_auroc"] > rand["trojan_localisation_auroc"]
    est = arts["estimates"]["restoration_rate"]
    assert est["low"] <= est["value"] <= est["high"] and est["n"] > 0
    assert "trigger_iou" in rand  # the random trigger control
    # SAE latents as units, beside the neurons (same k, same examples)
    assert ours["restoration_rate_sae"] > rand["restoration_rate_sae"]
    assert ours["leftover_rate_sae"] < rand["leftover_rate_sae"]
    assert arts["estimates"]["restoration_rate_sae"]["n"] == est["n"]


def test_neural_cleanse_rows_and_artifacts():
    rows, arts = _rows("trojan-patch-digits", "neural_cleanse")
    assert 0 <= rows["trigger_iou"] <= 1 and 0 <= rows["reconstructed_attack_success"] <= 1
    assert len(arts["trigger"]["mask"]) == 64
    assert arts["trigger"]["flagged"] == rows["flagged_class"]


def test_feature_synthesis_rows():
    rows, arts = _rows("trojan-patch-digits", "feature_synthesis")
    assert 0 <= rows["trigger_iou"] <= 1 and arts["trigger"]["method"] == "feature_synthesis"
    assert len(arts["trigger"]["flip_rates"]) == 10


def _with_truth(monkeypatch, **changes):
    """Make the track load organisms whose truth fields are replaced by ``changes``."""
    import dataclasses

    from interplab.bench.tracks import failures
    from interplab.zoo import trojans

    real = trojans.load
    monkeypatch.setattr(
        trojans,
        "load",
        lambda name: dataclasses.replace(
            real(name), **{k: (v(real(name)) if callable(v) else v) for k, v in changes.items()}
        ),
    )
    monkeypatch.setattr(failures, "_NC_CACHE", {})


@pytest.mark.parametrize(
    "organism,method", [("trojan-token", "activation"), ("trojan-patch-digits", "attribution")]
)
def test_no_k_is_read_from_the_truth(monkeypatch, organism, method):
    """Shrinking or growing the true unit set changes only the localisation AUROC: every
    restoration row, the fixed k and the method's own k_trigger stay the same."""
    from interplab.core.sites import Component, Site
    from interplab.zoo import trojans

    base, arts = _rows(organism, method)
    site = Site(Component.ATTN_Z, 0) if organism == "trojan-token" else trojans.ACT_SITE
    for truth in (lambda o: o.truth_units[:1], lambda o: o.truth_units + ((site, 1),)):
        _with_truth(monkeypatch, truth_units=truth)
        got, got_arts = _rows(organism, method)
        rest = set(base) - {"trojan_localisation_auroc"}
        assert set(got) - {"trojan_localisation_auroc"} == rest
        assert all(got[m] == base[m] for m in rest)
        assert got_arts["k"] == arts["k"] and got_arts["k_trigger"] == arts["k_trigger"]
        monkeypatch.undo()


@pytest.mark.parametrize(
    "method",
    [
        "neural_cleanse",
        pytest.param("feature_synthesis", marks=pytest.mark.slow),
        pytest.param("random", marks=pytest.mark.slow),
    ],
)
def test_trigger_methods_are_scored_on_the_class_they_flag(monkeypatch, method):
    """Telling the organism a different target changes only ``target_identified``: the class
    scored, its trigger and its attack success are the method's own."""
    base, arts = _rows("trojan-patch-digits", method)
    _with_truth(monkeypatch, target=lambda o: (o.target + 1) % 10)
    got, got_arts = _rows("trojan-patch-digits", method)
    for m in ("flagged_class", "trigger_iou", "pattern_similarity", "reconstructed_attack_success"):
        assert got[m] == base[m], m
    assert got_arts["trigger"]["mask"] == arts["trigger"]["mask"]
    assert base["target_identified"] == float(base["flagged_class"] == 7)
    assert got["target_identified"] == float(got["flagged_class"] == 8)


def test_jobs_that_cannot_run_are_not_expanded():
    mod = get_track("failures")
    assert mod.applies("trojan-token", "gcg") and not mod.applies("trojan-patch-digits", "gcg")
    assert "gcg does not run on a digits classifier" in mod.why_not("trojan-patch-digits", "gcg")
    assert mod.methods_of("population-8") == ("neural_cleanse", "weight_norm", "random")


@pytest.mark.slow  # minutes on 2 cores: the full suite (CI) runs it
def test_activation_change_is_not_perfect_on_some_quick_organism():
    """Issue 21: on some quick trojan organism the trigger moves units that do not carry the
    backdoor more than some that do (trojan-decoy-digits: its clean units were trained to detect
    the trigger's stamp), so |Δactivation| alone cannot localise the trojan perfectly. The AUROC
    is computed by the track, on the score split. (Measured 0.949 at the organism's seed 0; the
    margin is two trojan units the trigger switches off, see ``zoo.trojans.DECOY``.)"""
    cells = [
        (o, "activation_change")
        for part in failures.SUITES["quick"]
        for o in part["organisms"]
        if "activation_change" in part["methods"] and failures._kind(o) in ("digits", "token")
    ]
    assert cells
    got = {o: _rows(o, m)[0]["trojan_localisation_auroc"] for o, m in cells}
    assert any(v < 1.0 for v in got.values()), got


def test_decoy_organism_rows_and_auroc_interval():
    """The decoy organism runs as a digits cell; the localisation AUROC carries a bootstrap
    interval over the triggered inputs and the number of units it ranks."""
    rows, arts = _rows("trojan-decoy-digits", "attribution")
    est = arts["estimates"]["trojan_localisation_auroc"]
    assert est["value"] == rows["trojan_localisation_auroc"]
    assert est["low"] <= est["high"] and 0 <= est["low"] and est["high"] <= 1
    # every triggered input of another class (restoration counts only those the trigger flipped)
    assert est["n"] >= arts["estimates"]["restoration_rate_trigger"]["n"] > 0
    assert est["n_units"] == 72 and 0 < est["n_truth"] < est["n_units"]


def test_robust_radius_grows_with_the_budget():
    from interplab.eval.failures import robust_radius
    from interplab.models.trojans import digits
    from interplab.zoo import trojans

    x, y = digits("score")
    curve, radius = robust_radius(
        trojans.load("twin-patch-digits").model, x[:60], y[:60], (0.1, 0.5, 1.0, 2.0), steps=5
    )
    assert curve[0].value <= curve[-1].value and radius in (0.1, 0.5, 1.0, 2.0, float("inf"))
    assert all(e.n > 0 and e.low - 1e-9 <= e.value <= e.high + 1e-9 for e in curve)


@pytest.mark.slow
def test_superposition_sweep_without_superposition_is_most_robust():
    from interplab.bench.tracks.failures_population import _superposition_point

    dedicated = _superposition_point(0.9, 20, 0)  # 20 features in 20 dims: no superposition
    packed = _superposition_point(0.9, 5, 0)
    assert dedicated["dimensions_per_feature"] > packed["dimensions_per_feature"]
    assert dedicated["robust_radius"] > packed["robust_radius"]


@pytest.mark.slow
def test_quick_failures_bench_renders_its_report_section(tmp_path):
    import dataclasses

    from interplab.bench.runner import run_bench
    from interplab.bench.spec import suite
    from interplab.report.html import render_report

    spec = suite("quick")
    spec = dataclasses.replace(spec, tracks=tuple(t for t in spec.tracks if t.track == "failures"))
    run_bench(spec, tmp_path, progress=False)
    text = render_report(tmp_path).read_text()
    assert "id='failures-track'" in text and "True vs reconstructed triggers" in text
    assert text.count("<svg") >= 6 and "<script src" not in text
