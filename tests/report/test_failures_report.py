"""The failures report section renders true vs reconstructed triggers as inline SVG."""

from __future__ import annotations

from interplab.bench.tracks import Job, get_track
from interplab.report.failures import pixels_svg, trigger_card


def test_pixels_svg_is_self_contained():
    svg = pixels_svg([0.0, 1.0] * 32, title="t")
    assert svg.startswith("<svg") and svg.count("<rect") == 65 and "rgb(0,0,0)" in svg


def test_trigger_card_from_a_track_artifact():
    out = get_track("failures").run(Job("failures", "trojan-patch-digits", "random", None, 0))
    card = trigger_card(out.artifacts["trigger"], "trojan-patch-digits")
    assert card.count("<svg") == 3 and "true trigger" in card
