"""Integrated gradients / input x gradient on the MNIST MLP and the MiniLM encoder.

Returns plain dicts ready for JSON and the report (``completeness`` rows: output difference,
attribution sum, absolute error, per method and example).
"""

from __future__ import annotations

from typing import Any

import torch

from interplab.errors import ConfigError
from interplab.methods.attribution.gradients import (
    Attributions,
    input_x_gradient,
    integrated_gradients,
)


def _rows(label: str, attrs: list[Attributions]) -> list[dict[str, Any]]:
    rows = []
    for a in attrs:
        if a.output_diff is None or a.completeness_error is None:
            raise ConfigError(f"{a.method} attributions carry no completeness check")
        sums = a.values.flatten(1).sum(1)
        for i in range(len(sums)):
            rows.append(
                {
                    "example": f"{label}{i}",
                    "method": a.method,
                    "output_diff": float(a.output_diff[i]),
                    "attribution_sum": float(sums[i]),
                    "abs_error": float(a.completeness_error[i]),
                }
            )
    return rows


def attribute_mnist(n: int = 4, steps: int = 64) -> dict[str, Any]:
    """IG over pixels of ``n`` test images for the predicted class's pre-sigmoid score (fc2)."""
    from interplab.models.pretrained.mnist import load_mnist_mlp, load_mnist_test

    model = load_mnist_mlp()
    x, y = load_mnist_test()
    x = x[:n]
    with torch.no_grad():
        pred = model.run(x).argmax(1)

    def score(v: torch.Tensor) -> torch.Tensor:
        fc1, act1, fc2 = (model.module.get_submodule(name) for name in ("fc1", "act1", "fc2"))
        return fc2(act1(fc1(v)))[torch.arange(len(v)), pred]

    ig = integrated_gradients(score, x, steps=steps)
    ixg = input_x_gradient(score, x)
    return {
        "completeness": _rows("image", [ig, ixg]),
        "maps": ig.values.tolist(),
        "titles": [f"label {int(a)} pred {int(b)}" for a, b in zip(y[:n], pred)],
    }


def attribute_minilm(
    a: str = "A man is eating food.", b: str = "A man eats a meal.", steps: int = 64
) -> dict[str, Any]:
    """IG over the word embeddings of sentence ``a`` for its cosine similarity to ``b``
    (baseline: zero word embeddings; positions and token types are kept)."""
    from interplab.models.pretrained.minilm import load_minilm, mean_pool

    enc = load_minilm()
    inputs = enc.tokenize([a])
    target = enc.embed([b])[0]
    word = enc.hooked.module.get_submodule("embeddings.word_embeddings")
    with torch.no_grad():
        e = word(inputs["input_ids"])

    def sim(emb: torch.Tensor) -> torch.Tensor:
        n = emb.shape[0]
        hidden = enc.hooked.run(
            {
                "inputs_embeds": emb,
                "attention_mask": inputs["attention_mask"].expand(n, -1),
                "token_type_ids": inputs["token_type_ids"].expand(n, -1),
            }
        )
        pooled = torch.nn.functional.normalize(
            mean_pool(hidden, inputs["attention_mask"].expand(n, -1)), dim=-1
        )
        return pooled @ target

    ig = integrated_gradients(sim, e, steps=steps)
    ixg = input_x_gradient(sim, e)
    tokens = enc.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    return {
        "completeness": _rows("sentence", [ig, ixg]),
        "tokens": tokens,
        "ig": ig.values[0].sum(-1).tolist(),
        "ixg": ixg.values[0].sum(-1).tolist(),
    }
