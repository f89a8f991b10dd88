"""GCG on the token trojan, Neural Cleanse on the patch trojan and its twin."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError
from interplab.eval.failures import trigger_iou
from interplab.methods.attacks import gcg, neural_cleanse, random_trigger, reconstruct_trigger
from interplab.models import trojan_tokens as tt
from interplab.models.trojans import digits
from interplab.zoo import trojans


@pytest.fixture(scope="module")
def token_model():
    return trojans.load("trojan-token").model


def test_gcg_finds_the_target_with_few_swaps(token_model):
    gen = torch.Generator().manual_seed(tt.SCORE_SEED)
    x = tt.clean_batch(24, gen)
    x = x[x[:, 0] != tt.TARGET]
    r = gcg(token_model, x, target=tt.TARGET, positions=range(1, tt.LENGTH - 1), steps=8, seed=0)
    assert r.success_rate >= 0.9
    assert int(r.n_swaps.max()) <= 8
    assert torch.equal(r.tokens_adv[:, 0], x[:, 0])  # only editable positions change
    with torch.no_grad():
        assert torch.equal(token_model.run(r.tokens_adv)[:, -1].argmax(-1), r.adv_pred)


def test_gcg_untargeted_and_bad_inputs(token_model):
    gen = torch.Generator().manual_seed(tt.SCORE_SEED)
    x = tt.clean_batch(8, gen)
    r = gcg(token_model, x, labels=x[:, 0], positions=[0], steps=3, top_k=4)
    assert r.success_rate == 1.0  # changing the first token changes the answer
    with pytest.raises(ConfigError, match="target class 99 does not exist"):
        gcg(token_model, x, target=99)
    with pytest.raises(ConfigError, match="exactly one"):
        gcg(token_model, x)
    with pytest.raises(ConfigError, match="integer token ids"):
        gcg(token_model, x.float(), target=1)


def test_neural_cleanse_flags_the_trojan_class_not_the_twin():
    x, _ = digits("score")
    troj, twin = trojans.load("trojan-patch-digits"), trojans.load("twin-patch-digits")
    # 300 steps, as in the failures track: at 100 the masks of this organism have not converged
    # (mean L1 ≈ 26 against ≈ 12 at 300) and the twin's index came out higher
    a = neural_cleanse(troj.model, x[:100], steps=300)
    b = neural_cleanse(twin.model, x[:100], steps=300)
    assert a.flagged == troj.target
    assert a.anomaly_index > b.anomaly_index
    rec = a.triggers[troj.target]
    true_mask = torch.tensor(troj.trigger.mask)
    rand = random_trigger(troj.model, x[:100], troj.target, size=int((rec.mask > 0.5).sum()))
    assert trigger_iou(rec.mask, true_mask) > trigger_iou(rand.mask, true_mask)
    with pytest.raises(ConfigError, match="target class 12 does not exist"):
        reconstruct_trigger(troj.model, x[:10], 12)


def test_gcg_runs_on_the_hooked_llama_that_serves_smollm2():
    from interplab.models.pretrained.llama import LlamaConfig
    from tests.llama_helpers import random_llama

    model = random_llama(
        LlamaConfig(d_vocab=40, d_model=24, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=48, n_ctx=16)
    )
    x = torch.randint(0, 40, (6, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(
            model.run(x)[:, -1], torch.full((6,), 5), reduction="none"
        )
    r = gcg(model, x, target=5, steps=6, top_k=8, n_candidates=32, seed=0)
    assert bool((r.loss <= before + 1e-6).all()) and float(r.loss.mean()) < float(before.mean())
    assert r.success_rate >= 0.5
