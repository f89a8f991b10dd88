"""Hooked runs keep freed memory for reuse by default (once per process); opting out works."""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = """
import torch
from interplab.core import memory
from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer
{opt}
assert not memory._policy["applied"]
m = HookedTransformer(TransformerConfig(n_layers=1, d_model=8, n_heads=2, d_head=4, d_mlp=16, d_vocab=5, n_ctx=4))
m.run_with_cache(torch.zeros(1, 3, dtype=torch.long))
print(memory._policy["applied"])
"""


def _applied(opt: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", CODE.format(opt=opt)], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_first_hooked_run_applies_the_policy():
    assert _applied("") == "True"


@pytest.mark.slow
def test_return_freed_memory_opts_out():
    assert _applied("memory.return_freed_memory()") == "False"
