from __future__ import annotations

import numpy as np

from interplab.compile.blocks import _discretising_mlp
from interplab.compile.residual_basis import BOS, Direction, ResidualLayout


def test_discretising_mlp_is_exact_on_points_and_off_at_bos():
    layout = ResidualLayout((Direction("one"), Direction(BOS), Direction("x"), Direction("y")))
    points = (0.0, 0.25, 0.5, 1.0)
    f = {0.0: 3.0, 0.25: -1.0, 0.5: -1.0, 1.0: 7.0}

    def g(p):
        out = np.zeros(4)
        out[3] = f[p]
        return out

    W_in, b_in, W_out = _discretising_mlp(layout, 2, points, g)
    assert W_in.shape[1] == 1 + 2 * 2  # no neurons where the output does not change
    for p in points:
        for noise in (0.0, 0.05, -0.05):
            resid = np.array([1.0, 0.0, p + noise, 0.0])
            out = np.maximum(resid @ W_in + b_in, 0) @ W_out
            assert abs(out[3] - f[p]) < 1e-9
    bos = np.array([1.0, 1.0, 1.0, 0.0])  # BOS position, even with x = 1 there
    assert np.all(np.maximum(bos @ W_in + b_in, 0) == 0)
