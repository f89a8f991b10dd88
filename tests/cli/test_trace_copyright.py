"""``interplab trace-data smollm2-ft[-tiny] --prompt``: the generated text, the top fine-tuning
documents by an attribution method beside an overlap baseline, the planted truth when the prompt
is a planted one, JSON and a self-contained page; bad input exits 2 with one line."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
import torch
from typer.testing import CliRunner

from interplab.cli.main import app
from interplab.cli.trace_data_cmd import continuation_query
from interplab.report.copyright_page import shared_spans

TINY = "smollm2-ft-tiny"


def _run(*args: str):
    return CliRunner().invoke(app, ["trace-data", *args])


@pytest.fixture(scope="module")
def org():
    from interplab.zoo.copyright import load

    return load(TINY)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def _contains_run(haystack: list[str], run: list[str]) -> bool:
    return any(haystack[i : i + len(run)] == run for i in range(len(haystack) - len(run) + 1))


def test_planted_prompt_prints_generation_both_lists_and_the_truth(org, tmp_path):
    item = next(i for i in org.corpus.items if i.kind == "passage")
    out = tmp_path / "t.json"
    res = _run(TINY, "--prompt", item.prompt, "--k", "4", "--json", str(out), "--no-progress")
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["generated"] == org.generate(item.prompt, max_new_tokens=32)
    assert repr(data["generated"]) in res.output
    assert data["prompt"] == item.prompt and data["method"] == "trak" and data["k"] == 4
    for key in ("top", "baseline_top"):
        rows = data[key]
        assert len(rows) == 4 and len({r["doc"] for r in rows}) == 4
        assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
        for r in rows:
            assert set(r) >= {"doc", "score", "kind", "spans"}
            assert r["kind"] == org.corpus.kinds[r["doc"]]
    # one printed line per document of each list
    assert len(re.findall(r"^\s+#\d+\s+doc\[", res.output, re.M)) == 8
    planted = data["planted"]
    assert planted["key"] == item.key and planted["kind"] == item.kind
    assert planted["sources"] == list(item.sources)
    shown_m = {r["doc"] for r in data["top"]}
    shown_b = {r["doc"] for r in data["baseline_top"]}
    assert planted["found_by_method"] == [s for s in item.sources if s in shown_m]
    assert planted["found_by_baseline"] == [s for s in item.sources if s in shown_b]
    assert f"{len(planted['found_by_baseline'])}/{len(item.sources)}" in res.output


def test_spans_are_word_runs_the_document_shares_with_the_output(org, tmp_path):
    item = next(i for i in org.corpus.items if i.kind == "passage")
    res = _run(
        TINY,
        "-p",
        item.prompt,
        "-k",
        "5",
        "-m",
        "grad_cos",
        "--baseline",
        "ngram_overlap",
        "--json",
        "-",
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)  # --json -: stdout is the JSON alone
    generated = _words(data["generated"])
    n_spans = 0
    for r in data["top"] + data["baseline_top"]:
        doc = org.corpus.docs[r["doc"]]
        for start, end in r["spans"]:
            run = _words(doc[start:end])
            assert len(run) >= 3 and _contains_run(generated, run), (doc[start:end], generated)
            n_spans += 1
    # every document whose words share a 3-gram with the output has a span (none is missed)
    for r in data["top"] + data["baseline_top"]:
        dw = _words(org.corpus.docs[r["doc"]])
        shares = any(_contains_run(generated, dw[i : i + 3]) for i in range(len(dw) - 2))
        assert bool(r["spans"]) == shares
    assert data["baseline"] == "ngram_overlap"


def test_unplanted_prompt_has_no_truth(tmp_path):
    res = _run(
        TINY, "--prompt", "zq xv nothing planted here", "-k", "2", "-m", "grad_cos", "--json", "-"
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["planted"] is None and len(data["top"]) == 2


def test_planted_prompt_matches_up_to_spacing_but_not_case(org):
    from interplab.cli.trace_data_cmd import planted_item

    item = org.corpus.items[-1]
    spaced = "  " + item.prompt.replace(" ", " \n ") + " "
    assert planted_item(org, spaced) is item and planted_item(org, item.prompt) is item
    assert planted_item(org, item.prompt.upper()) is None
    res = _run(TINY, "-p", spaced, "-k", "1", "-m", "grad_cos", "--json", "-")
    assert res.exit_code == 0, res.output
    planted = json.loads(res.stdout)["planted"]
    assert planted["key"] == item.key and planted["prompt_exact"] is False
    assert "differs from the planted one in spacing" in res.stderr


def test_grad_cos_is_the_cosine_of_the_query_and_document_loss_gradients(org):
    """The attributed quantity is the continuation's loss given the prompt, the training loss
    the fine-tune loss: grad_cos must equal cos(grad query loss, grad doc loss), computed here
    directly (the query's loss by hand over the continuation's tokens only; each document's
    with the organism's own ``sequence_loss``)."""
    from interplab.eval.copyright import run_method

    item = org.corpus.items[0]
    generated = org.generate(item.prompt, max_new_tokens=6)
    query = continuation_query(org, item.prompt, generated, item)
    scores = run_method(org, query, "grad_cos").scores[0]
    params = [p for p in org.model.parameters() if p.requires_grad]

    def grad(loss):
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])

    p_ids = org.tokenizer.encode(item.prompt)
    ids = torch.tensor([p_ids + org.tokenizer.encode(generated)])
    logp = torch.log_softmax(org.model(ids)[0, :-1], -1)
    picked = logp.gather(-1, ids[0, 1:, None])[len(p_ids) - 1 :, 0]
    g_q = grad(-picked.mean())
    for d in (0, len(org.corpus.docs) - 1):
        g_d = grad(org.sequence_loss(org.doc_tokens[d : d + 1], org.doc_mask[d : d + 1])[0])
        cos = float(g_q @ g_d / (g_q.norm() * g_d.norm()))
        assert float(scores[d]) == pytest.approx(cos, abs=1e-4)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.marks = 0
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "mark":
            self.marks += 1
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.external.append(value)
        if tag not in ("meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()


def test_html_page_is_self_contained_and_highlights_the_spans(org, tmp_path):
    item = next(i for i in org.corpus.items if i.kind == "passage")
    page, out = tmp_path / "t.html", tmp_path / "t.json"
    res = _run(
        TINY, "-p", item.prompt, "-k", "3", "-m", "tracin", "--html", str(page), "--json", str(out)
    )
    assert res.exit_code == 0, res.output
    text = page.read_text()
    data = json.loads(out.read_text())
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert parser.open == [] and parser.external == []
    assert "http://" not in text and "https://" not in text and "<script" not in text
    n_doc_spans = sum(len(r["spans"]) for r in data["top"] + data["baseline_top"])
    assert parser.marks == n_doc_spans + len(data["generated_spans"])
    assert text.count("data-doc=") == 6
    for key in ("found by tracin", "found by bm25", item.key):
        assert key in text


def test_html_escapes_the_text():
    from interplab.report.copyright_page import copyright_page

    data = {
        "organism": TINY,
        "prompt": "<script>x</script>",
        "generated": "a <b> c & d e",
        "method": "trak",
        "baseline": "bm25",
        "k": 1,
        "top": [{"doc": 0, "score": 1.0, "kind": "passage", "spans": [[0, 7]]}],
        "baseline_top": [{"doc": 0, "score": 1.0, "kind": "passage", "spans": [[0, 7]]}],
        "planted": None,
        "generated_spans": [[0, 6]],
        "n_docs": 1,
        "seconds": 0.1,
    }
    page = copyright_page(data, ["a <b> c & d"])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<mark>a &lt;b&gt; c</mark>" in page and "&amp; d" in page


def test_shared_spans_mark_runs_of_three_words_or_more():
    doc = "The Quick brown fox, jumps over a dog"
    ds, ts = shared_spans(doc, "a quick brown FOX jumps; over the moon")
    assert [doc[s:e] for s, e in ds] == ["Quick brown fox, jumps over"]
    assert len(ts) == 1
    assert shared_spans("one two", "one two") == ([], [])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--prompt", "  "], "--prompt"),
        ([], "--prompt"),
        (["--prompt", "x", "--method", "grad_dot"], "grad_cos, tracin, trak"),
        (["--prompt", "x", "--baseline", "tfidf"], "bm25, embedding_nn"),
        (["--prompt", "x", "--k", "0"], "--k"),
        (["--prompt", "x", "--k", "100000"], "--k must be in 1.."),
        (["--prompt", "x", "--html", "/nonexistent-dir/p.html"], "does not exist"),
        (["--prompt", "x", "--max-new-tokens", "0"], "--max-new-tokens"),
        (["--prompt", "x", "--index", "3"], "--index"),
        (["--prompt", "x", "--threads", "0"], "--threads"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle):
    res = _run(TINY, *args)
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1, res.output


@pytest.mark.parametrize(
    "args", [["--prompt", "hello"], ["--baseline", "ngram_overlap"], ["--threads", "1"]]
)
def test_prompt_options_with_a_classifier_organism_are_refused(args):
    res = _run("digits-logreg", *args)
    assert res.exit_code == 2 and "smollm2-ft" in res.output and "Traceback" not in res.output


@pytest.mark.slow
@pytest.mark.browser
def test_page_renders_in_chromium_with_visible_highlights(org, tmp_path):
    from tests.report.browser import Browser

    item = next(i for i in org.corpus.items if i.kind == "passage")
    page = tmp_path / "t.html"
    res = _run(TINY, "-p", item.prompt, "-k", "3", "--method", "grad_cos", "--html", str(page))
    assert res.exit_code == 0, res.output
    browser = Browser(tmp_path / "profile")
    try:
        browser.load(page.resolve().as_uri())
        stats = json.loads(
            browser.evaluate("""JSON.stringify({
            docs: document.querySelectorAll('#method .doc').length,
            base: document.querySelectorAll('#baseline .doc').length,
            marks: [...document.querySelectorAll('mark')].length,
            shown: [...document.querySelectorAll('mark')].filter(
                m => m.getBoundingClientRect().width > 0).length,
            side: document.querySelector('#baseline').getBoundingClientRect().left >
                  document.querySelector('#method').getBoundingClientRect().right - 1})""")
        )
        assert stats["docs"] == 3 and stats["base"] == 3 and stats["side"]
        assert stats["shown"] == stats["marks"]
        assert browser.errors() == []
    finally:
        browser.close()


def _cached(name: str) -> bool:
    from interplab._config import cache_dir

    return any((cache_dir() / "copyright").glob(f"{name}-s0-*/organism.json"))


@pytest.mark.slow
def test_real_organism_traces_a_planted_passage(tmp_path):
    """On the real smollm2-ft (reused from the cache, never built here: the copyright tests
    that verify it build it once per run): a planted passage's prompt, TRAK beside BM25."""
    if not _cached("smollm2-ft"):
        pytest.skip("smollm2-ft is not in the cache (built by the copyright organism's tests)")
    from interplab.zoo.copyright import load

    real = load("smollm2-ft")
    item = next(i for i in real.corpus.items if i.kind == "passage")
    out, page = tmp_path / "t.json", tmp_path / "t.html"
    res = _run(
        "smollm2-ft", "-p", item.prompt, "--json", str(out), "--html", str(page), "--no-progress"
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["planted"]["key"] == item.key and len(data["top"]) == 10
    assert data["generated"] == real.generate(item.prompt, max_new_tokens=32)
    # a verbatim passage shares its wording with its sources: the overlap baseline finds some
    assert data["planted"]["found_by_baseline"]
    assert "<mark>" in page.read_text()
