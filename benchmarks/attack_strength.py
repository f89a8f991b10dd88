"""Attack strength and speed, ours vs torchattacks, side by side in one run.

Same model (the unpoisoned 8×8-digits twin), same inputs (the 300-image score split), same ε,
step size and steps: PGD L∞ (ε = 0.05, 10 steps) and PGD L2 (ε = 0.8, 10 steps). Prints ONE
JSON line: success rates of both with Wilson 95% intervals (they should overlap: the same
algorithm, different random starts), and the time ratio ours / theirs. Without torchattacks
installed (`pip install 'interplab[reference]'`), the reference fields are null with a note.

    .venv/bin/python benchmarks/attack_strength.py
"""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved_medians


class _Images(torch.nn.Module):
    """[batch, 1, 8, 8] images → the flat MLP (torchattacks' L2 attack expects 4-d inputs)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


def main() -> int:
    torch.set_num_threads(1)
    from interplab.eval.stats import wilson
    from interplab.methods.attacks import pgd
    from interplab.models.trojans import digits
    from interplab.zoo import trojans

    model = trojans.load("twin-patch-digits").model
    x, y = digits("score")
    net = _Images(model.module)
    try:
        import torchattacks
    except ImportError:
        torchattacks = None
    out: dict = {
        "benchmark": "attack_strength",
        "model": "twin-patch-digits",
        "n_inputs": len(x),
        "torch_threads": 1,
        "attacks": {},
    }
    for norm, eps in (("linf", 0.05), ("l2", 0.8)):
        alpha, steps = eps / 4, 10
        ours = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, norm=norm, seed=0)
        keep = ours.clean_correct
        row = {
            "eps": eps,
            "alpha": alpha,
            "steps": steps,
            "ours": wilson(ours.n_success, ours.n).as_dict(),
            "reference": None,
            "ratio": None,
        }
        if torchattacks is not None:
            cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
            ref = cls(net, eps=eps, alpha=alpha, steps=steps)
            torch.manual_seed(0)
            adv = ref(x.view(-1, 1, 8, 8), y)
            with torch.no_grad():
                wrong = net(adv).argmax(-1) != y
            row["reference"] = {
                "name": f"torchattacks {cls.__name__}",
                **wilson(int(wrong[keep].sum()), int(keep.sum())).as_dict(),
            }
            times = interleaved_medians(
                {
                    "ours": lambda: pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, norm=norm),  # noqa: B023 (called before the loop moves on)
                    "theirs": lambda: ref(x.view(-1, 1, 8, 8), y),  # noqa: B023 (called before the loop moves on)
                },
                repeats=5,
                warmup=1,
            )
            row["ratio"] = round(times["ours"] / times["theirs"], 3)
            row["seconds"] = {k: round(v, 4) for k, v in times.items()}
        out["attacks"][f"pgd_{norm}"] = row
    if torchattacks is None:
        out["reference_note"] = "torchattacks not installed: pip install 'interplab[reference]'"
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
