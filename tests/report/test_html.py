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
    spec = parse_spec(
        '[fake]\norganisms = ["org-a"]\nmethods = ["good", "bad", "boom"]\nablations = ["zero"]\n'
    )
    run_bench(spec, tmp_path / "out", progress=False)
    return tmp_path / "out"


def test_report_is_self_contained_with_table_and_figures(bench_dir):
    html = render_report(bench_dir).read_text()
    assert "<table class='leaderboard' data-metric='edge_auroc'>" in html
    assert html.count("<svg") >= 4  # ROC, faithfulness, truth + 2 recovered circuits
    import re

    external = re.findall(
        r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?https?:|@import""", html
    )
    assert external == [], "the report must not load anything from the network"
    assert "Failed jobs" in html and "always fails" in html
    # best value per row highlighted: good (0.9) beats bad (0.4)
    assert "class='best'>0.900" in html


def test_report_without_results(tmp_path):
    with pytest.raises(ResultsStoreError, match="run `interplab bench"):
        render_report(tmp_path)


# ---- baselines are shown apart and never "best" ------------------------------------------
import re  # noqa: E402

from interplab.report._page import baseline_methods, kind  # noqa: E402
from interplab.report.leaderboard import leaderboard_section as _leaderboard  # noqa: E402


def leaderboard_section(rows, tracks=("circuits",)):
    """The leaderboard of circuits-track rows (baselines: the registry's, through the track)."""
    return _leaderboard(rows, tracks=tracks)


def _rows(metric, values, organism="org", ablation="zero"):
    return [
        {
            "organism": organism,
            "ablation": ablation,
            "method": m,
            "metric": metric,
            "value": v,
            "seed": 0,
            "reason": None if v is not None else "undefined",
        }
        for m, v in values.items()
    ]


def _cells(html, metric):
    table = re.search(rf"data-metric='{metric}'>(.*?)</table>", html, re.S)[1]
    return dict(re.findall(r"<td class='([^']*)'>([^<]*)</td>", table))  # {class: text}; one row


def test_a_baseline_that_scores_highest_is_not_best_and_is_named_in_a_note():
    html = leaderboard_section(_rows("node_auroc", {"acdc": 0.5, "eap": 0.6, "random": 0.7}))
    cells = {text: cls for cls, text in _cells(html, "node_auroc").items()}
    assert cells["0.600"] == "best" and cells["0.700"] == "baseline above" and cells["0.500"] == ""
    assert "baseline <b>random</b> (0.700) scores better than every method on node_auroc" in html
    assert "best method: eap, 0.600" in html
    # baselines come after the methods and are labelled
    header = re.search(r"data-metric='node_auroc'><tr>(.*?)</tr>", html)[1]
    assert (
        header.index(">eap<") < header.index("random")
        and "<span class='tag'>baseline</span>" in header
    )


def test_no_note_when_the_methods_beat_the_baselines_and_lower_is_better_counts():
    html = leaderboard_section(
        _rows("edge_auroc", {"acdc": 0.9, "random": 0.5, "weight_norm": 0.6})
    )
    assert "baseline-note" not in html and "class='best'>0.900" in html
    html = leaderboard_section(_rows("cmd", {"acdc": 0.3, "eap": 0.2, "weight_norm": 0.1}))
    assert "class='best'>0.200" in html and "baseline <b>weight_norm</b> (0.100)" in html


def test_values_that_are_none_or_nan_are_never_best():
    rows = _rows(
        "cpr",
        {"acdc": None, "eap": 0.4, "eap_ig": float("nan"), "patch_edges": 0.3, "random": None},
    )
    html = leaderboard_section(rows)
    assert html.count("class='best'") == 1 and "class='best'>0.400" in html
    html = leaderboard_section(_rows("cpr", {"acdc": None, "eap": 0.4, "random": None}))
    assert "class='best'" not in html  # one value: nothing to compare it with
    html = leaderboard_section(_rows("cpr", {"acdc": None, "random": 0.3}))
    assert "class='best'" not in html and "baseline-note" not in html  # nothing to beat


def test_a_self_check_is_labelled_and_never_best():
    html = leaderboard_section(
        _rows("selfcheck_iia", {"ground_truth": 1.0, "circuit_eap": 0.7}), tracks=("causal",)
    )
    assert "<span class='tag'>self-check</span>" in html and "class='best'>0.700" in html
    assert "self-check <b>ground_truth</b> (1.000) scores better" in html  # said, not hidden


def test_chosen_hyperparameters_are_not_ranked():
    html = leaderboard_section(
        _rows("k_chosen", {"sae-topk": 4.0, "transcoder": 2.0}), tracks=("features",)
    )
    assert "class='best'" not in html


def test_baseline_names_come_from_the_registry_through_the_tracks():
    from interplab.bench.tracks import TRACKS
    from interplab.methods import registry

    circuits = set(TRACKS["circuits"].method_names())
    want = frozenset(registry.names("circuits", kind="baseline")) & circuits
    assert want and baseline_methods(["circuits"]) == want
    assert baseline_methods(["circuits"], ["eap", "random"]) == {"random"}
    # the self-check is a registry baseline that the causal track labels apart
    assert kind("ground_truth", ["causal"]) == "self-check"
    assert {"misaligned", "shuffled", "ground_truth"} <= baseline_methods(["causal"])
    assert baseline_methods(["no-such-track"], ["random", "oracle:x"]) == {"oracle:x"}


def test_feature_section_shows_each_sweep_and_labels_the_baseline():
    from interplab.report.features import feature_metrics_plot, sweep_table

    sweep = {
        "field": "k",
        "values": [1, 2, 4],
        "variance_explained": [0.5, 0.8, 0.82],
        "l0": [1.0, 2.0, 3.9],
        "chosen": 2,
        "rule": "first setting whose next rung adds less than min_gain",
    }
    html = sweep_table({"sae-topk": sweep})
    assert "<span class='best'>2: VE 0.800, L0 2.00</span>" in html and "<td>2</td>" in html
    assert "4: VE 0.820" in html and sweep_table({}) == ""
    rows = [
        {"organism": "o", "method": m, "metric": "mmcs", "value": v}
        for m, v in (("random", 0.4), ("sae-topk", 0.9))
    ]
    svg = feature_metrics_plot(rows, baselines=("random",))
    assert "(baseline)" in svg and svg.index("sae-topk") < svg.index("(baseline)")
