"""Side by side with the reference libraries on the same model and data (benchmarks/
data_attribution_speed.py times them): TRAK vs ``traker`` with the same projection, EK-FAC vs
``kronfluence`` with the same Fisher and damping."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from tests.data_attribution_helpers import TINY_MLP, organism

# kronfluence is not in any extra: pip resolves it to a CUDA torch 2.14. Install it with
# `pip install --no-deps --target DIR kronfluence einops einconv opt_einsum accelerate psutil`
# and put DIR on PYTHONPATH to run its test (benchmarks/data_attribution_speed.py --kronfluence-path DIR).

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "data_attribution_speed.py"


def _bench():
    spec = importlib.util.spec_from_file_location("data_attribution_speed", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pearson(a, b) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


@pytest.mark.parametrize("name", [None, TINY_MLP])
def test_trak_matches_traker(name, tmp_path):
    pytest.importorskip("trak")
    bench = _bench()
    org = organism() if name is None else organism(name)
    d = org.data
    train, test = (d.x_train, d.y_train), (d.x_test, d.y_test)
    proj = 32
    ours = bench.ours(org.model, train, test, proj)
    ref = bench.traker_scores(org.model, train, test, proj, same_projection=True)
    assert ours.shape == ref.shape and _pearson(ours, ref) >= 0.95


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("name", [None, TINY_MLP])
def test_ekfac_matches_kronfluence(name):
    pytest.importorskip("kronfluence")
    from interplab.methods.data_attribution.influence import DAMPING

    bench = _bench()
    org = organism() if name is None else organism(name)
    d = org.data
    train, test = (d.x_train, d.y_train), (d.x_test, d.y_test)
    ours = bench.ours_ekfac(org.model, train, test)
    ref = bench.kronfluence_scores(
        org.model, train, test, org.spec.classifier.weight_decay + DAMPING
    )
    assert _pearson(ours, ref) >= 0.95
