"""The viewer page is self-contained: no external URL, data that cannot break out of its script."""

import json
import re

from tests.report.viewer_cases import sample_page

#: The SVG namespace is an identifier passed to createElementNS, never fetched.
SVG_NS = "http://www.w3.org/2000/svg"


def test_page_names_no_external_url():
    html = sample_page()
    urls = [
        u for u in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s'\"<>]*", html) if u != SVG_NS
    ]
    assert urls == []
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)


def test_embedded_data_round_trips_and_cannot_close_the_script():
    html = sample_page()
    blob = re.search(r"<script type='application/json' id='viewer-data'>(.*?)</script>", html, re.S)
    data = json.loads(blob.group(1))
    assert "</script>" in data["attention"]["tokens"]  # the token survives, escaped
    assert "</script>" not in blob.group(1)
    assert {n["id"] for n in data["circuit"]["nodes"]} == {"tok_embed", "L0.H1", "L1.MLP", "logits"}
