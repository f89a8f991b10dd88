"""Tasks are data: shapes, positions and answers checked against the prompts themselves."""

import pytest
import torch

from interplab.errors import ConfigError, UnknownNameError
from interplab.methods.tasks import make_task


class CharTokenizer:
    """One token per character (names are multi-character, so none is single-token) plus a
    small word table so IOI names are single tokens."""

    def __init__(self):
        from interplab.methods.tasks.ioi import NAMES

        self.words = {n: 200 + i for i, n in enumerate(NAMES)}

    def encode(self, text):
        out, i = [], 0
        while i < len(text):
            for w, t in self.words.items():
                if text.startswith(w, i):
                    out.append(t)
                    i += len(w)
                    break
            else:
                out.append(ord(text[i]) % 200)
                i += 1
        return out

    def __len__(self):
        return 300


def test_induction_labels_are_the_repeat():
    task = make_task("induction", None, n=5, seed=1, half=6, vocab=(10, 90), bos=0)
    assert task.clean.shape == (5, 13) and bool((task.clean[:, 0] == 0).all())
    rows = torch.arange(5).unsqueeze(1)
    # the label at a scored position is the token one step later in the clean prompt
    assert torch.equal(task.clean[rows, task.positions + 1], task.labels)
    # the corrupted prompt keeps the second copy and changes the first
    assert torch.equal(task.corrupted[:, 7:], task.clean[:, 7:])
    assert not torch.equal(task.corrupted[:, 1:7], task.clean[:, 1:7])


def test_ioi_answers_are_the_names_and_chunks_partition():
    task = make_task("ioi", CharTokenizer(), n=7, seed=0)
    tok = CharTokenizer()
    for i, text in enumerate(task.texts):
        io = [n for n, t in tok.words.items() if t == int(task.labels[i, 0])][0]
        s = [n for n, t in tok.words.items() if t == int(task.wrong_labels[i, 0])][0]
        assert text.count(s) == 2 and text.count(io) == 1
    chunks = task.chunks(3)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert torch.equal(torch.cat([c.clean for c in chunks]), task.clean)


def test_metric_is_the_logit_difference():
    task = make_task("induction", None, n=2, seed=0, half=3, vocab=(1, 10))
    logits = torch.zeros(2, task.seq_len, 10)
    rows = torch.arange(2).unsqueeze(1)
    logits[rows, task.positions, task.labels] = 2.0
    assert float(task.metric(logits)) == pytest.approx(2.0 - 0.2)


def test_bad_task_input_is_clear():
    with pytest.raises(UnknownNameError, match="task"):
        make_task("greater-than-ish", None)
    with pytest.raises(ConfigError, match="positive"):
        make_task("induction", None, n=0)
    with pytest.raises(ConfigError, match="half"):
        make_task("induction", None, half=1)
