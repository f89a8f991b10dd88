"""Plots as inline SVG strings (matplotlib, Agg backend, imported only when a plot is drawn)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from interplab.errors import MissingExtraError


def pyplot():
    """matplotlib.pyplot on the Agg backend; a missing matplotlib names the extra to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError(
            "matplotlib is not installed; install the extra: pip install 'interplab[report]'"
        ) from None
    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})
    return plt


def figure_to_svg(fig) -> str:
    """Serialise a matplotlib figure to an SVG string (without the XML prolog) and close it."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    pyplot().close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if (
        start != -1 and end != -1
    ):  # drop the RDF block (dates, creator) to keep reports reproducible
        text = text[:start] + text[end + len("</metadata>") :]
    return text


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    diagonal: bool = False,
    xlog: bool = False,
    ylim: tuple[float, float] | None = None,
) -> str:
    """One line per series name: {name: (xs, ys)} -> SVG."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for name, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), label=name, linewidth=1.4, drawstyle="default")
    if diagonal:
        ax.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1)
    if xlog:
        ax.set_xscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=7, frameon=False)
    return figure_to_svg(fig)


def heatmap(
    values: Sequence[Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    cmap: str = "RdBu_r",
    center_zero: bool = True,
) -> str:
    plt = pyplot()
    import numpy as np

    arr = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(
        figsize=(max(3.0, 0.35 * arr.shape[1] + 1.5), max(2.5, 0.3 * arr.shape[0] + 1.2))
    )
    vmax = float(np.nanmax(np.abs(arr))) if arr.size else 1.0
    kwargs = {"vmin": -vmax, "vmax": vmax} if center_zero else {}
    im = ax.imshow(arr, cmap=cmap, aspect="auto", **kwargs)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return figure_to_svg(fig)
