"""Figures of the task graph (:func:`rsa_toolkit.analysis.graph.task_graph`): an interactive plotly figure and its PNG
twin for papers, with the same seeded spring layout, edge widths and type colours (:mod:`rsa_toolkit.viz.plots`)."""

from __future__ import annotations

import html
import itertools

import networkx as nx
import numpy as np
import plotly.graph_objects as go
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure as MplFigure

from rsa_toolkit.analysis.graph import OTHER_TYPE
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.validation import check_int
from rsa_toolkit.viz.plots import TYPE_ORDER, type_color

__all__ = ["graph_figure", "graph_png_figure"]

_SPRING_K = 1.5  # spring length × sqrt(T); networkx's 1 packs a cluster's labels on top of each other
_BACKGROUND_PULL = 0.03  # layout-only attraction between unlinked nodes (the strongest edge pulls with 1)


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
            marker=dict(size=14, color=type_color(ty), line=dict(width=1, color="white"))))
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
        ax.scatter(xy[:, 0], xy[:, 1], s=140, color=type_color(ty), label=ty,
                   edgecolors="white", linewidths=1.0, zorder=2)
        for n, (x, y) in zip(nodes, xy):
            ax.annotate(str(n), (x, y), xytext=(0, 9), textcoords="offset points", ha="center", fontsize=8, zorder=3)
    ax.set_aspect("equal")
    ax.margins(0.12)  # room for the labels of the outermost nodes
    ax.set_axis_off()
    ax.set_title(title)
    ax.legend(title="task type", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


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


def _edge_alpha(w: float, scale: float) -> float:
    """Weak edges fade as well as thin out, so a dense graph's strong edges stand out."""
    return 0.15 + 0.55 * abs(w) / scale


def _nodes_by_type(graph: nx.Graph) -> dict[str, list]:
    """Nodes grouped by their ``type`` attribute, known types first in the canonical order."""
    groups: dict[str, list] = {}
    for node, ty in graph.nodes(data="type", default=OTHER_TYPE):
        groups.setdefault(str(ty), []).append(node)
    rank = {ty: i for i, ty in enumerate(TYPE_ORDER)}
    return {ty: groups[ty] for ty in sorted(groups, key=lambda ty: (rank.get(ty, len(rank)), ty))}
