"""The single-edge check of a per-ablation circuit truth (interplab.zoo.verify), on a model whose
circuit is known by construction: head L0.H0 attends from each position to the previous one
(Q/K from the positional embedding) and copies the token there (V) into a block of the residual
that only the unembedding reads; head L0.H1 is all zeros; the embeddings never reach the logits
directly. The check must pass the true circuit under every ablation and fail mutated ones."""

from __future__ import annotations

import json

import pytest
import torch

from interplab.core.circuit import Circuit, Edge, Node
from interplab.errors import VerificationError
from interplab.models.config import TransformerConfig
from interplab.models.io import save_model
from interplab.models.transformer import HookedTransformer
from interplab.tasks import Task
from interplab.zoo import verify

V, P = 6, 6  # vocabulary, positions
TOK, POS = Node.tok_embed(), Node.pos_embed()
H0, H1, OUT = Node.attn_head(0, 0), Node.attn_head(0, 1), Node.logits()


def _previous_token_model() -> HookedTransformer:
    cfg = TransformerConfig(
        n_layers=1,
        d_model=2 * V + P,
        n_heads=2,
        d_head=max(V, P),
        d_mlp=0,
        d_vocab=V,
        n_ctx=P,
        attn_only=True,
        normalization="none",
        seed=0,
    )
    model = HookedTransformer(cfg, name="hand-prevtoken")
    sd = {k: torch.zeros_like(v) for k, v in model.model.state_dict().items()}
    sd["embed.W_E"][:, :V] = torch.eye(V)  # token block
    sd["pos_embed.W_pos"][:, V : V + P] = torch.eye(P)  # position block
    for i in range(P):
        sd["blocks.0.attn.W_Q"][0, V + i, max(i - 1, 0)] = 40.0  # query: "position i - 1"
        sd["blocks.0.attn.W_K"][0, V + i, i] = 1.0  # key: "position i"
    sd["blocks.0.attn.W_V"][0, :V, :V] = torch.eye(V)  # value: the token
    sd["blocks.0.attn.W_O"][0, :V, V + P :] = 5.0 * torch.eye(V)  # -> the output block
    sd["unembed.W_U"][V + P :, :] = torch.eye(V)  # logits read only that block
    model.model.load_state_dict(sd)
    model.model.eval()
    return model


def _task(seed: int = 0) -> Task:
    gen = torch.Generator().manual_seed(seed)
    clean, corrupted = (
        torch.randint(0, V, (32, P), generator=gen),
        torch.randint(0, V, (32, P), generator=gen),
    )
    return Task(clean, corrupted, metric="kl", name="hand-prevtoken")


def _truth(zero_extra=(), drop=(), add=()) -> dict[str, Circuit]:
    every = [Edge(TOK, H0, "v"), Edge(H0, OUT)] + list(add)
    zero = [Edge(POS, H0, "q"), Edge(POS, H0, "k"), *zero_extra]
    keep = lambda edges: [e for e in edges if e not in drop]  # noqa: E731
    return {
        "zero": Circuit.from_edges(keep(every + zero)),
        "mean": Circuit.from_edges(keep(every)),
        "resample": Circuit.from_edges(keep(every)),
    }


@pytest.fixture(scope="module")
def model():
    return _previous_token_model()


def test_the_true_circuit_passes_under_every_ablation(model):
    check = verify.verify_truth("hand", model, _truth(), _task())
    assert check.ok and set(check.ablations) == {"zero", "mean", "resample"}
    for c in check.ablations.values():
        assert c.tolerance == pytest.approx(verify.REL_TOL * c.whole)
        m = c.margins()
        assert m["min_truth_over_tol"] > 1 >= m["max_other_over_tol"]
    # positions are the same on clean and corrupted rows: no effect at all under resample
    assert check.ablations["resample"].effects[str(Edge(POS, H0, "q"))] == 0.0


def test_an_inert_truth_edge_fails_the_check(model):
    inert = Edge(TOK, H1, "v")  # H1 is all zeros: its input changes nothing
    check = verify.check_truth(model, _truth(add=[inert]), _task())
    assert not check.ok
    for c in check.ablations.values():
        assert [e for e, _ in c.inert] == [str(inert)] and not c.missing
    with pytest.raises(VerificationError, match=r"inert \(tokens->L0\.H1\[v\] 0\.0000"):
        check.raise_if_failed()


def test_a_missing_mattering_edge_fails_the_check(model):
    dropped = Edge(TOK, H0, "v")
    with pytest.raises(VerificationError) as err:
        verify.verify_truth("hand", model, _truth(drop=[dropped]), _task())
    msg = str(err.value)
    assert "hand" in msg and "zero:" in msg and "mean:" in msg and "resample:" in msg
    assert "edges outside the truth matter (tokens->L0.H0[v]" in msg


def test_a_zero_only_edge_claimed_under_resample_fails(model):
    """Positions read on Q matter under zero ablation only; claiming them under resample is wrong."""
    truth = _truth()
    truth["resample"] = Circuit.from_edges(set(truth["resample"].edges) | {Edge(POS, H0, "q")})
    check = verify.check_truth(model, truth, _task())
    assert check.ablations["zero"].ok and not check.ablations["resample"].ok
    assert check.ablations["resample"].inert == ((str(Edge(POS, H0, "q")), 0.0),)


def test_the_outcome_is_stored_beside_the_weights_by_their_hash(model, tmp_path):
    save_model(tmp_path, model)
    task, truth = _task(), _truth()
    calls = []

    def compute():
        calls.append(1)
        return verify.check_truth(model, truth, task, name="hand")

    key = verify.check_key(truth, task, verify.weights_sha256(tmp_path))
    first = verify.cached_check(tmp_path, key, compute)
    again = verify.cached_check(tmp_path, key, compute)
    assert len(calls) == 1 and again.info["cached"] and again.ok == first.ok
    assert again.ablations["zero"].effects == first.ablations["zero"].effects
    stored = json.loads((tmp_path / verify.SIDECAR).read_text())
    assert stored["key"] == key
    # other weights, another truth or other rows: another key, so the check runs again
    other = verify.check_key(
        _truth(add=[Edge(TOK, H1, "v")]), task, verify.weights_sha256(tmp_path)
    )
    assert other != key
    assert verify.check_key(truth, _task(seed=1), verify.weights_sha256(tmp_path)) != key
    assert verify.check_key(truth, task, "0" * 64) != key
    verify.cached_check(tmp_path, other, compute)
    assert len(calls) == 2
