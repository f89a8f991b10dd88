import pytest

from interplab.bench import tracks
from interplab.bench.runner import run_bench
from interplab.bench.spec import parse_spec
from interplab.errors import ResultsStoreError
from interplab.report.html import render_report


@pytest.fixture
def bench_dir(monkeypatch, tmp_path):
    monkeypatch.setitem(tracks.TRACK_MODULES, "fake", "tests.bench.fake_track")
    monkeypatch.setenv("FAKE_TRACK_LOG", str(tmp_path / "log"))
    spec = parse_spec('[fake]\norganisms = ["org-a"]\nmethods = ["good", "bad", "boom"]\nablations = ["zero"]\n')
    run_bench(spec, tmp_path / "out", progress=False)
    return tmp_path / "out"


def test_report_is_self_contained_with_table_and_figures(bench_dir):
    html = render_report(bench_dir).read_text()
    assert "<table class='leaderboard' data-metric='edge_auroc'>" in html
    assert html.count("<svg") >= 4  # ROC, faithfulness, truth + 2 recovered circuits
    import re

    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?https?:|@import""", html)
    assert external == [], "the report must not load anything from the network"
    assert "Failed jobs" in html and "always fails" in html
    # best value per row highlighted: good (0.9) beats bad (0.4)
    assert "class='best'>0.900" in html


def test_report_without_results(tmp_path):
    with pytest.raises(ResultsStoreError, match="run `interplab bench"):
        render_report(tmp_path)
