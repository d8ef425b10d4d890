"""Figures of a task-similarity matrix and of the task graph.

Two backends with one look: plotly figures for exploration (saved as self-contained HTML that works offline) and
matplotlib figures for papers (saved as PNG). Functions return figure objects and never show them; the matplotlib
figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, not pyplot, so no global state or display
is touched.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import plotly.graph_objects as go
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib import colormaps
from matplotlib.colors import LinearSegmentedColormap, Normalize, to_hex
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch

from rsa_toolkit.files import atomic_path, check_output_path
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.graph import OTHER_TYPE, _check_names, _check_similarity, cluster_order, resolve_types
from rsa_toolkit.tasks import TASK_TYPES
from rsa_toolkit.validation import check_number

__all__ = ["TYPE_COLORS", "TYPE_ORDER", "ColorScale", "similarity_color_scale", "similarity_heatmap", "similarity_png_figure",
           "rdm_png_figure", "type_color", "save_html", "save_png"]

# Okabe-Ito colours (colour-blind safe) that stay legible as text on white; the yellow and sky blue are left out for
# that reason. Shared by both backends so an HTML figure and its PNG twin read the same.
TYPE_COLORS: dict[str, str] = {
    "2D": "#0072B2",
    "3D": "#D55E00",
    "semantic": "#009E73",
    "low-dim geometric": "#CC79A7",
    OTHER_TYPE: "#666666",
}
TYPE_ORDER = (*TASK_TYPES, OTHER_TYPE)  # known types first, in the canonical order

# Colour scale (one rule for both backends, :func:`similarity_color_scale`): when every off-diagonal value has the
# same sign, a sequential scale (viridis, colour-blind safe and perceptually even) over the data's min..max, so the
# typical 0.2-0.9 values use the whole scale; when signs are mixed, reversed RdBu centred at 0 (red = alike,
# white = unrelated, blue = opposite), as a sign is then the first message. In both cases the colour bar spans the
# off-diagonal data, not ±1 or ±max; the trivial diagonal saturates.
_SEQUENTIAL = "viridis"
_DIVERGING = "RdBu_r"
_SCALE_STOPS = 33  # samples of the source colormap; both backends interpolate linearly between them
_HTML_CELL_TEXT_MAX_T = 30  # the HTML writes values in the cells up to this many tasks
_PNG_CELL_TEXT_MAX_T = 25  # the PNG's cells are smaller (8 in for the whole matrix)
# CSS height of a figure without a fixed height in the HTML page: most of the window, but never cramped.
HTML_HEIGHT = "max(600px, calc(100vh - 24px))"
# The page's own margin would push a window-high figure past the window's bottom edge (a needless scroll bar).
_NO_PAGE_MARGIN = "document.body.style.margin = '0';"

Order = Literal["cluster", "given"] | Sequence[int] | np.ndarray


@dataclass(frozen=True)
class ColorScale:
    """The colour scale of a similarity matrix, shared by the HTML and the PNG figure.

    ``kind``: "sequential" (all off-diagonal values of one sign) or "diverging" (mixed signs, white at 0).
    ``vmin``, ``vmax``: the colour bar's range (the off-diagonal data's). ``stops``: (position in 0..1, "#rrggbb")
    along vmin..vmax, linearly interpolated in between (a plotly colorscale as it is).
    """

    kind: Literal["sequential", "diverging"]
    vmin: float
    vmax: float
    stops: tuple[tuple[float, str], ...]

    def plotly(self) -> list[list[float | str]]:
        return [[pos, colour] for pos, colour in self.stops]

    def matplotlib(self) -> tuple[LinearSegmentedColormap, Normalize]:
        return LinearSegmentedColormap.from_list(f"similarity_{self.kind}", list(self.stops)), Normalize(
            self.vmin, self.vmax, clip=True)

    def color(self, value: float) -> str:
        """The "#rrggbb" a value gets (clipped to the range), for choosing a readable text colour on it."""
        cmap, norm = self.matplotlib()
        return to_hex(cmap(norm(value)))


def similarity_color_scale(similarity: np.ndarray) -> ColorScale:
    """The colour scale of a (T, T) similarity matrix, from its off-diagonal values v (the diagonal is trivial):

    * all v >= 0 or all v <= 0: sequential (viridis) over [min v, max v];
    * mixed signs: diverging RdBu (red = alike, blue = opposite) over [min v, max v], white at 0 and colours
      symmetric in value (-x is as saturated as +x), so the shorter side is not stretched to full saturation.

    A range of one value (T = 2, or all equal) is widened to include 0 (to [-1, 1] for all zeros).
    """
    s = _check_similarity(similarity)
    off = s[~np.eye(s.shape[0], dtype=bool)]
    lo, hi = (float(off.min()), float(off.max())) if off.size else (-1.0, 1.0)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        lo, hi = (min(lo, 0.0), max(hi, 0.0)) if lo != 0.0 else (-1.0, 1.0)
    if lo >= 0.0 or hi <= 0.0:
        kind, cmap, first, last = "sequential", colormaps[_SEQUENTIAL], 0.0, 1.0
    else:  # the part [lo, hi] of the symmetric scale [-lim, lim]
        lim = max(-lo, hi)
        kind, cmap, first, last = "diverging", colormaps[_DIVERGING], 0.5 + lo / (2 * lim), 0.5 + hi / (2 * lim)
    positions = np.linspace(0.0, 1.0, _SCALE_STOPS)
    if kind == "diverging":  # 0 on a stop of its own, so it is exactly the scale's white
        positions = np.union1d(positions, [-lo / (hi - lo)])
    stops = tuple((float(p), to_hex(cmap(first + p * (last - first)))) for p in positions)
    return ColorScale(kind, lo, hi, stops)


def _text_color(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (WCAG relative luminance)."""
    rgb = np.array([int(background[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    luminance = float(linear @ [0.2126, 0.7152, 0.0722])
    return "black" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "white"


def type_color(ty: str) -> str:
    return TYPE_COLORS.get(ty, TYPE_COLORS[OTHER_TYPE])  # a user's own type names share the "other" grey


def similarity_heatmap(
    similarity: np.ndarray,
    names: Sequence[str],
    *,
    ci_low: np.ndarray | None = None,
    ci_high: np.ndarray | None = None,
    types: Sequence[str | None] | None = None,
    order: Order = "cluster",
    title: str = "Task similarity (RSA)",
) -> go.Figure:
    """Interactive heatmap of a (T, T) similarity matrix, rows and columns in dendrogram order by default.

    Hovering a cell shows the row and column task, the value (3 decimals) and, when ``ci_low``/``ci_high`` (both
    (T, T), NaN = unknown) are given, the 95% confidence interval; up to 30 tasks the value (2 decimals) is also
    written in each cell, black or white by the cell's colour. Colours: :func:`similarity_color_scale`. Tick labels
    are coloured by task type (:data:`TYPE_COLORS`); a thin strip above the matrix and the legend show the types.

    The figure has no fixed size: it fills its container (:func:`save_html` gives it the page's width and most of the
    window's height), the cells staying square.

    ``order``: ``"cluster"`` (:func:`rsa_toolkit.analysis.graph.cluster_order`), ``"given"``, or a permutation of range(T).
    """
    s, names, node_types, idx = _prepare(similarity, names, types, order)
    ci = _check_ci(ci_low, ci_high, len(names))
    t = len(names)
    labels = [html.escape(n) for n in names]
    lo, hi = (c[np.ix_(idx, idx)] for c in ci) if ci is not None else (None, None)
    hover = [[f"row: {labels[i]}<br>column: {labels[j]}<br>similarity: {s[i, j]:.3f}" + _ci_text(lo, hi, i, j)
              for j in range(t)] for i in range(t)]
    scale = similarity_color_scale(s)
    ticks = [f'<span style="color:{TYPE_COLORS[ty]}">{lab}</span>' for lab, ty in zip(labels, node_types)]
    codes = [TYPE_ORDER.index(ty) for ty in node_types]
    k = len(TYPE_ORDER)
    strip_scale = [[edge / k, TYPE_COLORS[ty]] for n, ty in enumerate(TYPE_ORDER) for edge in (n, n + 1)]
    # Values in the cells: plotly picks black or white per cell for contrast and fits the font to the cell as the
    # window is resized (textfont colour and size left at "auto").
    cell_text = dict(texttemplate="%{z:.2f}") if t <= _HTML_CELL_TEXT_MAX_T else {}

    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        z=s, x=list(range(t)), y=list(range(t)), text=hover, hovertemplate="%{text}<extra></extra>",
        colorscale=scale.plotly(), zmin=scale.vmin, zmax=scale.vmax, **cell_text,
        colorbar=dict(title=dict(text="similarity"), len=0.6, y=0.955, yanchor="top"), name="similarity",
    ))
    fig.add_trace(go.Heatmap(  # the type strip: one coloured cell per column
        z=[codes], x=list(range(t)), y=[0], yaxis="y2", zmin=-0.5, zmax=k - 0.5, colorscale=strip_scale,
        showscale=False, text=[[f"{lab}: {ty}" for lab, ty in zip(labels, node_types)]],
        hovertemplate="%{text}<extra></extra>", name="task type", xgap=1,
    ))
    for ty in TYPE_ORDER:  # legend entries only; the markers themselves are never drawn
        if ty in node_types:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=ty, showlegend=True,
                                     marker=dict(symbol="square", size=12, color=TYPE_COLORS[ty])))
    axis = dict(tickmode="array", tickvals=list(range(t)), ticktext=ticks, showgrid=False, zeroline=False,
                automargin=True, tickfont=dict(size=int(np.clip(600 / t, 9, 13))))
    fig.update_layout(
        title=dict(text=html.escape(title), x=0.5),
        autosize=True, plot_bgcolor="white", margin=dict(l=20, r=20, t=70, b=20),
        xaxis=dict(axis, tickangle=-60, scaleanchor="y", constrain="domain", constraintoward="center"),
        yaxis=dict(axis, domain=[0.0, 0.955], autorange="reversed", constrain="domain", constraintoward="top"),
        yaxis2=dict(domain=[0.965, 1.0], anchor="x", showticklabels=False, showgrid=False, zeroline=False),
        legend=dict(title=dict(text="task type"), x=1.02, y=0.0, yanchor="bottom"),
    )
    return fig


def similarity_png_figure(
    similarity: np.ndarray,
    names: Sequence[str],
    *,
    types: Sequence[str | None] | None = None,
    order: Order = "cluster",
    title: str = "Task similarity (RSA)",
) -> MplFigure:
    """Static heatmap of a (T, T) similarity matrix for papers (matplotlib, Agg canvas).

    Same ordering and colours (:func:`similarity_color_scale`) as :func:`similarity_heatmap`; values (2 decimals) are
    written in the cells when T <= 25, black or white by the cell's colour; tick labels are coloured by task type,
    with a legend of the types and a colour bar.
    """
    s, names, node_types, _ = _prepare(similarity, names, types, order)
    t = len(names)
    cell = float(np.clip(8.0 / t, 0.12, 0.42))  # inches per cell: ~8 in matrices, but never cramped or huge
    fig = MplFigure(figsize=(cell * t + 3.8, cell * t + 3.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scale = similarity_color_scale(s)
    cmap, norm = scale.matplotlib()
    image = ax.imshow(s, cmap=cmap, norm=norm, interpolation="nearest")
    font = float(np.clip(cell * 22, 4.0, 9.0))
    ax.set_xticks(range(t), labels=names, rotation=60, ha="right", rotation_mode="anchor", fontsize=font)
    ax.set_yticks(range(t), labels=names, fontsize=font)
    for tick_labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        for label, ty in zip(tick_labels, node_types):
            label.set_color(TYPE_COLORS[ty])
    if t <= _PNG_CELL_TEXT_MAX_T:
        cells = cmap(norm(s))
        for i in range(t):
            for j in range(t):  # black or white by the cell's colour, so every number stays readable
                ax.text(j, i, f"{s[i, j]:.2f}", ha="center", va="center", color=_text_color(to_hex(cells[i, j])),
                        fontsize=font * 0.75)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="similarity")
    present = [ty for ty in TYPE_ORDER if ty in node_types]
    fig.legend(handles=[Patch(color=TYPE_COLORS[ty], label=ty) for ty in present], loc="outside lower center",
               ncols=len(present), frameon=False, title="task type")
    return fig


def rdm_png_figure(rdm: np.ndarray, *, title: str = "RDM") -> MplFigure:
    """One (N, N) RDM as an image (images in their given order), with a colour bar."""
    m = np.asarray(rdm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise UserInputError(f"rdm: expected a square (N, N) matrix, got shape {m.shape}.")
    fig = MplFigure(figsize=(6.4, 5.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap="viridis", interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel("image")
    ax.set_ylabel("image")
    fig.colorbar(image, ax=ax, label="dissimilarity")
    return fig


def save_html(fig: go.Figure, path: str | os.PathLike[str]) -> None:
    """Write a plotly figure as one self-contained HTML file (plotly.js inlined, works offline), atomically.

    A figure without a fixed ``layout.width``/``height`` fills the page's width and most of the window's height
    (:data:`HTML_HEIGHT`, never under 600 px) and follows the window when it is resized (plotly's responsive mode).
    """
    if not isinstance(fig, go.Figure):
        raise UserInputError(f"fig: expected a plotly.graph_objects.Figure, got {type(fig).__name__}.")
    path = check_output_path(path, what="HTML")
    with atomic_path(path) as tmp:
        fig.write_html(tmp, include_plotlyjs=True, full_html=True, include_mathjax=False,
                       config={"responsive": True, "displaylogo": False}, default_width="100%",
                       default_height=HTML_HEIGHT, post_script=_NO_PAGE_MARGIN)


def save_png(fig: MplFigure, path: str | os.PathLike[str], *, dpi: int = 150) -> None:
    """Write a matplotlib figure as PNG at ``dpi`` dots per inch, atomically."""
    if not isinstance(fig, MplFigure):
        raise UserInputError(f"fig: expected a matplotlib.figure.Figure, got {type(fig).__name__}.")
    check_number(dpi, name="dpi", minimum=10, maximum=2400, form="expected")
    path = check_output_path(path, what="PNG")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


def _prepare(
    similarity: np.ndarray, names: Sequence[str], types: Sequence[str | None] | None, order: Order
) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
    """Validated matrix, names and types, reordered by ``order``; also returns the index used."""
    s = _check_similarity(similarity)
    names = _check_names(names, t=s.shape[0])
    node_types = resolve_types(names, types)
    idx = _order_index(s, order)
    return s[np.ix_(idx, idx)], [names[i] for i in idx], [node_types[i] for i in idx], idx


def _order_index(s: np.ndarray, order: Order) -> np.ndarray:
    t = s.shape[0]
    if isinstance(order, str):
        if order == "cluster":
            return cluster_order(s)
        if order == "given":
            return np.arange(t)
        raise UserInputError(f"order: expected 'cluster', 'given' or a permutation of range({t}), got {order!r}.")
    idx = np.asarray(order)
    if idx.shape != (t,) or not np.issubdtype(idx.dtype, np.integer) or not np.array_equal(np.sort(idx), np.arange(t)):
        raise UserInputError(f"order: expected 'cluster', 'given' or a permutation of range({t}), got {order!r}.")
    return idx


def _check_ci(ci_low: np.ndarray | None, ci_high: np.ndarray | None, t: int) -> tuple[np.ndarray, np.ndarray] | None:
    if ci_low is None and ci_high is None:
        return None
    if ci_low is None or ci_high is None:
        raise UserInputError("ci_low, ci_high: expected both confidence bounds or neither, got only one.")
    out = []
    for what, c in (("ci_low", ci_low), ("ci_high", ci_high)):
        try:
            c = np.asarray(c, dtype=np.float64)
        except (TypeError, ValueError):
            raise UserInputError(f"{what}: expected a numeric ({t}, {t}) array, got {type(c).__name__}.") from None
        if c.shape != (t, t):
            raise UserInputError(f"{what}: expected shape ({t}, {t}) like the similarity matrix, got {c.shape}.")
        if np.any(np.isinf(c)):
            raise UserInputError(f"{what}: expected finite values (NaN marks an unknown bound), got inf.")
        out.append(c)
    if np.any(out[0] > out[1]):
        raise UserInputError("ci_low, ci_high: expected ci_low <= ci_high everywhere, got a lower bound above "
                             "its upper bound; are the two swapped?")
    return out[0], out[1]


def _ci_text(lo: np.ndarray | None, hi: np.ndarray | None, i: int, j: int) -> str:
    if lo is None or hi is None:
        return ""
    if np.isnan(lo[i, j]) or np.isnan(hi[i, j]):
        return "<br>95% CI: n/a"
    return f"<br>95% CI: [{lo[i, j]:.3f}, {hi[i, j]:.3f}]"
