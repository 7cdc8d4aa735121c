"""The book's plot style and shared drawing helpers.

The palette is the seed's (light blue, light yellow, blue-purple, pink) so that readers
recognise the diagrams; darker companions are used where a line needs contrast.

Book: infrastructure (the style of every figure).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

#: The seed's four colours.
PALETTE = {
    "blue": "#71CCF5",
    "yellow": "#FFE699",
    "purple": "#C0BFDE",
    "pink": "#F0ADB7",
}
#: Darker companions for lines and text on light fills.
DARK = {
    "blue": "#1F78B4",
    "yellow": "#B8860B",
    "purple": "#5E5AA8",
    "pink": "#C2185B",
    "grey": "#555555",
}
#: Colour cycle for lines: dark first (lines on white need contrast), then the fills.
CYCLE = [DARK["blue"], DARK["pink"], DARK["purple"], DARK["yellow"], DARK["grey"],
         PALETTE["blue"], PALETTE["pink"], PALETTE["purple"]]


def use_style() -> None:
    """Set matplotlib defaults for the book (sizes, grid, colour cycle, fonts with CJK fallback)."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update({
        "figure.figsize": (7.0, 4.0),
        "figure.dpi": 100,
        "savefig.dpi": 120,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 12,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "axes.prop_cycle": cycler(color=CYCLE),
        "svg.fonttype": "none",
    })


def _check_ax(ax):
    if not hasattr(ax, "plot"):
        raise TypeError(f"expected a matplotlib Axes, got {type(ax).__name__}")


def finish(ax, title: str, xlabel: str, ylabel: str, legend: bool | None = None):
    """Title and axis labels (with units) in one call; a legend when lines are labelled."""
    _check_ax(ax)
    if not title or not xlabel or not ylabel:
        raise ValueError("every book figure needs a title and both axis labels")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    handles, labels = ax.get_legend_handles_labels()
    if legend or (legend is None and labels):
        ax.legend()
    return ax


def curve_with_band(ax, x: Sequence[float], runs, label: str, color: str | None = None,
                    band: str = "std"):
    """Plot the mean of several runs (rows of ``runs``) with a shaded spread.

    ``band`` is ``"std"`` (mean ± one standard deviation) or ``"minmax"``.
    Returns the mean curve.
    """
    _check_ax(ax)
    runs = np.asarray(runs, dtype=float)
    if runs.ndim == 1:
        runs = runs[None, :]
    if runs.ndim != 2:
        raise ValueError(f"runs must be 1-D or 2-D (seeds x points), got shape {runs.shape}")
    x = np.asarray(x, dtype=float)
    if x.shape != (runs.shape[1],):
        raise ValueError(f"x has shape {x.shape}, runs have {runs.shape[1]} points")
    if band not in ("std", "minmax"):
        raise ValueError(f"band must be 'std' or 'minmax', got {band!r}")
    mean = runs.mean(axis=0)
    if band == "std":
        lo, hi = mean - runs.std(axis=0), mean + runs.std(axis=0)
    else:
        lo, hi = runs.min(axis=0), runs.max(axis=0)
    (line,) = ax.plot(x, mean, label=f"{label} (n={runs.shape[0]})", color=color)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    return mean


def heatmap(ax, values, xlabels: Iterable[str] | None = None, ylabels: Iterable[str] | None = None,
            fmt: str | None = "{:.2f}", cmap: str = "Blues", colorbar: bool = True):
    """A labelled heatmap with the values written in the cells (``fmt=None`` to omit them)."""
    _check_ax(ax)
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {values.shape}")
    im = ax.imshow(values, cmap=cmap, aspect="auto")
    ax.grid(False)
    if xlabels is not None:
        xlabels = list(xlabels)
        if len(xlabels) != values.shape[1]:
            raise ValueError(f"{len(xlabels)} x labels for {values.shape[1]} columns")
        ax.set_xticks(range(values.shape[1]), xlabels)
    if ylabels is not None:
        ylabels = list(ylabels)
        if len(ylabels) != values.shape[0]:
            raise ValueError(f"{len(ylabels)} y labels for {values.shape[0]} rows")
        ax.set_yticks(range(values.shape[0]), ylabels)
    if fmt is not None:
        finite = values[np.isfinite(values)]
        mid = (finite.max() + finite.min()) / 2 if finite.size else 0.0
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8,
                        color="white" if v > mid else "black")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def loglog_slope(x, y) -> float:
    """Least-squares slope of log(y) against log(x): the measured power law of a curve."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"x and y must be 1-D of equal length >= 2, got {x.shape} and {y.shape}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("log-log slope needs positive x and y")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])
