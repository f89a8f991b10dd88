"""The bench report renders in a real headless Chromium: no console errors, the leaderboard
table and figures are present and laid out (non-zero size)."""

import pytest

from interplab.bench import tracks
from interplab.bench.runner import run_bench
from interplab.bench.spec import parse_spec
from interplab.report.html import render_report
from tests.report.browser import Browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_report_renders_in_chromium(monkeypatch, tmp_path):
    monkeypatch.setitem(tracks.TRACK_MODULES, "fake", "tests.bench.fake_track")
    monkeypatch.setenv("FAKE_TRACK_LOG", str(tmp_path / "log"))
    spec = parse_spec('[fake]\norganisms = ["org-a", "org-b"]\nmethods = ["good", "bad"]\n')
    run_bench(spec, tmp_path / "out", progress=False)
    page = render_report(tmp_path / "out")
    browser = Browser(tmp_path / "profile")
    try:
        browser.load(page.resolve().as_uri())
        # the page opens on the one-screen summary; the long tables and figures are collapsed
        assert browser.evaluate("document.querySelectorAll('details[open]').length") == 0
        assert browser.evaluate("document.querySelectorAll('details').length") >= 3
        browser.evaluate("document.querySelectorAll('details').forEach(d => d.open = true); 1")
        stats = browser.evaluate("""JSON.stringify({
            tables: document.querySelectorAll('table.leaderboard').length,
            rows: document.querySelectorAll('table.leaderboard tr').length,
            figures: [...document.querySelectorAll('.figure svg')].filter(
                s => s.getBoundingClientRect().width > 50 && s.getBoundingClientRect().height > 50).length,
            title: document.title})""")
        import json

        stats = json.loads(stats)
        assert stats["tables"] >= 1 and stats["rows"] >= 3
        assert stats["figures"] >= 3
        assert stats["title"].startswith("interplab bench")
        assert browser.errors() == []
    finally:
        browser.close()
