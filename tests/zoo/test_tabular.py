"""Decision organisms: their truth is verified by intervening on the model."""

import pytest
import torch

from interplab.errors import UnknownNameError
from interplab.models import tabular as T
from interplab.zoo import tabular as Z


def _resample(x: torch.Tensor, cols: list[int], pool: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    out = x.clone()
    out[:, cols] = pool[torch.randint(0, pool.shape[0], (x.shape[0],), generator=gen)][:, cols]
    return out


def test_credit_rule_follows_its_scorecard_under_interventions():
    org = Z.get("credit-rule")
    names = org.data.names
    deciding = [names.index(f) for f in T.SCORECARD]
    others = [j for j in range(len(names)) if j not in deciding]
    x = org.test_rows
    with torch.no_grad():
        before = org.model(x) > 0
        # resample every non-scorecard feature: the decisions must not move
        after = org.model(_resample(x, others, org.background, 1)) > 0
        assert float((before == after).double().mean()) >= 0.98
        # resample the scorecard features: the decisions must follow the rule on the new rows
        moved = _resample(x, deciding, org.background, 2)
        follows = (org.model(moved) > 0).long() == T.scorecard_approves(moved, names)
    assert float(follows.double().mean()) >= 0.98
    assert org.truth["accuracy_vs_rule"] >= 0.98


def test_digits_rule_is_decided_by_the_patch():
    org = Z.get("digits-rule")
    idx = T.patch_index()
    x = org.test_rows
    on, off = x.clone(), x.clone()
    on[:, idx], off[:, idx] = 16.0, 0.0
    with torch.no_grad():
        assert float((org.model(on) > 0).double().mean()) >= 0.98
        assert float((org.model(off) <= 0).double().mean()) >= 0.98
        others = [j for j in range(64) if j not in idx]
        same = (org.model(x) > 0) == (org.model(_resample(x, others, org.background, 3)) > 0)
    assert float(same.double().mean()) >= 0.95


def test_credit_linear_oracle_matches_interventions():
    """The oracle coef·(enc(x) − E[enc]) equals the mean score change when one feature is set to
    the background's values (an intervention on the model), for every feature."""
    org = Z.get("credit-linear")
    x, bg = org.test_rows[:5], org.background
    oracle = org.true_attributions(x)
    with torch.no_grad():
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                rows = x[i].repeat(bg.shape[0], 1)
                rows[:, j] = bg[:, j]
                measured = float(org.model(x[i : i + 1])[0] - org.model(rows).mean())
                assert abs(measured - float(oracle[i, j])) < 1e-9
        gap = org.model(x) - org.model(bg).mean()
    assert torch.allclose(oracle.sum(1), gap, atol=1e-9)  # efficiency


def test_cache_is_reused_and_a_corrupt_one_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path))
    a = Z.load("credit-linear")
    weights = Z.organism_dir("credit-linear", 0) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    b = Z.load("credit-linear")
    assert weights.stat().st_mtime_ns == stamp
    assert torch.equal(a.model.linear.weight, b.model.linear.weight)
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    c = Z.load("credit-linear")
    assert torch.equal(a.model.linear.weight, c.model.linear.weight)


def test_unknown_organism_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="credit-rule"):
        Z.get("credit-rul")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["credit-mlp", "cancer-mlp"])
def test_real_label_organisms_beat_the_majority_class(name):
    org = Z.get(name)
    with torch.no_grad():
        acc = float(
            ((org.model(org.test_rows) > 0).long() == org.data.y[org.test_idx]).double().mean()
        )
    majority = float(org.data.y[org.test_idx].double().mean())
    assert acc > max(majority, 1 - majority)


def test_truth_needs_no_method_code_and_no_scored_row():
    """The truths (scorecard contributions, the linear oracle) are built in an interpreter where
    importing interplab.methods fails, from training rows only; scored rows are test rows."""
    import json
    import os
    import subprocess
    import sys

    from tests.bench.test_truth_independence import BLOCKED

    Z.get("credit-linear"), Z.get("credit-rule")  # into this session's cache
    code = BLOCKED + (
        "import json, sys\nfrom interplab.zoo.tabular import get\n"
        "out = {}\n"
        "for name in ('credit-linear', 'credit-rule'):\n"
        "    org = get(name)\n"
        "    out[name] = org.true_attributions(org.test_rows[:4]).tolist()\n"
        "out['methods'] = [m for m in sys.modules if m.startswith('interplab.methods')]\n"
        "print(json.dumps(out))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["methods"] == []
    for name in ("credit-linear", "credit-rule"):
        org = Z.get(name)
        assert torch.allclose(
            torch.tensor(got[name], dtype=torch.float64), org.true_attributions(org.test_rows[:4])
        )
        assert not set(org.train_idx.tolist()) & set(org.test_idx.tolist())
