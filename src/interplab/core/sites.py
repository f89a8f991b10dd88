"""Typed addresses of activations.

A :class:`Site` names one activation tensor of a model: a component kind, and where it applies
a layer and a head. Sites are values (frozen, hashable, ordered). ``str(site)`` gives the
canonical display form (``"L1.H3.attn_z"``, ``"L0.resid_pre"``, ``"embed"``), and
:func:`parse_site` is the single place that turns such a string back into a Site (CLI input).

Shapes, by component (b = batch, p = pos, h = head, d = d_model, dh = d_head, m = d_mlp,
v = vocab). A site with ``head=h`` selects that head's slice along the head axis.

    embed, pos_embed                     [b, p, d]
    resid_pre, resid_mid, resid_post     [b, p, d]
    attn_q_in, attn_k_in, attn_v_in      [b, p, h, d]   (each head's own copy of its input)
    attn_q, attn_k, attn_v, attn_z       [b, p, h, dh]
    attn_scores, attn_pattern            [b, h, p_query, p_key]
    attn_result                          [b, p, h, d]   (each head's write to the residual)
    attn_out, mlp_in, mlp_out            [b, p, d]
    mlp_pre, mlp_post                    [b, p, m]
    unembed_in                           [b, p, d]      (residual stream read by the unembedding)
    logits                               [b, p, v]
    module                               whatever the wrapped module returns (``name`` = path)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from interplab.errors import SiteError


class Component(str, Enum):
    EMBED = "embed"
    POS_EMBED = "pos_embed"
    RESID_PRE = "resid_pre"
    ATTN_Q_IN = "attn_q_in"
    ATTN_K_IN = "attn_k_in"
    ATTN_V_IN = "attn_v_in"
    ATTN_Q = "attn_q"
    ATTN_K = "attn_k"
    ATTN_V = "attn_v"
    ATTN_SCORES = "attn_scores"
    ATTN_PATTERN = "attn_pattern"
    ATTN_Z = "attn_z"
    ATTN_RESULT = "attn_result"
    ATTN_OUT = "attn_out"
    RESID_MID = "resid_mid"
    MLP_IN = "mlp_in"
    MLP_PRE = "mlp_pre"
    MLP_POST = "mlp_post"
    MLP_OUT = "mlp_out"
    RESID_POST = "resid_post"
    UNEMBED_IN = "unembed_in"
    LOGITS = "logits"
    MODULE = "module"


GLOBAL_COMPONENTS = frozenset(
    {Component.EMBED, Component.POS_EMBED, Component.UNEMBED_IN, Component.LOGITS}
)
#: The attention sites of a hooked attention module by the name of its hook point
#: (``hook_<name>``), in site order; the per-head inputs (q_in, k_in, v_in) and result apart.
ATTN_HOOK_SITES: dict[str, Component] = {
    name: Component(f"attn_{name}") for name in ("q", "k", "v", "scores", "pattern", "z")
}
#: Axis along which heads are stacked, for components that have one.
HEAD_AXIS: dict[Component, int] = {
    Component.ATTN_Q_IN: 2,
    Component.ATTN_K_IN: 2,
    Component.ATTN_V_IN: 2,
    Component.ATTN_Q: 2,
    Component.ATTN_K: 2,
    Component.ATTN_V: 2,
    Component.ATTN_Z: 2,
    Component.ATTN_RESULT: 2,
    Component.ATTN_SCORES: 1,
    Component.ATTN_PATTERN: 1,
}
#: Axis holding sequence positions (the query axis for patterns); None where there is none.
POS_AXIS: dict[Component, int] = {
    c: (2 if c in (Component.ATTN_SCORES, Component.ATTN_PATTERN) else 1)
    for c in Component
    if c is not Component.MODULE
}


@dataclass(frozen=True, order=True)
class Site:
    """Address of one activation. See the module docstring for shapes.

    >>> Site(Component.ATTN_Z, layer=1, head=3)
    Site('L1.H3.attn_z')
    """

    component: Component
    layer: int | None = None
    head: int | None = None
    name: str | None = None  # module path, only for Component.MODULE

    def __post_init__(self) -> None:
        comp = self.component
        if not isinstance(comp, Component):
            try:
                object.__setattr__(self, "component", Component(comp))
            except ValueError:
                raise SiteError(_unknown_component(str(comp))) from None
            comp = self.component
        problems = []
        if comp is Component.MODULE:
            if not self.name:
                problems.append("a module site needs name= the module path, e.g. 'layers.0.fc'")
            if self.layer is not None or self.head is not None:
                problems.append("a module site takes no layer or head")
        else:
            if self.name is not None:
                problems.append(f"only module sites take a name; {comp.value} does not")
            if comp in GLOBAL_COMPONENTS and self.layer is not None:
                problems.append(f"{comp.value} belongs to no layer; drop layer={self.layer}")
            if comp not in GLOBAL_COMPONENTS and self.layer is None:
                problems.append(f"{comp.value} needs a layer, e.g. Site('{comp.value}', layer=0)")
            if self.head is not None and comp not in HEAD_AXIS:
                problems.append(f"{comp.value} has no heads; drop head={self.head}")
        for attr in ("layer", "head"):
            value = getattr(self, attr)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                problems.append(f"{attr} must be a non-negative int, got {value!r}")
        if problems:
            raise SiteError("invalid site: " + "; ".join(problems))

    # Convenience constructors read better than keyword soup at call sites.
    @staticmethod
    def module(path: str) -> Site:
        return Site(Component.MODULE, name=path)

    @property
    def has_head_axis(self) -> bool:
        return self.component in HEAD_AXIS

    def without_head(self) -> Site:
        """The site of the whole tensor this per-head site is a slice of."""
        return Site(self.component, self.layer, None, self.name)

    def with_head(self, head: int) -> Site:
        return Site(self.component, self.layer, head, self.name)

    def __str__(self) -> str:
        if self.component is Component.MODULE:
            return f"module:{self.name}"
        parts = []
        if self.layer is not None:
            parts.append(f"L{self.layer}")
        if self.head is not None:
            parts.append(f"H{self.head}")
        parts.append(self.component.value)
        return ".".join(parts)

    def __repr__(self) -> str:
        return f"Site({str(self)!r})"


def check_head_in_range(site: Site, full_shape: Sequence[int]) -> None:
    """Raise SiteError when ``site.head`` does not index the head axis of a tensor of
    ``full_shape`` (the whole tensor at ``site.without_head()``)."""
    if site.head is None:
        return
    axis = HEAD_AXIS[site.component]
    if axis >= len(full_shape):
        raise SiteError(
            f"site {site} asks for head {site.head}, but the tensor there has shape "
            f"{tuple(full_shape)} with no head axis; drop the head"
        )
    n = full_shape[axis]
    if not 0 <= site.head < n:
        raise SiteError(
            f"site {site}: head {site.head} is out of range; this model has {n} heads "
            f"at {site.without_head()} (valid heads: 0..{n - 1})"
        )


_SITE_RE = re.compile(r"^(?:L(?P<layer>\d+)\.)?(?:H(?P<head>\d+)\.)?(?P<comp>[a-z_]+)$")


def parse_site(text: str) -> Site:
    """Parse the canonical string form (``"L1.H3.attn_z"``, ``"embed"``, ``"module:fc1"``).

    The only string-to-structure conversion in interplab; used for user input only."""
    text = text.strip()
    if text.startswith("module:"):
        return Site.module(text[len("module:") :])
    match = _SITE_RE.match(text)
    if not match:
        raise SiteError(
            f"cannot read site {text!r}: expected [L<layer>.][H<head>.]<component>, "
            f"e.g. 'L0.resid_pre', 'L1.H3.attn_z', 'logits', or 'module:<path>'"
        )
    comp = match["comp"]
    if comp not in Component._value2member_map_:
        raise SiteError(_unknown_component(comp))
    layer = int(match["layer"]) if match["layer"] is not None else None
    head = int(match["head"]) if match["head"] is not None else None
    return Site(Component(comp), layer, head)


def _unknown_component(comp: str) -> str:
    import difflib

    names = [c.value for c in Component]
    close = difflib.get_close_matches(comp, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown site component {comp!r}.{hint} Valid components: {', '.join(names)}."
