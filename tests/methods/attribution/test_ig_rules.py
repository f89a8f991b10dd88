"""Integrated gradients under both quadrature rules: Gauss-Legendre is exact on a cubic path,
and both rules match captum to 1e-6 where captum is installed."""

import pytest
import torch

from interplab.methods.attribution.gradients import integrated_gradients


def cubic(x):
    return (x**3).sum(1) + 2 * x[:, 0] * x[:, 1]


def test_gauss_legendre_is_exact_on_a_polynomial():
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    gl = integrated_gradients(cubic, x, steps=2, rule="gauss_legendre")
    mid = integrated_gradients(cubic, x, steps=2, rule="midpoint")
    assert float(gl.completeness_error.max()) < 1e-12
    assert float(mid.completeness_error.max()) > 1e-3  # the midpoint rule is not exact here


@pytest.mark.parametrize(
    "rule, captum_rule", [("midpoint", "riemann_middle"), ("gauss_legendre", "gausslegendre")]
)
def test_matches_captum(rule, captum_rule):
    captum = pytest.importorskip("captum.attr")
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    fn = lambda x: torch.tanh(x @ w).sum(1)  # noqa: E731
    x = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    ours = integrated_gradients(fn, x, steps=16, rule=rule).values
    ref = captum.IntegratedGradients(fn).attribute(
        x, baselines=torch.zeros_like(x), n_steps=16, method=captum_rule
    )
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
