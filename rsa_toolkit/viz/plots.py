"""Figures of a task-similarity matrix and of the task graph.

Two backends with one look: plotly figures for exploration (saved as self-contained HTML that works offline) and
matplotlib figures for papers (saved as PNG). Functions return figure objects and never show them; the matplotlib
figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, not pyplot, so no global state or display
is touched.
"""

from __future__ import annotations

import html
import itertools
import os
from collections.abc import Sequence
from typing import Literal

import networkx as nx
import numpy as np
import plotly.graph_objects as go
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch

from rsa_toolkit.files import atomic_path, check_output_path
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.graph import OTHER_TYPE, _check_names, _check_similarity, cluster_order, resolve_types
from rsa_toolkit.tasks import TASK_TYPES
from rsa_toolkit.validation import check_int, check_number

__all__ = ["TYPE_COLORS", "similarity_heatmap", "similarity_png_figure", "graph_figure", "graph_png_figure",
           "rdm_png_figure", "save_html", "save_png"]

# Okabe-Ito colours (colour-blind safe) that stay legible as text on white; the yellow and sky blue are left out for
# that reason. Shared by both backends so an HTML figure and its PNG twin read the same.
TYPE_COLORS: dict[str, str] = {
    "2D": "#0072B2",
    "3D": "#D55E00",
    "semantic": "#009E73",
    "low-dim geometric": "#CC79A7",
    OTHER_TYPE: "#666666",
}
_TYPE_ORDER = (*TASK_TYPES, OTHER_TYPE)

# Colour scale: reversed RdBu centred at 0 (red = alike, white = unrelated, blue = opposite). A correlation's sign is
# its first message, and a sequential scale such as viridis would paint 0 as "some" similarity. The range is
# ±max |off-diagonal|, not ±1, so the typical 0.2-0.9 values keep their contrast; the trivial diagonal saturates.
_PLOTLY_SCALE = "RdBu"  # with reversescale=True
_MPL_CMAP = "RdBu_r"
_SPRING_K = 1.5  # spring length × sqrt(T); networkx's 1 packs a cluster's labels on top of each other
_BACKGROUND_PULL = 0.03  # layout-only attraction between unlinked nodes (the strongest edge pulls with 1)

Order = Literal["cluster", "given"] | Sequence[int] | np.ndarray


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
    (T, T), NaN = unknown) are given, the 95% confidence interval. Tick labels are coloured by task type
    (:data:`TYPE_COLORS`); a thin strip above the matrix and the legend show the types.

    ``order``: ``"cluster"`` (:func:`rsa_toolkit.analysis.graph.cluster_order`), ``"given"``, or a permutation of range(T).
    """
    s, names, node_types, idx = _prepare(similarity, names, types, order)
    ci = _check_ci(ci_low, ci_high, len(names))
    t = len(names)
    labels = [html.escape(n) for n in names]
    lo, hi = (c[np.ix_(idx, idx)] for c in ci) if ci is not None else (None, None)
    hover = [[f"row: {labels[i]}<br>column: {labels[j]}<br>similarity: {s[i, j]:.3f}" + _ci_text(lo, hi, i, j)
              for j in range(t)] for i in range(t)]
    lim = _color_limit(s)
    ticks = [f'<span style="color:{TYPE_COLORS[ty]}">{lab}</span>' for lab, ty in zip(labels, node_types)]
    codes = [_TYPE_ORDER.index(ty) for ty in node_types]
    k = len(_TYPE_ORDER)
    strip_scale = [[edge / k, TYPE_COLORS[ty]] for n, ty in enumerate(_TYPE_ORDER) for edge in (n, n + 1)]

    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        z=s, x=list(range(t)), y=list(range(t)), text=hover, hovertemplate="%{text}<extra></extra>",
        colorscale=_PLOTLY_SCALE, reversescale=True, zmin=-lim, zmax=lim, zmid=0.0,
        colorbar=dict(title=dict(text="similarity"), len=0.6, y=0.955, yanchor="top"), name="similarity",
    ))
    fig.add_trace(go.Heatmap(  # the type strip: one coloured cell per column
        z=[codes], x=list(range(t)), y=[0], yaxis="y2", zmin=-0.5, zmax=k - 0.5, colorscale=strip_scale,
        showscale=False, text=[[f"{lab}: {ty}" for lab, ty in zip(labels, node_types)]],
        hovertemplate="%{text}<extra></extra>", name="task type", xgap=1,
    ))
    for ty in _TYPE_ORDER:  # legend entries only; the markers themselves are never drawn
        if ty in node_types:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=ty, showlegend=True,
                                     marker=dict(symbol="square", size=12, color=TYPE_COLORS[ty])))
    side = int(np.clip(28 * t, 360, 900))
    axis = dict(tickmode="array", tickvals=list(range(t)), ticktext=ticks, showgrid=False, zeroline=False)
    fig.update_layout(
        title=dict(text=html.escape(title), x=0.5),
        width=side + 480, height=side + 260, plot_bgcolor="white",
        xaxis=dict(axis, tickangle=-60, scaleanchor="y", constrain="domain", constraintoward="right"),
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

    Same ordering and colours as :func:`similarity_heatmap`; values (2 decimals) are written in the cells when
    T <= 25; tick labels are coloured by task type, with a legend of the types and a colour bar.
    """
    s, names, node_types, _ = _prepare(similarity, names, types, order)
    t = len(names)
    cell = float(np.clip(8.0 / t, 0.12, 0.42))  # inches per cell: ~8 in matrices, but never cramped or huge
    fig = MplFigure(figsize=(cell * t + 3.8, cell * t + 3.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    lim = _color_limit(s)
    image = ax.imshow(s, cmap=_MPL_CMAP, vmin=-lim, vmax=lim, interpolation="nearest")
    font = float(np.clip(cell * 22, 4.0, 9.0))
    ax.set_xticks(range(t), labels=names, rotation=60, ha="right", rotation_mode="anchor", fontsize=font)
    ax.set_yticks(range(t), labels=names, fontsize=font)
    for tick_labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        for label, ty in zip(tick_labels, node_types):
            label.set_color(TYPE_COLORS[ty])
    if t <= 25:
        for i in range(t):
            for j in range(t):
                # White text on saturated cells, black elsewhere, so every number stays readable.
                colour = "white" if abs(s[i, j]) > 0.6 * lim else "black"
                ax.text(j, i, f"{s[i, j]:.2f}", ha="center", va="center", color=colour, fontsize=font * 0.75)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="similarity")
    present = [ty for ty in _TYPE_ORDER if ty in node_types]
    fig.legend(handles=[Patch(color=TYPE_COLORS[ty], label=ty) for ty in present], loc="outside lower center",
               ncols=len(present), frameon=False, title="task type")
    return fig


def graph_figure(graph: nx.Graph, *, seed: int = 0, title: str = "Task graph (RSA)") -> go.Figure:
    """Interactive task graph: spring layout (seeded), edge width ∝ |weight|, nodes coloured by their ``type``.

    Negative weights are drawn dashed in blue and do not attract in the layout. Hover shows the node name and type,
    or an edge's two ends and weight.
    """
    pos, edges = _graph_geometry(graph, seed)
    fig = go.Figure()
    scale = max((abs(w) for _, _, w in edges), default=1.0) or 1.0
    groups: dict[tuple[float, bool], tuple[list, list]] = {}
    for u, v, w in edges:  # plotly gives a line trace one width, so edges go in traces by (tenth of |w|, sign)
        xs, ys = groups.setdefault((round(abs(w) / scale, 1), w < 0), ([], []))
        xs += [pos[u][0], pos[v][0], None]
        ys += [pos[u][1], pos[v][1], None]
    for (level, negative), (xs, ys) in sorted(groups.items()):
        rgb = "33,102,172" if negative else "102,102,102"
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False, line=dict(
            width=0.5 + 5.5 * level, color=f"rgba({rgb},{_edge_alpha(level, 1.0):.2f})",
            dash="dash" if negative else "solid")))
    if edges:  # invisible markers at edge midpoints carry the edge hover
        fig.add_trace(go.Scatter(
            x=[(pos[u][0] + pos[v][0]) / 2 for u, v, _ in edges],
            y=[(pos[u][1] + pos[v][1]) / 2 for u, v, _ in edges],
            mode="markers", marker=dict(size=6, opacity=0), showlegend=False, hovertemplate="%{text}<extra></extra>",
            text=[f"{html.escape(str(u))} – {html.escape(str(v))}: {w:.3f}" for u, v, w in edges]))
    for ty, nodes in _nodes_by_type(graph).items():
        fig.add_trace(go.Scatter(
            x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text", name=ty,
            text=[html.escape(str(n)) for n in nodes], textposition="top center",
            hovertemplate="%{hovertext}<extra></extra>",
            hovertext=[f"{html.escape(str(n))}<br>type: {html.escape(ty)}" for n in nodes],
            marker=dict(size=14, color=_type_color(ty), line=dict(width=1, color="white"))))
    hidden = dict(visible=False)
    fig.update_layout(title=dict(text=html.escape(title), x=0.5), width=900, height=760, plot_bgcolor="white",
                      xaxis=hidden, yaxis=dict(hidden, scaleanchor="x"), legend=dict(title=dict(text="task type")))
    return fig


def graph_png_figure(graph: nx.Graph, *, seed: int = 0, title: str = "Task graph (RSA)") -> MplFigure:
    """Static task graph for papers: the same layout, widths and colours as :func:`graph_figure`."""
    pos, edges = _graph_geometry(graph, seed)
    fig = MplFigure(figsize=(8.0, 7.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scale = max((abs(w) for _, _, w in edges), default=1.0) or 1.0
    if edges:
        ax.add_collection(LineCollection(
            [(pos[u], pos[v]) for u, v, _ in edges], linewidths=[0.3 + 3.7 * abs(w) / scale for _, _, w in edges],
            colors=[(0.13, 0.4, 0.67, _edge_alpha(w, scale)) if w < 0 else (0.4, 0.4, 0.4, _edge_alpha(w, scale))
                    for _, _, w in edges],
            linestyles=["--" if w < 0 else "-" for _, _, w in edges], zorder=1))
    for ty, nodes in _nodes_by_type(graph).items():
        xy = np.array([pos[n] for n in nodes])
        ax.scatter(xy[:, 0], xy[:, 1], s=140, color=_type_color(ty), label=ty,
                   edgecolors="white", linewidths=1.0, zorder=2)
        for n, (x, y) in zip(nodes, xy):
            ax.annotate(str(n), (x, y), xytext=(0, 9), textcoords="offset points", ha="center", fontsize=8, zorder=3)
    ax.set_aspect("equal")
    ax.margins(0.12)  # room for the labels of the outermost nodes
    ax.set_axis_off()
    ax.set_title(title)
    ax.legend(title="task type", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
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
    """Write a plotly figure as one self-contained HTML file (plotly.js inlined, works offline), atomically."""
    if not isinstance(fig, go.Figure):
        raise UserInputError(f"fig: expected a plotly.graph_objects.Figure, got {type(fig).__name__}.")
    path = check_output_path(path, what="HTML")
    with atomic_path(path) as tmp:
        fig.write_html(tmp, include_plotlyjs=True, full_html=True, include_mathjax=False)


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


def _color_limit(s: np.ndarray) -> float:
    off = s[~np.eye(s.shape[0], dtype=bool)]
    lim = float(np.max(np.abs(off))) if off.size else 1.0
    return lim if lim > 0 else 1.0


def _graph_geometry(graph: nx.Graph, seed: int) -> tuple[dict, list[tuple[object, object, float]]]:
    """Node positions (seeded spring layout) and the edges as (u, v, weight); missing weights count as 1."""
    if not isinstance(graph, nx.Graph):
        raise UserInputError(f"graph: expected a networkx.Graph, got {type(graph).__name__}.")
    if graph.number_of_nodes() == 0:
        raise UserInputError("graph: expected at least one node, got an empty graph.")
    check_int(seed, name="seed", form="expected")
    edges = []
    for u, v, w in graph.edges(data="weight", default=1.0):
        if u == v:
            continue  # a self loop carries no information in a similarity graph
        try:
            value = float(w)
        except (TypeError, ValueError):
            value = float("nan")
        if not np.isfinite(value):
            raise UserInputError(f"graph: edge '{u}'-'{v}' has weight {w!r}; expected a finite number.")
        edges.append((u, v, value))
    # Only positive similarity attracts (spring_layout misbehaves on negative weights). A weak pull between every
    # pair keeps a sparsified graph's clusters from drifting apart, which would crowd each cluster's labels.
    nodes = list(graph.nodes)
    strong = max([w for _, _, w in edges if w > 0], default=1.0)
    pull = _BACKGROUND_PULL
    layout = nx.Graph()
    layout.add_nodes_from(nodes)
    layout.add_edges_from(itertools.combinations(nodes, 2), weight=pull)
    # Cubing the relative weight makes equilibrium length ~ 1/w instead of w^(-1/3), so weak edges of a dense graph
    # stop pulling as hard as strong ones and its clusters show.
    layout.add_weighted_edges_from((u, v, max((max(w, 0.0) / strong) ** 3, pull)) for u, v, w in edges)
    pos = nx.spring_layout(layout, seed=int(seed), weight="weight", k=_SPRING_K / np.sqrt(len(nodes)),
                           iterations=200)
    return {n: (float(p[0]), float(p[1])) for n, p in pos.items()}, edges


def _type_color(ty: str) -> str:
    return TYPE_COLORS.get(ty, TYPE_COLORS[OTHER_TYPE])  # a user's own type names share the "other" grey


def _edge_alpha(w: float, scale: float) -> float:
    """Weak edges fade as well as thin out, so a dense graph's strong edges stand out."""
    return 0.15 + 0.55 * abs(w) / scale


def _nodes_by_type(graph: nx.Graph) -> dict[str, list]:
    """Nodes grouped by their ``type`` attribute, known types first in the canonical order."""
    groups: dict[str, list] = {}
    for node, ty in graph.nodes(data="type", default=OTHER_TYPE):
        groups.setdefault(str(ty), []).append(node)
    rank = {ty: i for i, ty in enumerate(_TYPE_ORDER)}
    return {ty: groups[ty] for ty in sorted(groups, key=lambda ty: (rank.get(ty, len(rank)), ty))}
