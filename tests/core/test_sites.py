import pytest

from interplab.core.sites import Component, Site, parse_site
from interplab.errors import InterplabError, SiteError


@pytest.mark.parametrize(
    "text, site",
    [
        ("L1.H3.attn_z", Site(Component.ATTN_Z, 1, 3)),
        ("L0.resid_pre", Site(Component.RESID_PRE, 0)),
        ("logits", Site(Component.LOGITS)),
        ("embed", Site(Component.EMBED)),
        ("L2.attn_pattern", Site(Component.ATTN_PATTERN, 2)),
        ("module:layers.0.fc", Site.module("layers.0.fc")),
    ],
)
def test_round_trip(text, site):
    assert parse_site(text) == site
    assert str(site) == text
    assert parse_site(str(site)) == site


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("L1.atn_z", "Did you mean 'attn_z'"),
        ("L1.H2.resid_pre", "resid_pre has no heads"),
        ("resid_post", "needs a layer"),
        ("L0.logits", "belongs to no layer"),
        ("1.resid_pre", "expected [L<layer>.][H<head>.]<component>"),
    ],
)
def test_bad_strings_explain_themselves(text, fragment):
    with pytest.raises(SiteError) as info:
        parse_site(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, InterplabError)


def test_sites_are_hashable_values():
    a, b = Site(Component.ATTN_Q, 0, 1), Site("attn_q", 0, 1)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.without_head() == Site(Component.ATTN_Q, 0)
    assert Site(Component.ATTN_Q, 0).with_head(1) == a


def test_negative_layer_rejected():
    with pytest.raises(SiteError, match="non-negative"):
        Site(Component.RESID_PRE, -1)
