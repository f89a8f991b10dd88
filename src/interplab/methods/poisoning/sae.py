"""SAE-feature poison detector: find the dictionary latents a backdoor lives in, without the truth.

A TopK SAE (:mod:`interplab.methods.dictionaries`) is trained on the hidden activations of the
(possibly poisoned) training set. For each latent ``j`` with firing set ``F_j`` (examples where
it is > 0) we measure three things, all from the training set and the model:

    frequency  |F_j| / n                       a backdoor fires on a small subset
    purity     largest share of one label in F_j   poison all carries the target label
    necessity  share of F_j whose predicted label changes when the latent's contribution
               ``a_ij * d_j`` is subtracted from the hidden activations (the rest, the SAE's
               error included, stays): a trigger latent carries the label on its own, whereas
               a latent for one style of a digit is one of several that agree

A latent with frequency above ``max_frequency`` is not a candidate; a candidate's suspicion is
``purity * necessity``. An example's score is the largest ``suspicion_j * a_ij / max_i a_ij``
over candidates (its activation on the most suspicious latents, normalised per latent by the
training maximum), so new inputs are scored by the same formula after encoding.
"""

from __future__ import annotations

import torch

from interplab.methods.poisoning.baselines import METRIC
from interplab.methods.registry import register

Tensor = torch.Tensor


@register("poisoning", "sae_features", kind="method", cost_unit="passes", metric=METRIC)
class SAEFeatures:
    """Suspicious TopK-SAE latents: rare, label-pure and necessary for the prediction."""

    needs_site = True

    def __init__(
        self,
        seed: int = 0,
        d_latent: int = 128,
        k: int = 8,
        steps: int = 1000,
        lr: float = 3e-3,
        batch_size: int = 256,
        max_frequency: float = 0.25,
        top: int = 5,
    ) -> None:
        from interplab.methods.dictionaries import DictionaryConfig

        self.cfg = DictionaryConfig(
            d_in=1,
            d_latent=d_latent,
            activation="topk",
            k=k,
            lr=lr,
            batch_size=batch_size,
            steps=steps,
            log_every=max(1, steps),
            seed=seed,
        )
        self.seed, self.max_frequency, self.top = seed, max_frequency, top

    def fit(self, batch) -> SAEFeatures:
        from dataclasses import replace

        from interplab.methods.dictionaries import train_dictionary

        h, y = batch.hidden, batch.y
        self.config_ = replace(self.cfg, d_in=h.shape[1])
        trained = train_dictionary(h, self.config_)
        self.sae_ = trained.dictionary.eval()
        with torch.no_grad():
            a = self.sae_.encode(h)
            pred = batch.logits.argmax(-1)
            fires = a > 0
            freq = fires.float().mean(0)
            n_labels = int(y.max()) + 1
            counts = torch.stack(
                [(fires & (y == c)[:, None]).sum(0) for c in range(n_labels)]
            )  # [label, latent]
            purity = counts.max(0).values / fires.sum(0).clamp_min(1)
            necessity = torch.zeros(a.shape[1])
            candidates = ((freq > 0) & (freq <= self.max_frequency)).nonzero().flatten().tolist()
            for j in candidates:
                rows = fires[:, j]
                without = h - a[:, j : j + 1] * self.sae_.W_dec[j]
                changed = batch.logits_from_hidden(without).argmax(-1) != pred
                necessity[j] = changed[rows].float().mean()
        self.suspicion_ = torch.zeros(a.shape[1])
        self.suspicion_[candidates] = (purity * necessity)[candidates]
        self.scale_ = a.max(0).values.clamp_min(1e-12)
        order = self.suspicion_.argsort(descending=True)[: self.top].tolist()
        self.details_ = {
            "variance_explained": (
                trained.history[-1].get("variance_explained") if trained.history else None
            ),
            "candidates": len(candidates),
            "top_latents": [
                {
                    "latent": j,
                    "suspicion": round(float(self.suspicion_[j]), 4),
                    "frequency": round(float(freq[j]), 4),
                    "purity": round(float(purity[j]), 4),
                    "necessity": round(float(necessity[j]), 4),
                    "label": int(counts[:, j].argmax()),
                }
                for j in order
            ],
        }
        self.scores_ = self._score(a)
        return self

    def _score(self, a: Tensor) -> Tensor:
        return (a / self.scale_ * self.suspicion_).max(1).values

    def score(self, batch) -> Tensor:
        with torch.no_grad():
            return self._score(self.sae_.encode(batch.hidden))
