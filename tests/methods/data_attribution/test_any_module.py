"""Training-data attribution on a user's own torch module (not an interplab organism): the
module path gives the flat-classifier path's scores on the same network, EK-FAC's factors of
Linear and Conv2d layers match per-example autograd gradients, bad input is a one-line error,
and (slow) the scores predict real retraining of an nn.Sequential better than chance."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from interplab.core.threads import one_thread
from interplab.errors import ConfigError, ShapeError, UnknownNameError
from interplab.methods.data_attribution import attribute_data
from interplab.methods.data_attribution.ekfac_modules import covered_layers, module_ekfac_factors
from interplab.methods.data_attribution.gradients import loss_grads, measurement_grads
from interplab.models.classifiers import ClassifierSpec, train_classifier, unflatten
from interplab.models.module_classifier import from_module

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "tda_any_module.py"
SPEC = ClassifierSpec(
    "mlp", n_in=6, n_classes=3, n_hidden=5, weight_decay=1e-2, steps=40, lr=0.05, n_checkpoints=2
)


def _sequential(theta: torch.Tensor) -> torch.nn.Sequential:
    """The flat MLP's network as an nn.Sequential with the same weights (float64)."""
    (w1, b1), (w2, b2) = unflatten(SPEC, theta)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    net = net.double()
    with torch.no_grad():
        for layer, w, b in ((net[0], w1, b1), (net[2], w2, b2)):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    return net


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one torch thread (more only add contention)."""
    with one_thread():
        yield


@pytest.fixture(scope="module")
def flat_and_module():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    y = x[:, :3].argmax(1)
    with one_thread():
        model = train_classifier(SPEC, x, y)
    return model, _sequential(model.theta), (x, y), (x[:7], y[:7])


@pytest.mark.parametrize(
    "method, settings",
    [
        ("grad_dot", {}),
        ("grad_cos", {}),
        ("if_exact", {}),
        ("if_cg", {}),
        ("ekfac", {}),
        ("trak", {"proj_dim": None}),
        ("representer", {}),
    ],
)
def test_module_path_gives_the_flat_path_scores(flat_and_module, method, settings):
    """Same network, same weights, same weight decay: the scores agree to rounding (the
    parameter layouts differ, which these methods do not see)."""
    model, net, train, test = flat_and_module
    selfs = method not in ("grad_cos", "if_cg")  # (CG's self-influence: one solve per batch)
    ckpts = [_sequential(t).state_dict() for t in model.checkpoints] if method == "trak" else None
    a = attribute_data(model, train, test, method=method, self_influence=selfs, **settings)
    b = attribute_data(
        net,
        train,
        test,
        method=method,
        self_influence=selfs,
        batch_size=16,
        checkpoints=ckpts,
        weight_decay=SPEC.weight_decay,
        **settings,
    )
    tol = 1e-6 if method == "if_cg" else 1e-10  # CG stops on a tolerance, in other chunks
    scale = a.scores.abs().max()
    assert float((a.scores - b.scores).abs().max()) <= tol * float(scale)
    if selfs:
        assert torch.allclose(a.self_influence, b.self_influence, rtol=tol, atol=0)
    assert net.training  # the module's mode is restored


def test_module_checkpoints_feed_tracin(flat_and_module):
    """TracIn over the state dicts given: the flat path's sum, whose checkpoints weigh the
    step size (a module's weigh 1)."""
    model, net, train, test = flat_and_module
    ckpts = [_sequential(t).state_dict() for t in model.checkpoints]
    a = attribute_data(model, train, test, method="tracin")
    b = attribute_data(net, train, test, method="tracin", checkpoints=ckpts)
    assert torch.allclose(a.scores, SPEC.lr * b.scores, rtol=1e-10, atol=1e-12)
    single = attribute_data(net, train, test, method="tracin")
    assert not torch.allclose(single.scores, b.scores)


def test_custom_loss_scales_the_loss_gradients(flat_and_module):
    """loss = 2 x cross-entropy doubles grad_dot's scores and halves nothing else."""
    _, net, train, test = flat_and_module

    def double_ce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 2 * torch.nn.functional.cross_entropy(z, y, reduction="none")

    a = attribute_data(net, train, test, method="grad_dot")
    b = attribute_data(net, train, test, method="grad_dot", loss=double_ce)
    assert torch.allclose(2 * a.scores, b.scores, rtol=1e-10, atol=0)
    # with the curvature of the doubled loss (and doubled damping) the influence is unchanged:
    # exact Hessian by autograd, and the Gauss-Newton product through the loss's own Hessian
    for method, tol in (("if_exact", 1e-8), ("if_cg", 1e-3)):  # CG stops on a tolerance
        c = attribute_data(net, train, test, method=method, damping=1e-3)
        d = attribute_data(net, train, test, method=method, loss=double_ce, damping=2e-3)
        assert float((c.scores - d.scores).abs().max()) <= tol * float(c.scores.abs().max())


def _tiny_cnn() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    from interplab.data.digits import load_digits

    x, y = load_digits()
    x, y = x[:48].view(-1, 1, 8, 8), y[:48]
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(3, 4, 3, stride=2),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.LayerNorm(36),
        torch.nn.Linear(36, 10),
    ).double()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net, x, y


def test_conv_ekfac_matches_per_example_gradients():
    """On a tiny CNN over 8x8 digits: the corrected eigenvalues of each Conv2d / Linear block
    equal E_n E_y~model[(Q_S^T G Q_A)^2] for the per-example gradients G computed by autograd
    (so the unfolded patches line up with the weights), the LayerNorm's diagonal E[g^2]."""
    net, x, y = _tiny_cnn()
    net.eval()
    tm = from_module(net, x)
    assert covered_layers(tm.spec, tm.theta, x[:2]) == ["0", "2", "6"]
    f = module_ekfac_factors(tm.spec, tm.theta, x, y, batch_size=16)
    p = torch.softmax(net(x).detach(), -1)
    grads = [loss_grads(tm.spec, tm.theta, x, torch.full((len(x),), c)) for c in range(10)]
    for index, qs, qa, lam in f.layers:
        ref = sum(
            (p[:, c, None, None] * (qs.T @ grads[c][:, index] @ qa) ** 2).sum(0) for c in range(10)
        )
        assert torch.allclose(lam, ref / len(x), rtol=1e-8, atol=1e-14)
    assert len(f.diag_index) == 72  # the LayerNorm's scale and shift
    ref = sum((p[:, c, None] * grads[c][:, f.diag_index] ** 2).sum(0) for c in range(10))
    assert torch.allclose(f.diag, ref / len(x), rtol=1e-8, atol=1e-14)
    att = attribute_data(net, (x, y), (x[:5], y[:5]), method="ekfac", self_influence=True)
    assert att.scores.shape == (5, 48) and torch.isfinite(att.scores).all()
    assert (att.self_influence > 0).all()


class _TokenModel(torch.nn.Module):
    """Token ids [n, 3] -> embedding -> LayerNorm -> Linear logits [n, 3]."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(7, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.out = torch.nn.Linear(12, 3)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.emb(t)).flatten(1))


def test_integer_inputs_and_embeddings():
    """Token-id inputs stay integers; EK-FAC factors the Linear layer and puts the embedding
    and norm on its diagonal (still exact on them: E[g^2])."""
    torch.manual_seed(0)
    net = _TokenModel().double()
    x = torch.randint(0, 7, (30, 3), generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (30,), generator=torch.Generator().manual_seed(2))
    tm = from_module(net, x)
    assert covered_layers(tm.spec, tm.theta, x[:2]) == ["out"]
    f = module_ekfac_factors(tm.spec, tm.theta, x, y, batch_size=8, fisher="empirical")
    g = loss_grads(tm.spec, tm.theta, x, y)
    assert torch.allclose(f.diag, (g[:, f.diag_index] ** 2).mean(0), rtol=1e-8, atol=1e-14)
    for method in ("ekfac", "grad_dot", "nn_input"):
        att = attribute_data(net, (x, y), (x[:4], y[:4]), method=method, batch_size=8)
        assert att.scores.shape == (4, 30) and torch.isfinite(att.scores).all()


class _Doubled(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * self.lin(x)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_sequential_is_rebuilt_eager(flat_and_module):
    """A scripted Sequential of stock layers (what a .pt file holds) is attributed through an
    eager copy: the same scores; a scripted module with its own forward is a one-line error."""
    _, net, train, test = flat_and_module
    for method in ("grad_dot", "ekfac"):
        a = attribute_data(net, train, test, method=method)
        b = attribute_data(torch.jit.script(net), train, test, method=method)
        assert torch.allclose(a.scores, b.scores, rtol=1e-10, atol=1e-12)
    with pytest.raises(ConfigError, match="TorchScript module _Doubled cannot be attributed"):
        attribute_data(torch.jit.script(_Doubled().double()), train, test, method="grad_dot")


def test_bad_input_is_a_one_line_error(flat_and_module):
    _, net, (x, y), _ = flat_and_module
    train = (x, y)
    cases = [
        (ConfigError, "test inputs must be", dict(test=(x[:, :4], y))),
        (ShapeError, "fails on inputs of shape", dict(train=(x[:, :4], y))),
        (ConfigError, "labels must lie in 0..2", dict(test=(x, y + 5))),
        (ConfigError, "takes no setting proj_dim", dict(proj_dim=3)),
        (ShapeError, "one value per example", dict(loss=torch.nn.functional.cross_entropy)),
        (ConfigError, "no entry '0.weight'", dict(method="tracin", checkpoints=[{}])),
        (ConfigError, "weight decay the model was trained with", dict(method="representer")),
        (ConfigError, "fisher must be one of", dict(method="ekfac", fisher="nope")),
    ]
    for error, message, kw in cases:
        args = {"train": train, "test": (x, y), "method": "grad_dot", **kw}
        with pytest.raises(error, match=message) as info:
            attribute_data(net, args.pop("train"), args.pop("test"), **args)
        assert "\n" not in str(info.value)
    with pytest.raises(ShapeError, match=r"class logits \[n, K\]"):
        attribute_data(torch.nn.Linear(6, 1).double(), train, train, method="grad_dot")
    big = torch.nn.Sequential(torch.nn.Linear(6, 1000), torch.nn.Linear(1000, 3))
    with pytest.raises(ConfigError, match="too large"):
        attribute_data(big, (x.float(), y), (x.float(), y), method="if_exact")
    with pytest.raises(UnknownNameError, match="trak"):
        attribute_data(net, train, train, method="trakk")


def _bench():
    spec = importlib.util.spec_from_file_location("tda_any_module", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("tda_any_module", mod)  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_lds_on_a_sequential_beats_random():
    """An MLP trained here (not an organism), retrained on 24 random halves: the influence and
    TRAK scores' LDS exceeds the top of the random control's interval."""
    bench = _bench()
    case = bench.make_case(n_train=160, n_test=20, seed=0)
    truth = bench.retraining_truth(case, n_subsets=24)
    lds = {m: bench.lds_of(case, truth, m) for m in ("if_exact", "ekfac", "trak", "random")}
    for m in ("if_exact", "ekfac", "trak"):
        assert lds[m].value > lds["random"].high, (m, lds[m])


class _Bilinear(torch.nn.Module):
    """Class logits x @ W with W a bare parameter: no Linear or Conv2d layer for EK-FAC."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.w = torch.nn.Parameter(torch.randn(4, 3, generator=gen, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def test_ekfac_without_factored_layers_is_the_empirical_diagonal():
    """Every parameter on the diagonal: with true labels the scores must be
    -g_t^T diag(1 / (mean g_i^2 + damping)) g_i, computed here from per-example gradients."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (20,), generator=gen)
    net, damping = _Bilinear(), 0.1
    got = attribute_data(
        net, (x, y), (x[:3], y[:3]), method="ekfac", fisher="empirical", damping=damping
    ).scores
    clf = from_module(net, x)
    g = loss_grads(clf.spec, clf.theta, x, y)
    g_t = measurement_grads(clf.spec, clf.theta, x[:3], y[:3])  # d margin / d theta
    want = -(g_t / ((g**2).mean(0) + damping)) @ g.T
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-9)
