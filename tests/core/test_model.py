"""HookedModel behaviour on the native transformer: caching, interventions, hook hygiene."""

import pytest
import torch

from interplab.core.cache import CacheSpec
from interplab.core.hooks import count_hooks
from interplab.core.interventions import Mean, Patch, Replace, Resample, Steer, Zero
from interplab.core.model import mean_activations, wrap_module
from interplab.core.sites import Component as C
from interplab.core.sites import Site
from interplab.errors import ShapeError, SiteError


def test_logits_match_plain_forward(tiny_model, tokens):
    plain = tiny_model.model(tokens)
    out, cache = tiny_model.run_with_cache(tokens, tiny_model.default_sites)
    assert (out - plain).abs().max() <= 1e-6
    assert len(cache) == len(tiny_model.default_sites)
    assert torch.equal(cache[Site(C.LOGITS)], out)


def test_on_demand_sites_agree_with_fused_path(tiny_model, tokens):
    _, cache = tiny_model.run_with_cache(
        tokens,
        [Site(C.ATTN_RESULT, 0), Site(C.ATTN_OUT, 0), Site(C.ATTN_V_IN, 1), Site(C.RESID_PRE, 1)],
    )
    b_O = tiny_model.model.blocks[0].attn.b_O
    assert torch.allclose(
        cache[Site(C.ATTN_RESULT, 0)].sum(2) + b_O, cache[Site(C.ATTN_OUT, 0)], atol=1e-5
    )
    for h in range(tiny_model.cfg.n_heads):
        assert torch.equal(cache[Site(C.ATTN_V_IN, 1, h)], cache[Site(C.RESID_PRE, 1)])


def test_zero_ablating_a_head_matches_hand_computation(tokens):
    from interplab.models.config import TransformerConfig
    from interplab.models.transformer import HookedTransformer

    cfg = TransformerConfig(
        n_layers=1,
        d_model=16,
        n_heads=3,
        d_head=4,
        d_mlp=1,
        d_vocab=20,
        n_ctx=16,
        attn_only=True,
        normalization="none",
        init_std=0.3,
        seed=1,
    )
    model = HookedTransformer(cfg)
    m = model.model
    a = m.blocks[0].attn
    with torch.no_grad():
        x = m.embed.W_E[tokens] + m.pos_embed.W_pos[: tokens.shape[1]]
        heads = []
        for h in range(3):
            q = x @ a.W_Q[h] + a.b_Q[h]
            k = x @ a.W_K[h] + a.b_K[h]
            v = x @ a.W_V[h] + a.b_V[h]
            s = q @ k.transpose(-1, -2) / cfg.d_head**0.5
            s = s.masked_fill(torch.ones(10, 10, dtype=torch.bool).triu(1), float("-inf"))
            heads.append(s.softmax(-1) @ v @ a.W_O[h])
        expected = (x + heads[0] + heads[2] + a.b_O) @ m.unembed.W_U + m.unembed.b_U
    got = model.run_with(tokens, [Zero(Site(C.ATTN_Z, 0, 1))])
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, model.run(tokens), atol=1e-3)


def test_patching_full_cache_reproduces_source_run(tiny_model, tokens, other_tokens):
    out_a, cache_a = tiny_model.run_with_cache(tokens, tiny_model.default_sites)
    patches = [Patch(s, value=cache_a) for s in tiny_model.default_sites]
    out = tiny_model.run_with(other_tokens, patches)
    assert torch.equal(out, out_a)
    # Patching one early residual site alone is enough to reproduce the source run too.
    out2 = tiny_model.run_with(other_tokens, [Patch(Site(C.RESID_PRE, 0), value=cache_a)])
    assert torch.allclose(out2, out_a, atol=1e-6)


def test_per_head_patch_from_per_head_cache(tiny_model, tokens, other_tokens):
    site = Site(C.ATTN_Z, 1, 2)
    _, cache = tiny_model.run_with_cache(tokens, [site])
    _, patched = tiny_model.run_with_cache(
        other_tokens, [Site(C.ATTN_Z, 1)], interventions=[Patch(site, value=cache)]
    )
    z = patched[Site(C.ATTN_Z, 1)]
    assert torch.equal(z[:, :, 2], cache[site])
    _, clean_b = tiny_model.run_with_cache(other_tokens, [Site(C.ATTN_Z, 1)])
    assert torch.equal(z[:, :, 0], clean_b[Site(C.ATTN_Z, 1)][:, :, 0])


def test_resample_and_mean_and_steer(tiny_model, tokens, other_tokens):
    site = Site(C.MLP_OUT, 0)
    _, src = tiny_model.run_with_cache(other_tokens, [site])
    _, got = tiny_model.run_with_cache(
        tokens, [site], interventions=[Resample(site, source=other_tokens)]
    )
    assert torch.equal(got[site], src[site])
    means = mean_activations(tiny_model, other_tokens, [site])
    _, got = tiny_model.run_with_cache(
        tokens, [site], interventions=[Mean(site, reference=other_tokens)]
    )
    assert torch.allclose(got[site], means[site].expand_as(got[site]))
    _, base = tiny_model.run_with_cache(tokens, [site])
    vec = torch.randn(tiny_model.cfg.d_model)
    _, got = tiny_model.run_with_cache(
        tokens,
        [site],
        interventions=[Steer(site, vector=vec, scale=2.0), Steer(site, vector=vec, scale=-0.5)],
    )
    assert torch.allclose(got[site], base[site] + 1.5 * vec, atol=1e-6)


def test_positions_restrict_an_intervention(tiny_model, tokens):
    site = Site(C.RESID_POST, 0)
    _, base = tiny_model.run_with_cache(tokens, [site])
    _, got = tiny_model.run_with_cache(tokens, [site], interventions=[Zero(site, positions=(2, 5))])
    assert torch.all(got[site][:, [2, 5]] == 0)
    keep = [i for i in range(tokens.shape[1]) if i not in (2, 5)]
    assert torch.equal(got[site][:, keep], base[site][:, keep])


def test_selective_cache_spec(tiny_model, tokens):
    site = Site(C.RESID_POST, 1)
    _, cache = tiny_model.run_with_cache(
        tokens, [site], spec={site: CacheSpec(positions=(-1,), dtype=torch.float16)}
    )
    assert (
        cache[site].shape == (3, 1, tiny_model.cfg.d_model) and cache[site].dtype == torch.float16
    )
    assert len(cache) == 1


def test_keep_grad_allows_attribution(tiny_model, tokens):
    site = Site(C.RESID_MID, 0)
    out, cache = tiny_model.run_with_cache(tokens, [site], keep_grad=True)
    (grad,) = torch.autograd.grad(out[:, -1, 0].sum(), cache[site])
    assert grad.shape == cache[site].shape and grad.abs().sum() > 0


def test_stack_helpers(tiny_model, tokens):
    _, cache = tiny_model.run_with_cache(tokens)
    assert cache.stack(C.RESID_POST).shape == (2, 3, 10, 32)
    assert cache.stack_heads(C.ATTN_Z).shape == (2, 4, 3, 10, 8)
    assert cache.stack_heads(C.ATTN_PATTERN).shape == (2, 4, 3, 10, 10)


# ---------------------------------------------------------------- bad input


def test_unknown_site_names_close_matches(tiny_model, tokens):
    with pytest.raises(SiteError, match="no site L7.resid_pre"):
        tiny_model.run_with_cache(tokens, [Site(C.RESID_PRE, 7)])


def test_patch_shape_mismatch(tiny_model, tokens):
    bad = torch.zeros(3, 10, 5)
    with pytest.raises(ShapeError, match="shape"):
        tiny_model.run_with(tokens, [Patch(Site(C.RESID_PRE, 0), value=bad)])


def test_cache_from_other_batch_size(tiny_model, tokens):
    _, cache = tiny_model.run_with_cache(tokens[:2], [Site(C.RESID_PRE, 0)])
    with pytest.raises(ShapeError, match="batch of 2"):
        tiny_model.run_with(tokens, [Patch(Site(C.RESID_PRE, 0), value=cache)])


def test_resample_batch_mismatch(tiny_model, tokens):
    with pytest.raises(ShapeError, match="same size"):
        tiny_model.run_with(tokens, [Resample(Site(C.RESID_PRE, 0), source=tokens[:1])])


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (torch.zeros(3, 10), "integers"),
        (torch.zeros(10, dtype=torch.long), "shape \\[batch, pos\\]"),
        (torch.full((1, 4), 99), "token ids must lie"),
        (torch.zeros(1, 40, dtype=torch.long), "n_ctx"),
    ],
)
def test_bad_tokens(tiny_model, bad, fragment):
    with pytest.raises(ShapeError, match=fragment):
        tiny_model.run(bad)


def test_site_that_never_fires_is_an_error(tokens):
    class Skips(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used = torch.nn.Linear(4, 4)
            self.unused = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.used(x)

    model = wrap_module(Skips())
    with pytest.raises(SiteError, match="never fired.*module:unused"):
        model.run_with_cache(torch.zeros(2, 4), [Site.module("used"), Site.module("unused")])


# ---------------------------------------------------------- hook hygiene


class Boom(RuntimeError):
    pass


def _raise(_):
    raise Boom("deliberate")


INTERVENTIONS = {
    "zero": lambda s, t: Zero(s),
    "mean": lambda s, t: Mean(s, reference=t),
    "resample": lambda s, t: Resample(s, source=t),
    "patch": lambda s, t: Patch(s, value=torch.zeros(3, 10, 4, 8)),
    "steer": lambda s, t: Steer(s, vector=torch.ones(8)),
    "replace": lambda s, t: Replace(s, fn=lambda v: v * 2),
}


@pytest.mark.parametrize("kind", sorted(INTERVENTIONS))
@pytest.mark.parametrize("per_head", [False, True])
def test_hooks_removed_after_success_and_error(tiny_model, tokens, other_tokens, kind, per_head):
    site = Site(C.ATTN_Z, 0, 1 if per_head else None)
    iv = INTERVENTIONS[kind](site, other_tokens)
    if per_head and kind == "patch":
        iv = Patch(site, value=torch.zeros(3, 10, 4, 8))
    tiny_model.run_with(tokens, [iv])
    assert count_hooks(tiny_model.module) == 0
    failing = Replace(Site(C.MLP_OUT, 1), fn=_raise)
    with pytest.raises(Boom):
        tiny_model.run_with(tokens, [iv, failing])
    assert count_hooks(tiny_model.module) == 0
    with pytest.raises(Boom):
        tiny_model.run_with_cache(tokens, [Site(C.RESID_POST, 1)], interventions=[iv, failing])
    assert count_hooks(tiny_model.module) == 0


def test_hooks_context_removed_on_error(tiny_model, tokens):
    with pytest.raises(Boom):
        with tiny_model.hooks({Site(C.RESID_PRE, 0): lambda v: None}):
            assert count_hooks(tiny_model.module) == 1
            raise Boom("inside")
    assert count_hooks(tiny_model.module) == 0


def test_wrap_plain_module(tokens):
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    model = wrap_module(mlp)
    x = torch.randn(5, 4)
    out, cache = model.run_with_cache(x, [Site.module("1")])
    assert torch.equal(cache[Site.module("1")], torch.relu(mlp[0](x)))
    ablated = model.run_with(x, [Zero(Site.module("1"))])
    assert torch.allclose(ablated, mlp[2].bias.expand(5, 2))
    with pytest.raises(SiteError, match="valid paths"):
        wrap_module(mlp, ["3"])


# ------------------------------------------- interventions that cannot take effect


class _Skips(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.used = torch.nn.Linear(4, 4)
        self.unused = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.used(x)


def test_intervention_on_a_site_that_never_fires_is_an_error():
    model = wrap_module(_Skips())
    x = torch.zeros(2, 4)
    with pytest.raises(SiteError, match=r"never took effect.*Zero at module:unused.*model\.sites"):
        model.run_with(x, [Zero(Site.module("used")), Zero(Site.module("unused"))])
    with pytest.raises(SiteError, match=r"Zero at module:unused"):
        model.run_with_cache(x, [Site.module("used")], interventions=[Zero(Site.module("unused"))])
    assert count_hooks(model.module) == 0
    # The site that does fire still works alone.
    assert torch.equal(model.run_with(x, [Zero(Site.module("used"))]), torch.zeros(2, 4))


def test_intervention_on_an_on_demand_per_head_site_fires(tiny_model, tokens):
    site = Site(C.ATTN_RESULT, 0, 1)
    out = tiny_model.run_with(tokens, [Zero(site)])
    assert not torch.allclose(out, tiny_model.run(tokens), atol=1e-4)
    q_in = tiny_model.run_with(tokens, [Zero(Site(C.ATTN_Q_IN, 1, 0))])
    assert not torch.allclose(q_in, tiny_model.run(tokens), atol=1e-4)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: Zero(s),
        lambda s: Patch(s, value=torch.zeros(3, 10, 4, 8)),
        lambda s: Replace(s, fn=lambda v: v),
    ],
)
def test_head_out_of_range_names_valid_heads(tiny_model, tokens, make):
    site = Site(C.ATTN_Z, 0, 7)
    with pytest.raises(SiteError, match=r"head 7 is out of range.*4 heads.*0\.\.3"):
        tiny_model.run_with(tokens, [make(site)])
    assert count_hooks(tiny_model.module) == 0


def test_cached_head_out_of_range_names_valid_heads(tiny_model, tokens):
    with pytest.raises(SiteError, match=r"head 4 is out of range.*0\.\.3"):
        tiny_model.run_with_cache(tokens, [Site(C.ATTN_PATTERN, 1, 4)])


@pytest.mark.parametrize("positions", [(10,), (0, -11), (3, 99)])
def test_positions_out_of_range_name_the_sequence_length(tiny_model, tokens, positions):
    site = Site(C.RESID_POST, 0)
    with pytest.raises(SiteError, match=r"out of range.*10 positions.*0\.\.9"):
        tiny_model.run_with(tokens, [Zero(site, positions=positions)])
    assert count_hooks(tiny_model.module) == 0


def test_negative_positions_count_from_the_end(tiny_model, tokens):
    site = Site(C.RESID_POST, 0)
    _, got = tiny_model.run_with_cache(tokens, [site], interventions=[Zero(site, positions=(-1,))])
    assert torch.all(got[site][:, 9] == 0) and not torch.all(got[site][:, 8] == 0)


def test_replace_with_another_dtype_is_an_error(tiny_model, tokens):
    site = Site(C.MLP_OUT, 0)
    with pytest.raises(
        ShapeError, match=r"Replace at L0\.mlp_out.*dtype float64 \(expected float32\)"
    ):
        tiny_model.run_with(tokens, [Replace(site, fn=lambda v: v.double())])
    with pytest.raises(ShapeError, match=r"Replace at L0\.H1\.attn_z.*dtype float16"):
        tiny_model.run_with(tokens, [Replace(Site(C.ATTN_Z, 0, 1), fn=lambda v: v.half())])
    assert count_hooks(tiny_model.module) == 0


def test_replace_with_another_shape_or_type_is_an_error(tiny_model, tokens):
    site = Site(C.MLP_OUT, 0)
    expected = r"Replace at L0\.mlp_out.*shape \(3, 10\) \(expected \(3, 10, 32\)\)"
    with pytest.raises(ShapeError, match=expected):
        tiny_model.run_with(tokens, [Replace(site, fn=lambda v: v.sum(-1))])
    with pytest.raises(ShapeError, match=r"Replace at L0\.mlp_out produced a list.*\(3, 10, 32\)"):
        tiny_model.run_with(tokens, [Replace(site, fn=lambda v: v.tolist())])
