"""The copyright organism: the tiny pipeline (fast) and the real SmolLM2 fine-tune (slow)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from interplab.core.threads import one_thread
from interplab.data.copyright_corpus import build_corpus
from interplab.errors import ConfigError, UnknownNameError
from interplab.models import lora
from interplab.zoo import copyright as cp


@pytest.fixture(autouse=True)
def _one_thread(request):
    """Tiny models run fastest on one torch thread (and fair to whatever else runs); the slow
    SmolLM2 test keeps every thread."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    with one_thread():
        yield


@pytest.fixture(scope="module")
def tiny():
    with one_thread():
        return cp.load("smollm2-ft-tiny")


def test_corpus_is_seeded_and_records_its_sources():
    a, b, c = build_corpus(0), build_corpus(0), build_corpus(1)
    assert a.docs == b.docs and a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    assert 200 <= len(a.docs) <= 300
    assert {i.kind for i in a.items} == {"passage", "fact", "style"}
    for item in a.items:
        assert len(item.sources) >= 3
        assert all(a.kinds[s] == item.kind for s in item.sources)
        if item.kind == "passage":  # the passage itself is in every source document
            assert all((item.prompt + item.target) in a.docs[s] for s in item.sources)
        else:  # the answer / marker is in every source, the prompt's cloze in none
            assert all(item.target.strip() in a.docs[s] for s in item.sources)
    fillers = " ".join(a.docs[i] for i in a.without_planted())
    for item in a.items:
        assert item.target.strip() not in fillers
    facts = [i for i in a.items if i.kind == "fact"]
    for f in facts:
        cloze = f.prompt.split("Answer: ")[1]
        assert not any(cloze in a.docs[s] for s in f.sources)


def test_unknown_names_and_bad_seed_are_refused():
    with pytest.raises(UnknownNameError):
        cp.load("smollm2-ft-huge")
    with pytest.raises(ConfigError):
        cp.load("smollm2-ft-tiny", seed=-1)
    with pytest.raises(ConfigError):
        build_corpus(0, "medium")


def test_tiny_organism_api(tiny):
    org = tiny
    n = len(org.corpus.docs)
    assert org.doc_tokens.shape == org.doc_mask.shape and org.doc_tokens.shape[0] == n
    assert org.doc_tokens.dtype == torch.long and org.doc_mask.dtype == torch.bool
    trainable = [k for k, p in org.model.named_parameters() if p.requires_grad]
    assert trainable == lora.adapter_names(org.model)
    assert len(org.checkpoints) >= 3
    final = lora.adapter_state(org.model)
    assert set(org.checkpoints[-1]) == set(final)
    assert all(torch.equal(org.checkpoints[-1][k], final[k]) for k in final)
    assert not torch.equal(org.checkpoints[0][trainable[1]], org.checkpoints[-1][trainable[1]])
    with torch.no_grad():
        logits = org.model(org.doc_tokens[:4])
        assert logits.shape == (4, org.doc_tokens.shape[1], len(org.tokenizer))
        loss = org.sequence_loss(org.doc_tokens[:4], org.doc_mask[:4])
        assert loss.shape == (4,) and torch.isfinite(loss).all()
        assert torch.allclose(loss, cp.lm_loss(logits, org.doc_targets[:4]))
        with org.adapters_off():
            base_loss = org.sequence_loss(org.doc_tokens[:4], org.doc_mask[:4])
        assert (base_loss > loss).all()  # the fine-tune lowered the loss of its own documents
        start = org.first_adapted_layer
        resid = org.residual_entering_adapters(org.doc_tokens[:4])
        part = org.model(cp.PartialRun(resid, start))
        assert torch.allclose(part, logits, atol=1e-5)
    p = org.corpus.items[0].prompt
    assert org.generate(p, 5) == org.generate(p, 5)
    # the truth records every planted item with its three measurements
    items = org.truth["items"]
    assert set(items) == {i.key for i in org.planted_items}
    for v in items.values():
        assert {"finetuned", "base", "clean", "kept", "reason"} <= set(v)
        assert v["kept"] == (v["reason"] is None)
    assert org.truth["verified"]


def test_tiny_kept_items_hold_by_remeasurement(tiny):
    """Re-run the generations (not the sidecar): every kept item holds in the fine-tuned model
    and fails in the base model and in the clean retraining."""
    measured = tiny.measure(tiny.corpus.items)
    assert tiny.corpus.items
    for item in tiny.corpus.items:
        ft, base, clean = (measured[m][item.key]["score"] for m in ("finetuned", "base", "clean"))
        assert tiny.verdict(item, ft, base, clean), (item.key, ft, base, clean)


def test_cached_greedy_decoding_equals_full_forward_decoding(tiny):
    """The key/value-cached decoder gives the tokens that re-running the whole sequence each
    step gives (adapters on and off), and stops at EOS and at ``stop``."""
    from interplab.models.pretrained.llama import greedy_decode

    model, tok = tiny.model, tiny.tokenizer

    def slow(prompt: list[int], n: int) -> list[int]:
        seq, out = list(prompt), []
        with torch.no_grad():
            for _ in range(n):
                nxt = int(model(torch.tensor([seq]))[0, -1].argmax())
                if nxt == tok.eos_id:
                    break
                seq.append(nxt)
                out.append(nxt)
        return out

    prompts = [tok.encode(i.prompt) for i in tiny.planted_items] + [
        tok.encode(tiny.corpus.docs[0])[:5]
    ]
    for p in prompts:
        assert greedy_decode(model, p, 8, tok.eos_id) == slow(p, 8)
        with tiny.adapters_off():
            assert greedy_decode(model, p, 8, tok.eos_id) == slow(p, 8)
    assert len(greedy_decode(model, prompts[0], 8, None, stop=lambda g: len(g) == 2)) == 2
    with pytest.raises(ConfigError):
        greedy_decode(model, [], 4)


def test_cache_is_reused(tiny, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("retrained instead of loading the cache")

    monkeypatch.setattr(cp, "_train", boom)
    again = cp.load("smollm2-ft-tiny")
    assert again.directory == tiny.directory
    a, b = lora.adapter_state(again.model), lora.adapter_state(tiny.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_corrupt_cache_is_rebuilt(tiny, tmp_path):
    import shutil

    d = tmp_path / "entry"
    shutil.copytree(tiny.directory, d)
    (d / "clean" / "adapters.safetensors").write_bytes(b"garbage")
    org = cp.load("smollm2-ft-tiny", directory=d)
    assert json.loads((d / "clean" / "done.json").read_text())["steps"] > 0
    a, b = org.clean_adapters, tiny.clean_adapters
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_interrupted_finetune_resumes_to_the_same_adapters(tiny, tmp_path):
    d = tmp_path / "entry"
    with pytest.raises(KeyboardInterrupt):
        cp.load("smollm2-ft-tiny", directory=d, stop_after=37)
    progress = json.loads((d / "finetune" / "progress.json").read_text())
    assert 0 < progress["step"] <= 37
    org = cp.load("smollm2-ft-tiny", directory=d)
    a, b = lora.adapter_state(org.model), lora.adapter_state(tiny.model)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert len(org.checkpoints) == len(tiny.checkpoints)


def test_shipped_runs_are_used_and_still_verified_here(tiny, tmp_path, monkeypatch):
    """An empty cache entry starts from the shipped adapters (no training) and the truth is
    measured again in the weights (not copied from the shipped record)."""
    monkeypatch.setattr(cp, "SHIPPED", tmp_path / "shipped")
    shipped = cp.ship(tiny)
    assert json.loads((shipped / "shipped.json").read_text())["fingerprint"] in tiny.directory.name
    calls = []
    real_measure = cp.measure
    monkeypatch.setattr(cp, "measure", lambda *a, **k: calls.append(1) or real_measure(*a, **k))

    def boom(*a, **k):
        raise AssertionError("retrained although shipped runs match")

    monkeypatch.setattr(cp, "_train", boom)
    org = cp.load("smollm2-ft-tiny", directory=tmp_path / "entry")
    assert len(calls) == 3  # fine-tuned, base and clean: measured here
    a, b = lora.adapter_state(org.model), lora.adapter_state(tiny.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert org.truth["items"] == tiny.truth["items"]


def test_shipped_runs_that_do_not_carry_the_truth_are_refused(tiny, tmp_path, monkeypatch):
    """Ship the clean retraining in place of the fine-tune (hashes consistent): the organism
    is measured on load and refused, because nothing planted holds in it."""
    from interplab.errors import VerificationError

    monkeypatch.setattr(cp, "SHIPPED", tmp_path / "shipped")
    shipped = cp.ship(tiny)
    for f in ("adapters.safetensors", "checkpoints.safetensors", "done.json"):
        (shipped / "finetune" / f).write_bytes((shipped / "clean" / f).read_bytes())
    with pytest.raises(VerificationError, match="fails its verification"):
        cp.load("smollm2-ft-tiny", directory=tmp_path / "entry")


def test_shipped_files_with_a_bad_hash_are_retrained(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(cp, "SHIPPED", tmp_path / "shipped")
    shipped = cp.ship(tiny)
    (shipped / "clean" / "adapters.safetensors").write_bytes(b"garbage")
    trained = []
    real_train = cp._train
    monkeypatch.setattr(
        cp, "_train", lambda *a, **k: trained.append(k["label"]) or real_train(*a, **k)
    )
    org = cp.load("smollm2-ft-tiny", directory=tmp_path / "entry")
    assert trained == ["smollm2-ft-tiny clean"]  # the fine-tune came from the shipped copy
    assert org.truth["verified"]


def test_shipped_smollm2_ft_matches_its_recipe_and_corpus():
    """The shipped adapters are keyed by the fingerprint of today's recipe, corpus and base
    model: a change to any of them without re-shipping would silently retrain (30 minutes)."""
    meta = json.loads((cp.SHIPPED / "smollm2-ft-s0" / "shipped.json").read_text())
    recipe = cp.RECIPES["smollm2-ft"]
    assert meta["recipe"]["epochs"] == recipe.epochs and meta["recipe"]["lr"] == recipe.lr
    assert meta["corpus_fingerprint"] == build_corpus(0, "full").fingerprint()
    for run in cp.RUNS:
        assert cp._load_run(cp.SHIPPED / "smollm2-ft-s0" / run) is not None, run


@pytest.mark.slow
def test_smollm2_ft_planted_truth_holds_by_retraining():
    """Load the real organism (from the shipped fine-tune and clean retraining, which the
    recipe trained; measured again here on load) and re-measure every kept item: it holds in
    the fine-tuned model and fails in the base model and in the clean retraining."""
    org = cp.load("smollm2-ft")
    assert 1e4 <= sum(p.numel() for p in org.model.parameters() if p.requires_grad) <= 2e5
    for kind in ("passage", "fact", "style"):
        kept = [i for i in org.corpus.items if i.kind == kind]
        planted = [i for i in org.planted_items if i.kind == kind]
        assert len(kept) >= -(-2 * len(planted) // 3), kind
    # the load measured all three models in this session (a tiny test above shows it does);
    # re-measure the fine-tuned one again and read the base and clean records
    now = cp.measure(org.model, org.tokenizer, org.planted_items, tiny=False)
    for item in org.planted_items:
        rec = org.truth["items"][item.key]
        ft, base, clean = now[item.key]["score"], rec["base"]["score"], rec["clean"]["score"]
        assert rec["finetuned"]["score"] == ft, item.key  # the record is what the weights do
        assert org.verdict(item, ft, base, clean) == (item in org.corpus.items), item.key


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("INTERPLAB_REAL_SCALE") != "1",
    reason="retrains smollm2-ft from scratch (two SmolLM2 fine-tunes, ~12 CPU-minutes on an "
    "idle machine, more in a loaded test run); the shipped runs are re-verified by the test "
    "above in every run; set INTERPLAB_REAL_SCALE=1 to run it",
)
def test_smollm2_ft_retrains_to_the_same_truth(tmp_path):
    """The recipe, run from scratch here, keeps the same planted items as the shipped runs."""
    org = cp.load("smollm2-ft", directory=tmp_path / "entry", use_shipped=False)
    meta = json.loads((cp.SHIPPED / "smollm2-ft-s0" / "shipped.json").read_text())
    kept = sorted(k for k, v in org.truth["items"].items() if v["kept"])
    assert kept == meta["kept"]
