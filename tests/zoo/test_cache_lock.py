"""One lock per cache entry: two processes that want the same entry at the same moment build it
once. Each child counts its builds in a marker file (a build sleeps, so that without the lock the
other child would start its own build meanwhile), and the weights a child trains carry its process
id, so equal results prove the second child read the first one's files instead of training again.
(Without the lock, or without the second look after taking it, each entry is built twice.)"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
import torch


def _counted(kind: str, fn, marker: str):
    def wrapper(*args, **kwargs):
        with open(marker, "a", encoding="utf-8") as fh:
            fh.write(f"{kind} {os.getpid()}\n")
        time.sleep(0.3)  # a wide window in which an unlocked second process would build too
        return fn(*args, **kwargs)

    return wrapper


def _want_the_weights_entry(cache: str, marker: str, out: str, barrier) -> None:
    """A child: ask for one weights-cache entry after meeting the other child at the barrier."""
    from interplab.models import weights_cache

    torch.set_num_threads(1)
    train = _counted(
        "weights", lambda: ({"w": torch.tensor([float(os.getpid())])}, {"by": os.getpid()}), marker
    )
    barrier.wait(timeout=300)
    state, truth = weights_cache.cached(Path(cache) / "entry", train)
    torch.save({"w": state["w"], "by": torch.tensor([truth["by"]])}, out)


def _want_the_same_truth(cache: str, marker: str, out: str, barrier) -> None:
    """A child: ask for a data-attribution organism and then its retraining truth, each after
    meeting the other child at the barrier."""
    os.environ["INTERPLAB_CACHE"] = cache
    torch.set_num_threads(1)
    from interplab.zoo import data_attribution as zda
    from interplab.zoo import retraining_truth as rt
    from tests.data_attribution_helpers import TINY

    zda.build = _counted("organism", zda.build, marker)
    rt._build = _counted("truth", rt._build, marker)
    barrier.wait(timeout=300)
    org = zda.load_or_train(TINY)
    barrier.wait(timeout=300)
    t = rt.build_truth(org, progress=False)
    torch.save(
        {
            "theta": org.model.theta,
            "outputs": t.outputs,
            "loo": t.loo_effect,
            "without": t.triggered_without,
        },
        out,
    )


def _race(child, tmp_path: Path) -> tuple[list[str], list[dict]]:
    """Run ``child`` in two spawned processes at once; (what was built, what each got)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    marker = tmp_path / "builds.txt"
    outs = [tmp_path / f"child{i}.pt" for i in range(2)]
    procs = [
        ctx.Process(target=child, args=(str(tmp_path / "cache"), str(marker), str(o), barrier))
        for o in outs
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    assert [p.exitcode for p in procs] == [0, 0]
    built = sorted(line.split()[0] for line in marker.read_text("utf-8").splitlines())
    return built, [torch.load(o) for o in outs]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_train_one_weights_entry_once(tmp_path):
    built, (a, b) = _race(_want_the_weights_entry, tmp_path)
    assert built == ["weights"]  # once, not twice
    assert _same(a, b)  # the second process read the first one's weights (its pid is in them)


@pytest.mark.slow
def test_two_processes_build_one_organism_and_its_truth_once(tmp_path):
    """The duplicate work the review saw: two jobs building the same retraining truth."""
    built, (a, b) = _race(_want_the_same_truth, tmp_path)
    assert built == ["organism", "truth"]
    assert _same(a, b)
