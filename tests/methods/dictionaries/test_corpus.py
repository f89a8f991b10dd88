"""The offline corpus: stdlib docstrings, user text, token windows, and a window source that
leaves out the attention-sink position."""

import pytest
import torch

from interplab.errors import ConfigError
from interplab.methods.dictionaries.corpus import (
    WindowSource,
    read_corpus,
    split,
    stdlib_docstrings,
    token_windows,
)
from interplab.models.pretrained.llama import LlamaConfig
from tests.llama_helpers import random_llama


class Chars:
    def encode(self, text):
        return [2 + ord(c) % 30 for c in text]


def test_stdlib_docstrings_are_text():
    docs = stdlib_docstrings(max_chars=5000)
    assert docs and all(isinstance(d, str) and len(d) > 40 for d in docs)


def test_windows_and_split(tmp_path):
    (tmp_path / "a.txt").write_text("hello world " * 20)
    (tmp_path / "skip.bin").write_text("not read")
    texts = read_corpus(tmp_path)
    assert texts == [("hello world " * 20).strip()]  # 239 characters, .bin ignored
    w = token_windows(Chars(), texts, 8, sep=1)  # 239 tokens + the separator = 30 windows
    assert w.shape == (30, 8) and w[0, 0] == 2 + ord("h") % 30
    train, held = split(w, 0.1, seed=0)
    assert len(train) == 27 and len(held) == 3
    with pytest.raises(ConfigError, match="fewer than two windows"):
        token_windows(Chars(), ["ab"], 8)


def test_empty_or_missing_corpus_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_corpus(tmp_path / "nope")
    (tmp_path / "e.md").write_text("")
    with pytest.raises(ConfigError, match="holds no text"):
        read_corpus(tmp_path)


def test_window_source_skips_the_first_position():
    model = random_llama(
        LlamaConfig(d_vocab=40, d_model=8, n_layers=1, n_heads=2, n_kv_heads=1, d_mlp=12, n_ctx=32),
        seed=0,
    )
    from interplab.core.sites import Component, Site

    site = Site(Component.RESID_POST, 0)
    windows = torch.randint(2, 40, (6, 5), generator=torch.Generator().manual_seed(0))
    src = WindowSource(model, site, windows, seed=1, skip=1)
    x, y = src.batch(3, 8)
    assert x.shape == (8, 8) and torch.equal(x, y)
    x2, _ = src.batch(3, 8)
    assert torch.equal(x, x2)  # a pure function of (seed, step): resumable
    _, cache = model.run_with_cache(windows, [site])
    first = cache[site][:, 0]
    assert not any(torch.allclose(row, f) for row in x for f in first)
