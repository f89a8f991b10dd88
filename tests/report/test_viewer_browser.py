"""The viewer works in a real headless Chromium from file://: hovering a token moves the
attention shading, the threshold slider hides edges, the search filters features, no console
errors; screenshots at a laptop size are kept in the test's tmp directory."""

import base64
import json

import pytest

from tests.report.browser import Browser
from tests.report.viewer_cases import sample_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _hover(browser, selector: str) -> None:
    box = json.loads(
        browser.evaluate(
            f"JSON.stringify(document.querySelector({json.dumps(selector)}).getBoundingClientRect())"
        )
    )
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)


def test_viewer_is_interactive_in_chromium(tmp_path):
    page = tmp_path / "viewer.html"
    page.write_text(sample_page())
    browser = Browser(tmp_path / "profile")
    try:
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=1366,
            height=768,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.load(page.resolve().as_uri())

        def state():
            return json.loads(
                browser.evaluate("""JSON.stringify({
            status: document.getElementById('attn-status').textContent,
            query: [...document.querySelectorAll('#attn-tokens .tok')].findIndex(s => s.classList.contains('query')),
            weights: [...document.querySelectorAll('#attn-tokens .tok')].map(s => s.dataset.weight),
            shown: [...document.querySelectorAll('#circuit-svg line.edge')].filter(l => l.style.display !== 'none').length,
            count: document.getElementById('circuit-count').textContent,
            features: [...document.querySelectorAll('.feature')].filter(d => d.style.display !== 'none').length,
            overflow: document.documentElement.scrollWidth > window.innerWidth})""")
            )

        before = state()
        assert before["query"] == 6 and before["shown"] == 6 and before["features"] == 3
        assert not before["overflow"]
        _hover(browser, "#attn-tokens .tok:nth-child(3)")
        hovered = state()
        assert hovered["query"] == 2 and hovered["status"] != before["status"]
        assert hovered["weights"][3:] == ["0.0000"] * 4  # no attention to later tokens
        browser.evaluate(
            "const s = document.getElementById('circuit-threshold'); s.value = 600;"
            "s.dispatchEvent(new Event('input'))"
        )
        moved = state()
        assert 0 < moved["shown"] < before["shown"] and moved["count"] != before["count"]
        browser.evaluate(
            "const q = document.getElementById('feature-search'); q.value = 'return';"
            "q.dispatchEvent(new Event('input'))"
        )
        assert state()["features"] == 1
        shot = browser.call("Page.captureScreenshot", format="png")
        (tmp_path / "viewer-1366x768.png").write_bytes(base64.b64decode(shot["data"]))
        assert browser.errors() == []
    finally:
        browser.close()
