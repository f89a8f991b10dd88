"""The ``trace-data`` page renders in a real headless Chromium: no console errors, every
training example drawn as an 8×8 image with a non-zero size."""

import json

import pytest
from typer.testing import CliRunner

from interplab.cli.main import app
from tests.data_attribution_helpers import TINY, organism_and_truth
from tests.report.browser import Browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_trace_page_renders_in_chromium(tmp_path):
    organism_and_truth()
    page = tmp_path / "trace.html"
    res = CliRunner().invoke(
        app, ["trace-data", TINY, "--method", "ekfac", "-k", "5", "--html", str(page)]
    )
    assert res.exit_code == 0, res.output
    browser = Browser(tmp_path / "profile")
    try:
        browser.load(page.resolve().as_uri())
        stats = json.loads(
            browser.evaluate("""JSON.stringify({
            cards: document.querySelectorAll('.card').length,
            drawn: [...document.querySelectorAll('.card svg')].filter(
                s => s.getBoundingClientRect().width > 30 && s.getBoundingClientRect().height > 30).length,
            checks: document.querySelectorAll('table tr').length})""")
        )
        assert stats["cards"] == 5 and stats["drawn"] == 5 and stats["checks"] >= 3
        assert browser.errors() == []
    finally:
        browser.close()
