"""Tasks are data: shapes, positions and answers checked against the prompts themselves."""

import pytest
import torch

from interplab.errors import ConfigError, UnknownNameError
from interplab.tasks import make_task


class CharTokenizer:
    """One token per character (names are multi-character, so none is single-token) plus a
    small word table so IOI names are single tokens."""

    def __init__(self):
        from interplab.tasks.ioi import NAMES

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
    assert float(task.mean_logit_diff(logits)) == pytest.approx(2.0 - 0.2)


def test_bad_task_input_is_clear():
    with pytest.raises(UnknownNameError, match="task"):
        make_task("greater-than-ish", None)
    with pytest.raises(ConfigError, match="positive"):
        make_task("induction", None, n=0)
    with pytest.raises(ConfigError, match="half"):
        make_task("induction", None, half=1)


def test_positions_are_one_tensor_whatever_form_they_come_in():
    from interplab.errors import ShapeError
    from interplab.tasks import Task

    clean = torch.arange(12).view(3, 4)
    default = Task(clean, clean.flip(0))
    assert default.positions.tolist() == [[1, 2, 3]] * 3 and default.scored_positions == (1, 2, 3)
    shared = Task(clean, clean.flip(0), (3, 1))
    assert shared.positions.shape == (3, 2) and shared.scored_positions == (3, 1)
    per_row = Task(clean, clean.flip(0), torch.tensor([[1], [2], [3]]))
    assert not per_row.shared_positions
    with pytest.raises(ConfigError, match="different positions"):
        per_row.scored_positions  # noqa: B018
    # selecting the scored outputs reads row i at its own positions
    logits = torch.arange(3 * 4 * 2, dtype=torch.float).view(3, 4, 2)
    assert per_row.select(logits)[:, 0, 0].tolist() == [2.0, 12.0, 22.0]
    for bad in ((4,), torch.zeros(2, 1, dtype=torch.long), "last"):
        with pytest.raises(ShapeError, match="positions"):
            Task(clean, clean, bad)
    with pytest.raises(ShapeError, match="labels"):
        Task(clean, clean, (1,), labels=torch.zeros(3, 2, dtype=torch.long))


def test_rows_keep_every_field_and_a_task_is_checked():
    from interplab.tasks import Task, check_task

    clean = torch.arange(12).view(3, 4)
    task = Task(
        clean,
        clean + 1,
        (2,),
        clean[:, 3:],
        clean[:, :1],
        metric="logit_diff",
        name="t",
        texts=("a", "b", "c"),
    )
    part = task.rows(1, 3)
    assert torch.equal(part.corrupted, clean[1:] + 1) and part.texts == ("b", "c")
    assert torch.equal(part.wrong_labels, clean[1:, :1]) and part.metric == "logit_diff"
    assert check_task(task) is task
    with pytest.raises(ConfigError, match="expected an interplab.tasks.Task"):
        check_task({"clean": clean})
    with pytest.raises(ConfigError, match="no labels"):
        Task(clean, clean).logit_diffs(torch.zeros(3, 4, 5))
