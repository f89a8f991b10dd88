"""TRAK and EK-FAC side by side with their reference implementations, ``traker`` (MadryLab) and
``kronfluence`` (Bae et al.), on the same model and data: do the scores agree, how long does each take?

Config (fixed): organism ``digits-logreg`` by default (``--organism digits-mlp`` also works):
300 training digits, 50 test digits, the final checkpoint; torch threads = 1; traker on CPU in
float32 (``use_half_precision=False``), ours in float64.

    exact      proj_dim 256 with the *same* Gaussian projection matrix in both (handed to traker
               as a projector, rows permuted to its parameter order), no ridge: the same formula,
               so the scores should agree to float32 precision
    projected  proj_dim 256, each library with its own random Gaussian projection (traker's
               BasicProjector): the scores agree only as far as the projections preserve inner
               products

EK-FAC: kronfluence's ``ekfac`` strategy with the empirical Fisher (true labels, so neither side
samples) and damping = weight decay + interplab's damping added to the corrected eigenvalues,
float64; interplab's ``ekfac_preconditioner(..., labels=y)``. kronfluence scores are
grad(measurement)^T P grad(loss), interplab's the negative of that, so the sign is flipped
before comparing. kronfluence needs torchvision/accelerate by its metadata and pip resolves it
to a CUDA torch 2.14, so it is used from a ``pip install --no-deps --target DIR kronfluence
einops einconv opt_einsum accelerate psutil`` directory (``--kronfluence-path``), which imports
fine next to the CPU torch 2.13.

Prints one JSON line: {"benchmark": "data_attribution_speed", "organism", "trak": {"pearson_exact",
"spearman_exact", "pearson_projected", "seconds": {"interplab", "traker"}, "ratio"}, "ekfac":
{"pearson", "spearman", "seconds": {...}, "ratio"}, ...}; "ratio" = reference / interplab seconds
(> 1: interplab faster). A reference that is not installed gives null and a "*_note" saying why.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time

import torch

PROJ_DIM = 256
KRONFLUENCE_DIR = "/tmp/kronfluence-target"


def to_module(model, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """The interplab classifier as an nn.Sequential with the same weights."""
    from interplab.models.classifiers import unflatten

    layers = []
    pairs = unflatten(model.spec, model.theta)
    for k, (w, b) in enumerate(pairs):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers.append(lin)
        if k < len(pairs) - 1:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def our_projection(model, proj_dim: int, seed: int = 0) -> torch.Tensor:
    """The matrix interplab's TRAK draws for the final checkpoint (seed, one checkpoint)."""
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(len(model.theta), proj_dim, generator=gen, dtype=model.theta.dtype)
        / proj_dim**0.5
    )


def traker_order(model) -> torch.Tensor:
    """For each entry of traker's flat gradient (per layer: weight row-major, then bias), its
    index in interplab's flat layout (per layer: [out, in + 1] blocks)."""
    index, start = [], 0
    for o, i in model.spec.layers:
        block = torch.arange(start, start + o * (i + 1)).view(o, i + 1)
        index += [block[:, :i].flatten(), block[:, i]]
        start += o * (i + 1)
    return torch.cat(index)


def fixed_projector(matrix: torch.Tensor):
    from trak.projectors import AbstractProjector
    from trak.utils import vectorize

    class Fixed(AbstractProjector):
        def __init__(self) -> None:
            super().__init__(matrix.shape[0], matrix.shape[1], 0, "normal", "cpu")

        def project(self, grads, model_id: int) -> torch.Tensor:
            if isinstance(grads, dict):
                grads = vectorize(grads, device="cpu")
            return grads.double() @ matrix

        def free_memory(self) -> None:
            pass

    return Fixed()


def traker_scores(
    model, train, test, proj_dim: int, seed: int = 0, same_projection: bool = False
) -> torch.Tensor:
    """TRAK scores [n_test, n_train] from traker at the model's final weights."""
    from trak import TRAKer
    from trak.projectors import BasicProjector, ProjectionType

    net = to_module(model).eval()
    n_params = sum(p.numel() for p in net.parameters())
    dim = proj_dim
    if same_projection:
        projector = fixed_projector(our_projection(model, proj_dim, seed)[traker_order(model)])
    else:
        projector = BasicProjector(
            grad_dim=n_params,
            proj_dim=proj_dim,
            seed=seed,
            proj_type=ProjectionType.normal,
            device="cpu",
            dtype=torch.float32,
        )
    (xr, yr), (xt, yt) = train, test
    with tempfile.TemporaryDirectory() as tmp:
        tr = TRAKer(
            model=net,
            task="image_classification",
            train_set_size=len(xr),
            save_dir=tmp,
            device="cpu",
            projector=projector,
            proj_dim=dim,
            use_half_precision=False,
            load_from_save_dir=True,
            logging_level=logging.ERROR,
            lambda_reg=0.0,
        )
        tr.load_checkpoint(net.state_dict(), model_id=0)
        tr.featurize(batch=(xr.float(), yr), num_samples=len(xr))
        tr.finalize_features()
        tr.start_scoring_checkpoint(
            exp_name="bench", checkpoint=net.state_dict(), model_id=0, num_targets=len(xt)
        )
        tr.score(batch=(xt.float(), yt), num_samples=len(xt))
        scores = torch.as_tensor(tr.finalize_scores(exp_name="bench")).T.double().clone()
    return scores


def ours(model, train, test, proj_dim: int, seed: int = 0) -> torch.Tensor:
    from interplab.methods.data_attribution.trak import trak

    return trak(model, train, test, proj_dim=proj_dim, n_checkpoints=1, ridge=0.0, seed=seed)[0]


def kronfluence_scores(model, train, test, damping: float) -> torch.Tensor:
    """EK-FAC scores [n_test, n_train] from kronfluence (empirical Fisher, float64), sign flipped
    to interplab's convention."""
    import torch.nn.functional as F
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.task import Task

    from interplab.models.classifiers import margin

    class Classify(Task):
        def compute_train_loss(self, batch, model, sample=False):
            x, y = batch
            return F.cross_entropy(model(x), y, reduction="sum")

        def compute_measurement(self, batch, model):
            x, y = batch
            return margin(model(x), y).sum()

    net = prepare_model(to_module(model, torch.float64).eval(), Classify())
    (xr, yr), (xt, yt) = train, test
    train_ds = torch.utils.data.TensorDataset(xr.double(), yr)
    test_ds = torch.utils.data.TensorDataset(xt.double(), yt)
    f64 = torch.float64
    factor_args = FactorArguments(
        strategy="ekfac",
        use_empirical_fisher=True,
        activation_covariance_dtype=f64,
        gradient_covariance_dtype=f64,
        eigendecomposition_dtype=f64,
        per_sample_gradient_dtype=f64,
        lambda_dtype=f64,
    )
    score_args = ScoreArguments(
        damping_factor=damping,
        per_sample_gradient_dtype=f64,
        precondition_dtype=f64,
        score_dtype=f64,
    )
    with tempfile.TemporaryDirectory() as tmp:
        an = Analyzer(
            analysis_name="bench",
            model=net,
            task=Classify(),
            cpu=True,
            output_dir=tmp,
            disable_tqdm=True,
            disable_model_save=True,
        )
        an.fit_all_factors(
            factors_name="f",
            dataset=train_ds,
            per_device_batch_size=len(xr),
            factor_args=factor_args,
            overwrite_output_dir=True,
        )
        an.compute_pairwise_scores(
            scores_name="s",
            factors_name="f",
            query_dataset=test_ds,
            train_dataset=train_ds,
            per_device_query_batch_size=len(xt),
            per_device_train_batch_size=len(xr),
            score_args=score_args,
            overwrite_output_dir=True,
        )
        scores = an.load_pairwise_scores("s")["all_modules"].double().clone()
    return -scores


def ours_ekfac(model, train, test) -> torch.Tensor:
    from interplab.methods.data_attribution.influence import ekfac_preconditioner
    from interplab.methods.data_attribution.scoring import preconditioned_scores

    pre = ekfac_preconditioner(model.spec, model.theta, train[0], labels=train[1])
    return preconditioned_scores(
        model.spec, model.theta, train, test, pre, self_influence=False, batch_size=128
    )[0]


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def compare_trak(model, train, test) -> dict:
    a = ours(model, train, test, PROJ_DIM)  # also the warm-up (vmap tracing)
    b = traker_scores(model, train, test, PROJ_DIM, same_projection=True)
    out = {"pearson_exact": pearson(a, b), "spearman_exact": mean_row_spearman(a, b)}
    a, t_ours = _timed(lambda: ours(model, train, test, PROJ_DIM))
    b, t_ref = _timed(lambda: traker_scores(model, train, test, PROJ_DIM))
    out.update(
        pearson_projected=pearson(a, b),
        spearman_projected=mean_row_spearman(a, b),
        seconds={"interplab": t_ours, "traker": t_ref},
        ratio=t_ref / t_ours,
    )
    return out


def compare_ekfac(model, train, test) -> dict:
    from interplab.methods.data_attribution.influence import DAMPING

    ours_ekfac(model, train, test)  # warm-up
    a, t_ours = _timed(lambda: ours_ekfac(model, train, test))
    b, t_ref = _timed(
        lambda: kronfluence_scores(model, train, test, model.spec.weight_decay + DAMPING)
    )
    return {
        "pearson": pearson(a, b),
        "spearman": mean_row_spearman(a, b),
        "seconds": {"interplab": t_ours, "kronfluence": t_ref},
        "ratio": t_ref / t_ours,
    }


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def mean_row_spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    from interplab.eval.data_attribution import spearman_rows

    return float(spearman_rows(a, b)[0].mean())


def main() -> None:
    import os
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organism", default="digits-logreg")
    parser.add_argument(
        "--kronfluence-path",
        default=KRONFLUENCE_DIR,
        help="a `pip install --no-deps --target` directory holding kronfluence",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    from interplab.zoo.data_attribution import load_or_train

    org = load_or_train(args.organism)
    d = org.data
    train, test = (d.x_train, d.y_train), (d.x_test, d.y_test)
    out: dict = {
        "benchmark": "data_attribution_speed",
        "organism": args.organism,
        "threads": 1,
        "proj_dim": PROJ_DIM,
        "n_train": len(d.x_train),
        "n_test": len(d.x_test),
    }
    try:
        import trak  # noqa: F401

        out["trak"] = compare_trak(org.model, train, test)
    except ImportError:
        out.update(trak=None, trak_note="traker is not installed (pip install traker)")
    if os.path.isdir(args.kronfluence_path):
        sys.path.append(args.kronfluence_path)
    try:
        import kronfluence  # noqa: F401

        out["ekfac"] = compare_ekfac(org.model, train, test)
    except ImportError as exc:
        out.update(
            ekfac=None,
            ekfac_note=f"kronfluence not importable ({exc}); install it with "
            f"pip install --no-deps --target {args.kronfluence_path} kronfluence einops einconv "
            "opt_einsum accelerate psutil",
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
