"""The failures track runs its quick jobs and reports the method beside its controls."""

from __future__ import annotations

import pytest

from interplab.bench.tracks import Job, track
from interplab.errors import UnknownNameError


def _rows(organism, method):
    out = track("failures").run_job(Job("failures", organism, method, None, 0))
    return {r["metric"]: r["value"] for r in out.rows}, out.artifacts


def test_track_interface_and_baselines_named():
    mod = track("failures")
    assert set(mod.BASELINES) <= set(mod.METHODS)
    assert all(b == "random" or b.startswith("baseline:") for b in mod.BASELINES)
    with pytest.raises(UnknownNameError):
        mod.run_job(Job("failures", "nope", "pgd", None, 0))


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


def test_feature_synthesis_rows():
    rows, arts = _rows("trojan-patch-digits", "feature_synthesis")
    assert 0 <= rows["trigger_iou"] <= 1 and arts["trigger"]["method"] == "feature_synthesis"


def test_robust_radius_grows_with_the_budget():
    from interplab.eval.failures import robust_radius
    from interplab.models.trojans import digits
    from interplab.zoo import trojans

    x, y = digits("score")
    curve, radius = robust_radius(trojans.load("twin-patch-digits").model, x[:60], y[:60],
                                  (0.1, 0.5, 1.0, 2.0), steps=5)
    assert curve[0].value <= curve[-1].value and radius in (0.1, 0.5, 1.0, 2.0, float("inf"))
    assert all(e.n > 0 and e.low - 1e-9 <= e.value <= e.high + 1e-9 for e in curve)


@pytest.mark.slow
def test_superposition_sweep_without_superposition_is_most_robust():
    from interplab.bench.tracks.failures import _superposition_point

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
