"""Methods for real models, checked on small models where the answer is known or computable."""

from __future__ import annotations

import pytest
import torch

from interplab.methods.attribution.gradients import input_x_gradient, integrated_gradients
from interplab.methods.attribution.head_patching import activation_patching, attribution_patching
from interplab.methods.attribution.induction_heads import detect_induction_heads
from interplab.methods.attribution.lens import logit_lens_and_dla
from interplab.models.pretrained.llama import HookedLlama, LlamaConfig
from interplab.tasks.induction import repeated_tokens
from interplab.tasks.ioi import NAMES, ioi_task
from tests.llama_helpers import WordTokenizer, random_llama


def tiny_llama(vocab: int = 128) -> HookedLlama:
    return random_llama(
        LlamaConfig(
            d_vocab=vocab, d_model=24, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=32, n_ctx=64
        )
    )


def test_repeated_tokens_shape_and_repeat():
    t = repeated_tokens(3, 5, (10, 20), bos=1)
    assert t.shape == (3, 11) and torch.equal(t[:, 1:6], t[:, 6:]) and torch.all(t[:, 0] == 1)


def test_induction_scores_match_pattern_by_hand():
    hm = tiny_llama()
    res = detect_induction_heads(hm, 2, 4, seq_len=6, n_seqs=2, vocab=(5, 100))
    from interplab import Component as C
    from interplab import Site

    tokens = repeated_tokens(2, 6, (5, 100))
    _, cache = hm.run_with_cache(tokens, [Site(C.ATTN_PATTERN, 1)])
    q = torch.arange(6, 12)
    want = cache[Site(C.ATTN_PATTERN, 1)][:, :, q, q - 5].mean(dim=(0, 2))
    assert torch.allclose(res.scores[1], want, atol=1e-6)
    assert res.scores.shape == (2, 4) and len(res.top) == 5


def test_ioi_dataset_is_well_formed():
    tok = WordTokenizer()
    ds = ioi_task(tok, n=12)
    assert ds.clean.shape == ds.corrupted.shape and len(ds) == 12
    for i in range(12):
        assert ds.clean[i, ds.positions[i, 0]] == tok.encode(" to")[0]
        assert ds.labels[i, 0] != ds.wrong_labels[i, 0]
    assert all(any(n.strip() in t for n in NAMES) for t in ds.texts)


def test_activation_patching_matches_full_runs_and_attribution_is_close():
    hm = tiny_llama()
    ds = ioi_task(WordTokenizer(), n=8)
    exact = activation_patching(hm, ds)
    from interplab import Component as C
    from interplab import Patch, Site

    _, clean = hm.run_with_cache(ds.clean, [Site(C.ATTN_Z, 1, 2)])
    out = hm.run_with(ds.corrupted, [Patch(Site(C.ATTN_Z, 1, 2), clean[Site(C.ATTN_Z, 1, 2)])])
    want = (ds.logit_diffs(out).mean().item() - exact.corrupt_ld) / (
        exact.clean_ld - exact.corrupt_ld
    )
    assert abs(exact.scores[1, 2].item() - want) < 1e-4  # PartialRun == full run
    approx = attribution_patching(hm, ds)
    assert approx.scores.shape == (2, 4)
    assert (
        abs(approx.clean_ld - exact.clean_ld) < 1e-4
        and abs(approx.corrupt_ld - exact.corrupt_ld) < 1e-4
    )


def test_logit_lens_last_layer_equals_model_logit_diff():
    hm = tiny_llama()
    ds = ioi_task(WordTokenizer(), n=8)
    res = logit_lens_and_dla(hm, ds)
    assert abs(res.layer_logit_diff[-1].item() - res.final_logit_diff) < 1e-4
    assert res.head_dla.shape == (2, 4)


def test_integrated_gradients_completeness_on_an_mlp():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.Sigmoid(), torch.nn.Linear(8, 3))
    x = torch.rand(4, 10)
    fn = lambda v: net(v)[:, 1]  # noqa: E731
    ig = integrated_gradients(fn, x, steps=128)
    assert ig.completeness_error.max() < 1e-3
    ixg = input_x_gradient(fn, x)
    assert ixg.values.shape == x.shape
    linear = torch.nn.Linear(10, 1)
    ixg_lin = input_x_gradient(lambda v: linear(v)[:, 0], x)
    assert ixg_lin.completeness_error.max() < 1e-5  # exact for linear maps


def test_attribution_patching_is_exact_where_the_logit_difference_is_linear_in_z():
    """One attention-only layer without LayerNorm: logits are linear in attn_z, so the
    first-order estimate must equal activation patching head by head (catches scale bugs)."""
    from interplab import HookedTransformer, TransformerConfig

    ds = ioi_task(WordTokenizer(), n=8)
    cfg = TransformerConfig(
        n_layers=1,
        d_model=32,
        n_heads=4,
        d_head=8,
        d_mlp=0,
        d_vocab=64,
        n_ctx=int(ds.clean.shape[1]),
        attn_only=True,
        normalization="none",
        init_std=0.3,
        seed=2,
    )
    hm = HookedTransformer(cfg)
    exact = activation_patching(hm, ds)
    approx = attribution_patching(hm, ds)
    assert exact.scores.abs().max() > 0.05
    assert torch.allclose(approx.scores, exact.scores, atol=1e-4)


def test_head_patching_is_generic_over_tasks_and_models():
    """The same patching runs on a multi-position task (induction, full runs) and on a native
    (non-Llama) transformer; a head's score equals the patched full run's by hand."""
    import pytest

    from interplab import Component as C
    from interplab import Patch, Site
    from interplab.errors import ConfigError
    from interplab.tasks import induction_task

    hm = tiny_llama()
    task = induction_task(None, n=6, half=5, vocab=(5, 100))
    res = activation_patching(hm, task)
    site = Site(C.ATTN_Z, 0, 1)
    _, clean = hm.run_with_cache(task.clean, [site])
    out = hm.run_with(task.corrupted, [Patch(site, clean[site])])
    want = (task.mean_logit_diff(out).item() - res.corrupt_ld) / (res.clean_ld - res.corrupt_ld)
    assert abs(res.scores[0, 1].item() - want) < 1e-4
    assert attribution_patching(hm, task).scores.shape == (2, 4)
    with pytest.raises(ConfigError, match="expected an interplab.tasks.Task"):
        activation_patching(hm, {"clean": task.clean})
    with pytest.raises(ConfigError, match="one scored position"):
        logit_lens_and_dla(hm, task)


@pytest.mark.slow  # trains the induction organism on a fresh cache
def test_head_patching_runs_on_a_trained_organism():
    from interplab.tasks import induction_task
    from interplab.zoo.organisms import cached_organism_model

    model = cached_organism_model("induction")  # the model only: no truth is scored here
    cfg = model.cfg
    task = induction_task(None, n=8, half=4, vocab=(0, cfg.d_vocab))
    res = activation_patching(model, task)
    assert res.scores.shape == (cfg.n_layers, cfg.n_heads) and torch.isfinite(res.scores).all()
    assert res.clean_ld > res.corrupt_ld  # the organism does induction; the corruption breaks it
