"""Scoring attribution on the copyright organism (:mod:`interplab.eval.copyright`): the sequence
loss the methods attribute, recall@k, every method and baseline end to end on the zoo's tiny
organism (``smollm2-ft-tiny``), the bench track's job and its report section."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.eval import copyright as C


@pytest.fixture(scope="module")
def org():
    """The zoo's tiny copyright organism, loaded once through the track (which caches it)."""
    from interplab.bench.tracks.copyright import load

    return load("smollm2-ft-tiny")[0]


@pytest.fixture(scope="module")
def queries(org):
    return C.build_queries(org, "generated")


# --------------------------------------------------------------------------- the loss
def test_continuation_loss_ignores_prompt_and_padding_positions():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 5, generator=gen)
    labels = torch.tensor([[-100, -100, 3, 1, -100, -100], [-100, 4, -100, -100, -100, -100]])
    loss = C.continuation_loss(logits, labels)
    logp = logits.log_softmax(-1)
    want0 = -(logp[0, 2, 3] + logp[0, 3, 1]) / 2
    assert torch.allclose(loss, torch.stack([want0, -logp[1, 1, 4]]))
    # changing the logits at ignored positions changes nothing
    other = logits.clone()
    other[0, [0, 1, 4, 5]] = torch.randn(4, 5, generator=gen) * 10
    other[1, [0, 2, 3, 4, 5]] = torch.randn(5, 5, generator=gen) * 10
    assert torch.allclose(C.continuation_loss(other, labels), loss)


def test_prompt_labels_label_only_the_continuation():
    tokens, labels = C.prompt_labels([7, 8], [9, 10, 11], 8, pad=0)
    assert tokens.tolist() == [7, 8, 9, 10, 11, 0, 0, 0]
    # position t predicts token t + 1: the prompt's last position predicts the first new token
    assert labels.tolist() == [-100, 9, 10, 11, -100, -100, -100, -100]
    with pytest.raises(ShapeError):
        C.prompt_labels([1, 2], [3, 4], 3, pad=0)


def test_doc_labels_are_the_next_real_tokens():
    tokens = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    mask = tokens != 0
    assert C.doc_labels(tokens, mask).tolist() == [[6, 7, -100, -100], [9, -100, -100, -100]]


def test_doc_loss_matches_the_organisms_fine_tune_loss(org):
    t, m = org.doc_tokens[:4], org.doc_mask[:4]
    with torch.no_grad():
        ours = C.continuation_loss(org.model(t), C.doc_labels(t, m))
        theirs = org.sequence_loss(t, m)
    assert torch.allclose(ours, theirs, atol=1e-5)


# --------------------------------------------------------------------------- recall@k
def test_recall_at_k_on_a_hand_made_score_matrix():
    scores = torch.tensor(
        [
            [9.0, 8.0, 1.0, 0.5, 0.0],  # sources 0, 2: both in the top 3
            [9.0, 8.0, 7.0, 0.5, 0.0],  # sources 3, 4: neither in the top 3
            [0.0, 0.0, 0.0, 0.0, 0.0],  # all tied: each source has 3/5 of a place
        ]
    )
    got = C.recall_at_k(scores, [(0, 2), (3, 4), (1,)], k=3)
    assert torch.allclose(got, torch.tensor([1.0, 0.0, 0.6], dtype=torch.float64))
    # at k = 2, source 2 is tied with document 3 for the last place: half a place each
    tied = torch.tensor([[1.0, 5.0, 2.0, 2.0, 0.0]])
    assert float(C.recall_at_k(tied, [(2,)], k=2)[0]) == 0.5
    # more sources than k: the cut-off is |sources|
    assert float(C.recall_at_k(scores[:1], [(0, 1, 2, 3)], k=2)[0]) == 1.0
    with pytest.raises(ConfigError):
        C.recall_at_k(scores[:1], [(7,)], k=2)


def test_recall_by_kind_bootstraps_over_items():
    q = SimpleNamespace(kinds=("passage", "passage", "fact"), sources=((0,), (1,), (2,)))
    scores = torch.eye(3)
    scores[1] = torch.tensor([1.0, 0.0, 0.5])  # item 1's source ranks last of 3 at k=1
    est = C.recall_by_kind(scores, q, k=1)
    assert set(est) == {"passage", "fact"}
    assert est["passage"].value == 0.5 and est["passage"].n == 2
    assert est["passage"].low <= 0.5 <= est["passage"].high
    assert est["fact"].value == 1.0 and est["fact"].n == 1


# --------------------------------------------------------------------------- end to end
def test_queries_cover_every_planted_item(org, queries):
    assert len(queries) == len(org.corpus.items)
    assert set(queries.kinds) <= set(C.KINDS)
    assert ((queries.labels != -100).sum(1) > 0).all()  # every query attributes something
    assert queries.tokens.shape == queries.labels.shape


@pytest.mark.parametrize(
    "method", [m if m == "grad_cos" else pytest.param(m, marks=pytest.mark.slow) for m in C.METHODS]
)
def test_each_method_returns_finite_scores_for_every_pair(org, queries, method):
    run = C.run_method(org, queries, method, batch_size=16)
    assert run.scores.shape == (len(queries), len(org.corpus.docs))
    assert torch.isfinite(run.scores).all()
    assert run.scores.std() > 0  # the scores separate documents
    assert run.seconds > 0 and run.peak_mb >= 0


@pytest.mark.parametrize("name", C.BASELINES)
def test_each_baseline_returns_finite_scores_for_every_pair(org, queries, name):
    embed = None
    if name == "embedding_nn":  # a bag-of-words embedding keeps the quick test offline and fast
        vocab = sorted({w for d in org.corpus.docs for w in d.split()})
        index = {w: i for i, w in enumerate(vocab)}

        def embed(texts):
            out = torch.zeros(len(texts), len(vocab))
            for r, t in enumerate(texts):
                for w in t.split():
                    if w in index:
                        out[r, index[w]] += 1
            return out

    run = C.run_baseline(org, queries, name, embed=embed)
    assert run.scores.shape == (len(queries), len(org.corpus.docs))
    assert torch.isfinite(run.scores).all()
    if name == "loss_membership":  # query-independent by construction
        assert (run.scores == run.scores[:1]).all()


@pytest.mark.slow
def test_gradient_scores_of_a_query_are_consistent_across_methods(org, queries):
    """grad_cos and tracin at one checkpoint share the numerator's sign: a document that lowers
    the query's loss has positive scores under both (first-order logic, not a tuned threshold)."""
    cos = C.run_method(org, queries, "grad_cos", batch_size=16).scores
    dot = C.run_method(org, queries, "tracin", batch_size=16, checkpoints=1).scores
    assert (torch.sign(cos) == torch.sign(dot)).double().mean() > 0.99


def test_summary_and_table(org, queries):
    run = C.run_baseline(org, queries, "bm25")
    s = C.summary(run, queries)
    assert set(s["recall"]) == set(queries.kinds)
    assert all(0 <= e["value"] <= 1 and e["n"] >= 1 for e in s["recall"].values())
    assert "bm25" in C.table({"bm25": s})
    assert math.isfinite(s["seconds_per_query"])


def test_the_residual_scorer_gives_the_whole_models_loss(org, queries):
    """The adapted blocks run from the frozen residual give the same sequence losses as the whole
    model on tokens (what makes the per-example gradients cheaper)."""
    (xr, _), (xt, _) = C.attribution_data(org, queries)
    assert C.uses_residual(org)
    length = xr.shape[1]
    whole = C.SequenceScorer(org.model)
    packed = C.pack(org.doc_tokens, C.doc_labels(org.doc_tokens, org.doc_mask), length)
    q_packed = C.pack(queries.tokens, queries.labels, length)
    with torch.no_grad():
        assert torch.allclose(C.scorer(org)(xr), whole(packed), atol=1e-5)
        assert torch.allclose(C.scorer(org)(xt), whole(q_packed), atol=1e-5)


def test_checkpoints_are_evenly_spaced_and_end_at_the_final_weights():
    o = SimpleNamespace(checkpoints=[{"a": torch.tensor(i)} for i in range(40)])
    assert [int(d["lm.a"]) for d in C.scorer_checkpoints(o, 4)] == [10, 20, 29, 39]
    assert [int(d["lm.a"]) for d in C.scorer_checkpoints(o, 1)] == [39]
    assert len(C.scorer_checkpoints(o, None)) == 40


# --------------------------------------------------------------------------- track and report
@pytest.mark.parametrize("method", ["bm25", pytest.param("grad_cos", marks=pytest.mark.slow)])
def test_the_tracks_job_returns_its_rows(method):
    from interplab.bench.track import Job
    from interplab.bench.tracks import copyright as T

    out = T.run_job(Job("copyright", "smollm2-ft-tiny", method, None))
    rows = {r.metric: r for r in out.rows}
    assert set(T.RECALL) | {"seconds_per_query", "n_queries", "n_docs"} <= set(rows)
    present = [m for m in T.RECALL if rows[m].value is not None]
    assert present and all(0 <= rows[m].value <= 1 for m in present)
    assert all(rows[m].reason for m in T.RECALL if rows[m].value is None)
    assert rows["seconds_per_query"].value > 0
    assert set(out.artifacts["estimates"]) == set(present) | {"lds"}
    assert -1 <= rows["lds"].value <= 1 and out.artifacts["estimates"]["lds"]["n_subsets"] == 6
    assert T.TRACK.kind("bm25") == "baseline" and T.TRACK.kind("trak") == "method"
    assert T.TRACK.kind("ekfac_lora") == "method"
    from interplab.methods import registry  # every method is a registry name of its families

    registered = {n for f in T.TRACK.families for n in registry.names(f)}
    assert set(T.TRACK.method_names()) <= registered
    assert "quick" not in T.SUITES  # the full suite only: the quick one never builds SmolLM2


def test_lds_uses_real_subset_retrainings_and_is_oriented(org, queries):
    """The subset retrainings are distinct halves, trained (cached) by the recipe on their
    documents only, and leave the organism's adapters as they were; a score that predicts each
    retraining's output exactly (the least-squares fit of the outputs on the subset masks)
    gets LDS 1, its negation -1."""
    from interplab.models import lora

    before = lora.adapter_state(org.model)
    masks, adapters = org.subset_runs()
    n = len(org.corpus.docs)
    assert masks.shape == (6, n) and (masks.sum(1) == round(n / 2)).all()
    assert len({tuple(m.tolist()) for m in masks}) == 6
    after = lora.adapter_state(org.model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    for i, m in enumerate(masks):  # each run took the steps its half needs, no more
        done = json.loads((org.directory / "lds" / f"f0.5-s{i}" / "done.json").read_text())
        assert done["steps"] == math.ceil(int(m.sum()) / org.recipe.batch_size) * org.recipe.epochs
    outputs = C.subset_outputs(org, queries, adapters)
    assert outputs.shape == (6, len(queries)) and (outputs.std(0) > 0).all()
    w = (torch.linalg.pinv(masks.double()) @ outputs.double()).T  # [queries, docs]
    assert C.lds(w, masks, outputs).value > 0.99
    assert C.lds(-w, masks, outputs).value < -0.99


def test_the_report_section_shows_methods_baselines_and_a_verdict():
    from interplab.report import copyright as R

    jobs, rows, arts = [], [], {}
    values = {"trak": (0.9, 0.2, 0.4), "bm25": (1.0, 0.3, 0.1), "random": (0.05, 0.04, 0.05)}
    for method, vals in values.items():
        key = f"copyright/smollm2-ft/{method}/-/seed0"
        jobs.append(
            SimpleNamespace(
                key=key, track="copyright", organism="smollm2-ft", method=method, status="done"
            )
        )
        est = {}
        lds = {"trak": 0.3, "bm25": 0.7, "random": 0.0}[method]
        for metric, v in zip((*R.METRICS, "lds"), (*vals, lds)):
            rows.append({"organism": "smollm2-ft", "method": method, "metric": metric, "value": v})
            est[metric] = {"value": v, "low": v - 0.1, "high": v + 0.1, "n": 4}
        rows.append(
            {
                "organism": "smollm2-ft",
                "method": method,
                "metric": "seconds_per_query",
                "value": 2.0,
            }
        )
        arts[key] = {"estimates": est}
    store = SimpleNamespace(jobs=lambda: jobs, rows=lambda: rows, artifacts=lambda: arts)
    page = R.section(store)
    assert "trak" in page and "(baseline)" in page and "n=4" in page
    assert "passages (n=4): the bm25 baseline wins" in page
    assert "facts (n=4): the bm25 baseline wins" in page
    assert "styles (n=4): trak leads" in page
    assert "LDS (n=4): the bm25 baseline wins (0.70 against trak&#x27;s 0.30)." in page
    assert "<th>LDS</th>" in page
    assert R.section(SimpleNamespace(jobs=lambda: [], rows=lambda: [], artifacts=lambda: {})) == ""


def test_lora_statistics_give_the_exact_per_example_gradients_and_a_valid_ekfac(org, queries):
    """The gradients built from each adapter map's captured activations and output gradients
    (batched backward, no vmap) equal the per-example gradients autograd computes by vmap; the
    EK-FAC built on them is symmetric positive definite and tends to I / damping."""
    from interplab.methods.data_attribution.gradients import loss_grads
    from interplab.models.module_classifier import evaluating, from_module

    (xr, yr), _ = C.attribution_data(org, queries)
    x, y = xr[:6], yr[:6]
    module = C.scorer(org)
    with evaluating(module):
        model = from_module(module, x, loss=C.scorer_loss)
        want = loss_grads(model.spec, model.theta, x, y)
        got, blocks, a_cov, s_cov = C.lora_statistics(
            module, model.spec, model.theta, x, y, batch_size=4
        )
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    p = C.lora_ekfac(blocks, got, a_cov, s_cov, damping=1e-3)
    v = torch.randn(3, got.shape[1], generator=torch.Generator().manual_seed(0))
    pv = p(v)
    assert torch.allclose(v @ pv.T, (v @ pv.T).T, atol=1e-4 * float((v @ pv.T).abs().max()))
    assert (torch.linalg.eigvalsh(v @ pv.T) > 0).all()
    big = C.lora_ekfac(blocks, got, a_cov, s_cov, damping=1e8)
    assert torch.allclose(big(v) * 1e8, v, rtol=1e-3, atol=1e-5)
