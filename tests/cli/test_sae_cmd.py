"""``interplab sae`` end to end on a tiny random Llama with a character tokenizer (the loader is
swapped): measures, dashboards, a resumed run, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from interplab.cli.main import app
from interplab.models.pretrained.llama import LlamaConfig
from tests.llama_helpers import random_llama


class Chars:
    eos_id = 1
    bos_id = 0

    def encode(self, text):
        return [2 + ord(c) % 62 for c in text]

    def decode(self, ids):
        return "".join(chr(96 + (i % 26)) for i in ids)


@pytest.fixture
def tiny_lm(monkeypatch):
    from interplab.cli import _common

    model = random_llama(
        LlamaConfig(
            d_vocab=64, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=24, n_ctx=64
        ),
        seed=3,
    )
    model.tokenizer = Chars()
    monkeypatch.setattr(_common, "load_lm", lambda name: model)
    return model


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(
        " ".join(f"def f{i}(x): return x + {i}  # the docstring of function {i}" for i in range(80))
    )
    return path


ARGS = [
    "--d-latent",
    "32",
    "--k",
    "4",
    "--batch-tokens",
    "64",
    "--ctx",
    "16",
    "--threads",
    "1",
    "--no-progress",
]


@pytest.mark.parametrize("kind, site", [("topk", "L1.resid_post"), ("transcoder", "L0.mlp_in")])
def test_sae_trains_measures_and_resumes(tiny_lm, corpus, tmp_path, kind, site):
    out, page, ckpt = tmp_path / "s.json", tmp_path / "s.html", tmp_path / "ckpt"
    args = [
        "sae",
        "tiny",
        "--site",
        site,
        "--kind",
        kind,
        "--steps",
        "20",
        "--corpus",
        str(corpus),
        "--checkpoint-dir",
        str(ckpt),
        *ARGS,
        "--json",
        str(out),
        "--html",
        str(page),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    m = data["measures"]
    assert -1.0 < m["variance_explained"] <= 1.0 and 0.0 <= m["dead_fraction"] <= 1.0
    assert m["ce_clean"] > 0 and m["loss_recovered"] == m["loss_recovered"]
    assert m["l0"] <= 4 + 1e-6 and m["tokens_per_second"] > 0
    assert data["features"] and data["features"][0]["contexts"]
    assert "feature-search" in page.read_text()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "resumed from step 20" in again.output


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--site", "L9.resid_post"], "has no site L9.resid_post"),
        (["--kind", "transcoder", "--site", "L0.resid_post"], "mlp_in"),
        (["--kind", "gated"], "unknown dictionary kind"),
        (["--steps", "0"], "--steps must be at least 1"),
    ],
)
def test_sae_bad_input_is_one_line(tiny_lm, corpus, extra, message):
    res = CliRunner().invoke(app, ["sae", "tiny", "--corpus", str(corpus), *ARGS, *extra])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_empty_corpus_is_a_clear_error(tiny_lm, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("  \n")
    res = CliRunner().invoke(app, ["sae", "tiny", "--corpus", str(tmp_path / "empty"), *ARGS])
    assert res.exit_code == 2 and "holds no text" in res.output
