"""The one-screen summary, the bootstrap helpers and the zoo ranking section."""

from __future__ import annotations

import pytest

from interplab.bench.store import ResultsStore
from interplab.bench.tracks import Job
from interplab.eval.stats import bootstrap_interval as bootstrap_mean
from interplab.eval.stats import bootstrap_ranks
from interplab.report.html import build_html
from interplab.report.summary import track_summary
from interplab.report.zoo import ranking


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    small = bootstrap_mean([0.0, 1.0] * 5)
    large = bootstrap_mean([0.0, 1.0] * 500)
    assert small.lo < 0.5 < small.hi and large.lo < 0.5 < large.hi
    assert (large.hi - large.lo) < (small.hi - small.lo)
    assert bootstrap_mean([]).n == 0


def test_ranks_separate_clear_winners_and_tie_the_indistinguishable():
    import random

    rng = random.Random(0)
    noise = [rng.random() for _ in range(60)]
    a = [0.5 + 0.1 * rng.random() for _ in range(60)]
    ranks = bootstrap_ranks(
        {"best": [0.9 + 0.01 * x for x in noise], "a": a, "b": a[::-1]}
    )  # the same mean: their order flips between resamples
    assert ranks["best"].rank == 1 and (ranks["best"].lo, ranks["best"].hi) == (1, 1)
    assert ranks["a"].lo == 2 and ranks["a"].hi == 3 and ranks["b"].lo == 2 and ranks["b"].hi == 3


def _store(tmp_path, track="zoo", organisms=8):
    store = ResultsStore(tmp_path / "results.sqlite")
    for o in range(organisms):
        org = f"generated-0-{o}"
        for method, value in (
            ("eap", 0.8 + 0.01 * o),
            ("acdc", 0.95),
            ("random", 0.5 + 0.02 * (o % 3)),
        ):
            for ablation in ("zero", "resample"):
                job = Job(track, org, method, ablation, 0)
                store.record(
                    job,
                    [
                        {
                            "organism": org,
                            "method": method,
                            "ablation": ablation,
                            "seed": 0,
                            "seconds": 0.1,
                            "metric": "edge_auroc",
                            "value": value,
                        }
                    ],
                    {
                        "organism_shape": {
                            "depth": 1 + o % 2,
                            "width": 1,
                            "n_ops": 2,
                            "constructs": ["map"] + (["aggregate"] if o % 2 else []),
                        }
                    },
                    0.1,
                )
    return store


def test_summary_ranks_methods_not_baselines_and_judges_against_random(tmp_path):
    with _store(tmp_path) as store:
        info = track_summary(store)["zoo"]
        assert info["metric"] == "edge_auroc"
        rows = info["methods"]
        assert rows["acdc"]["rank"] == "1" and rows["eap"]["rank"].startswith("2")
        assert rows["random"]["rank"] is None and rows["random"]["verdict"] == "baseline"
        assert rows["acdc"]["verdict"].startswith("beats random")
        assert rows["acdc"]["score"].n == 16


def test_zoo_ranking_and_report_page(tmp_path):
    with _store(tmp_path) as store:
        r = ranking(store)
        assert r.organisms == 8 and r.methods == ("acdc", "eap") and r.baselines == ("random",)
        assert (
            set(r.by_shape["depth"]) == {1, 2}
            and r.by_shape["construct"]["aggregate"]["eap"].n == 4
        )
        html = build_html(store, "t")
    head = html.index("<h2>Summary</h2>")
    assert head < html.index("Zoo: circuit methods over 8 generated organisms")
    assert "<details><summary>Leaderboard" in html
    assert "beats random" in html


def test_no_zoo_results_no_zoo_section(tmp_path):
    with _store(tmp_path, track="circuits", organisms=2) as store:
        assert ranking(store) is None
        assert "Zoo:" not in build_html(store, "t")


def test_summary_says_when_a_method_loses_to_a_non_random_baseline(tmp_path):
    with _store(tmp_path) as store:
        for o in range(8):
            org = f"generated-0-{o}"
            for ablation in ("zero", "resample"):
                job = Job("zoo", org, "activation_norm", ablation, 0)
                store.record(
                    job,
                    [
                        {
                            "organism": org,
                            "method": "activation_norm",
                            "ablation": ablation,
                            "seed": 0,
                            "seconds": 0.1,
                            "metric": "edge_auroc",
                            "value": 0.9,
                        }
                    ],
                    {},
                    0.1,
                )
        info = track_summary(store)["zoo"]
    assert info["best_baseline"] == "activation_norm"
    assert info["methods"]["eap"]["vs_best_baseline"].startswith("loses to activation_norm")
    assert info["methods"]["acdc"]["vs_best_baseline"].startswith("beats activation_norm")
    assert info["methods"]["activation_norm"]["rank"] is None


def test_one_cell_gets_no_interval_and_no_verdict():
    from interplab.eval.stats import bootstrap_interval as bootstrap_mean
    from interplab.report.summary import _verdict

    assert bootstrap_mean([0.9]).fmt() == "0.90 (one cell, no interval)"
    per = {"m": {("o", None, 0): 0.9}, "random": {("o", None, 0): 0.1}}
    v = _verdict(per, "m", 1.0)
    assert v.startswith("above random on one cell") and "beats" not in v


def test_zoo_ranking_keeps_siit_twins_apart_and_shows_them_beside_their_siblings(tmp_path):
    from interplab.report.zoo import section

    with _store(tmp_path) as store:
        for method, value in (("eap", 0.1), ("acdc", 0.2), ("random", 0.5)):
            job = Job("zoo", "siit-generated-0-1", method, "zero", 0)
            store.record(
                job,
                [
                    {
                        "organism": job.organism,
                        "method": method,
                        "ablation": "zero",
                        "seed": 0,
                        "seconds": 0.1,
                        "metric": "edge_auroc",
                        "value": value,
                    }
                ],
                {
                    "organism_shape": {
                        "depth": 1,
                        "width": 1,
                        "n_ops": 2,
                        "constructs": ["map"],
                        "kind": "siit",
                        "program": "generated-0-1",
                    }
                },
                0.1,
            )
        compiled = ranking(store)
        assert compiled.organisms == 8 and compiled.score["eap"].mean > 0.8  # the twin is not in it
        twins = ranking(store, kind="siit")
        assert twins.organisms == 1 and twins.score["eap"].mean == pytest.approx(0.1)
        html = section(store)
    assert "SIIT-trained twins beside their compiled siblings" in html
    table = html[html.index("SIIT-trained twins beside") :]
    assert "0.10 (one cell, no interval) (n=1)" in table  # eap on the twin, per-ablation truth
    assert "baseline random (0.500) beats every method" in table  # margin 0.3 over acdc
    assert "margin 0.300, n=1" in table


def _record(store, track, organism, method, value, metric="edge_auroc", ablation="zero"):
    job = Job(track, organism, method, ablation, 0)
    store.record(
        job,
        [
            {
                "organism": organism,
                "method": method,
                "ablation": ablation,
                "seed": 0,
                "seconds": 0.1,
                "metric": metric,
                "value": value,
            }
        ],
        {},
        0.1,
    )


def test_ranks_use_every_organism_a_method_applies_to(tmp_path):
    """`narrow` ran on org-0 only; `a` and `b` on all three. On the one cell all share, a beats b;
    on the two others b beats a by far. Ranking on the shared cell alone would put a over b."""
    with ResultsStore(tmp_path / "results.sqlite") as store:
        for o, (a, b) in enumerate([(0.9, 0.8), (0.5, 0.95), (0.4, 0.9)]):
            _record(store, "zoo", f"org-{o}", "a", a)
            _record(store, "zoo", f"org-{o}", "b", b)
            _record(store, "zoo", f"org-{o}", "random", 0.5)
        _record(store, "zoo", "org-0", "narrow", 0.85)
        rows = track_summary(store)["zoo"]["methods"]
    rank = {m: int(rows[m]["rank"].split(" ")[0]) for m in ("a", "b", "narrow")}
    assert rank["b"] < rank["a"], rows
    assert rows["narrow"]["rank"] is not None and rows["narrow"]["score"].n == 1
    assert rows["b"]["score"].n == 3 and rows["random"]["rank"] is None


def test_cell_ranks_count_ties_half_and_skip_lonely_cells():
    from interplab.report.summary import cell_ranks

    per = {"x": {1: 0.5, 2: 0.7}, "y": {1: 0.5, 2: 0.2}, "alone": {3: 0.9}}
    ranks = cell_ranks(per)
    assert "alone" not in ranks, "no cell shared with another method: nothing to rank on"
    assert ranks["x"].rank == 1 and ranks["y"].rank == 2
    lower = cell_ranks({"x": {1: 0.1}, "y": {1: 0.3}}, higher_is_better=False)
    assert lower["x"].rank == 1


def test_oracles_are_shown_apart_and_never_ranked_or_the_bar(tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        for o in range(4):
            for method, value in (
                ("a", 0.8),
                ("b", 0.6),
                ("random", 0.3),
                ("oracle:exact", 1.0),
                ("activation_norm", 0.5),
            ):
                _record(store, "zoo", f"org-{o}", method, value + 0.01 * o)
        info = track_summary(store)["zoo"]
        html = build_html(store, "t")
    oracle = info["methods"]["oracle:exact"]
    assert (
        oracle["kind"] == "oracle" and oracle["rank"] is None and "not ranked" in oracle["verdict"]
    )
    assert info["methods"]["a"]["rank"] == "1", "the oracle's 1.0 does not push a method down"
    assert info["best_baseline"] == "activation_norm", "an oracle is never the bar to clear"
    assert "oracle:exact" in html and "scores better than every method" not in html


def test_headline_line_says_whether_the_best_method_clears_random(tmp_path):
    from interplab.report.summary import MARGIN, section

    with ResultsStore(tmp_path / "results.sqlite") as store:
        for o in range(3):
            _record(store, "zoo", f"org-{o}", "a", 0.60 + 0.01 * o)
            _record(store, "zoo", f"org-{o}", "b", 0.55)
            _record(store, "zoo", f"org-{o}", "random", 0.5)
        close = track_summary(store)["zoo"]
        _record(store, "circuits", "org-x", "a", 0.9)
        _record(store, "circuits", "org-y", "a", 0.95)
        _record(store, "circuits", "org-x", "random", 0.5)
        _record(store, "circuits", "org-y", "random", 0.6)
        far = track_summary(store)["circuits"]
        html = section(store)
    assert close["separates"] is False
    assert close["separation"].startswith(f"no method beats random by ≥ {MARGIN:g} on edge_auroc")
    assert "the best, a, is +0.11" in close["separation"]
    assert far["separates"] is True and far["separation"].startswith(
        "a beats random by ≥ 0.2 on edge_auroc"
    )
    assert "+0.38" in far["separation"]
    assert close["separation"] in html and far["separation"] in html


def test_each_track_has_a_headline_and_rationales_leads_with_top_k_recall():
    from interplab.bench.tracks import BUILTIN, TRACKS
    from interplab.report.summary import headline

    for name in BUILTIN:  # a track without a headline writes its own summary card
        t = TRACKS[name]
        assert t.summary_card is not None or any(m.headline for m in t.metrics), name
    assert [m.name for m in TRACKS["rationales"].metrics if m.headline] == ["top_k_recall"]
    metrics = {"claim_accuracy", "counterfactual_validity", "top_k_recall", "deletion_auc"}
    assert headline(metrics, "rationales") == "top_k_recall"
    assert headline({"claim_accuracy"}, "rationales") is None, "never a metric that cannot separate"
    assert headline({"zzz", "aaa"}, "a-track-not-listed") == "aaa"


def test_a_tracks_only_method_ranks_first():
    from interplab.report.summary import cell_ranks

    assert cell_ranks({"only": {1: 0.4, 2: 0.5}})["only"].fmt() == "1"
