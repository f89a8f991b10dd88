"""LoRA adapters on the hooked Llama: zero-initialised adapters change nothing, only adapters
train, adapters_off gives the base logits back, functional_call reaches the adapters."""

from __future__ import annotations

import pytest
import torch

from interplab.core.threads import one_thread
from interplab.errors import ConfigError
from interplab.models import lora
from interplab.models.pretrained.llama import LlamaConfig
from tests.llama_helpers import random_llama


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


CFG = LlamaConfig(d_vocab=23, d_model=16, n_layers=3, n_heads=4, n_kv_heads=2, d_mlp=24)


def _model():
    return random_llama(CFG, seed=1).model


def _tokens():
    return torch.randint(0, CFG.d_vocab, (3, 7), generator=torch.Generator().manual_seed(0))


def test_zero_init_leaves_logits_unchanged_and_only_adapters_train():
    model = _model()
    x = _tokens()
    with torch.no_grad():
        before = model(x)
    names = lora.attach_lora(model, lora.LoRAConfig(layers=(-2, -1), rank=2))
    with torch.no_grad():
        assert torch.equal(model(x), before)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == names and names
    assert all(".lora_" in n and n.startswith(("blocks.1.", "blocks.2.")) for n in names)
    # 7 targets x (A, B) x 2 blocks
    assert len(names) == 28
    loss = model(x).logsumexp(-1).mean()
    loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n not in names)
    # B = 0 at init: A's gradient is zero, B's is not
    grads = dict(model.named_parameters())
    assert any(grads[n].grad.abs().sum() > 0 for n in names if n.endswith("lora_B"))


def test_adapters_off_restores_base_logits():
    model = _model()
    x = _tokens()
    with torch.no_grad():
        base = model(x)
    lora.attach_lora(model, lora.LoRAConfig(layers=(0,), targets=("W_Q", "W_up"), rank=3))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("lora_B"):
                p.normal_(0, 0.5)
        changed = model(x)
        assert not torch.allclose(changed, base)
        with lora.adapters_off(model):
            assert torch.allclose(model(x), base, atol=1e-6)
        assert torch.allclose(model(x), changed)


def test_state_roundtrip_and_functional_call():
    model = _model()
    lora.attach_lora(model, lora.LoRAConfig(layers=(1,), rank=2, seed=5))
    state = lora.adapter_state(model)
    assert set(state) == set(lora.adapter_names(model))
    moved = {k: v + 0.1 for k, v in state.items()}
    x = _tokens()
    with torch.no_grad():
        via_call = torch.func.functional_call(model, moved, (x,))
        lora.load_adapter_state(model, moved)
        assert torch.allclose(model(x), via_call, atol=1e-6)
    with pytest.raises(ConfigError):
        lora.load_adapter_state(model, {"nope": torch.zeros(1)})


def test_bad_configs_are_refused():
    with pytest.raises(ConfigError):
        lora.LoRAConfig(layers=(0,), targets=("W_X",))
    with pytest.raises(ConfigError):
        lora.attach_lora(_model(), lora.LoRAConfig(layers=(7,)))
    model = _model()
    lora.attach_lora(model, lora.LoRAConfig(layers=(0,)))
    with pytest.raises(ConfigError):
        lora.attach_lora(model, lora.LoRAConfig(layers=(0,)))
