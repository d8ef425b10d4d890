"""Tests for rsa_toolkit.viz.plots: hover content, ordering, offline HTML, PNG output, bad inputs."""

from __future__ import annotations

import re
import sys

import numpy as np
import plotly.graph_objects as go
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure as MplFigure

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.graph import cluster_order, task_graph
from rsa_toolkit.viz.graph_figures import graph_figure, graph_png_figure
from rsa_toolkit.viz.plots import (
    TYPE_COLORS,
    HTML_HEIGHT,
    save_html,
    save_png,
    similarity_color_scale,
    similarity_heatmap,
    similarity_png_figure,
)
from rsa_toolkit.tasks import TASK_TYPES, list_tasks

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def zoo() -> tuple[np.ndarray, list[str]]:
    """The 20 task names and a symmetric similarity matrix with blocks by task type."""
    tasks = list_tasks()
    codes = np.array([TASK_TYPES.index(t.type) for t in tasks])
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, (20, 20))
    s = np.where(codes[:, None] == codes[None, :], 0.7, 0.2) + (noise + noise.T) / 2
    np.fill_diagonal(s, 1.0)
    perm = rng.permutation(20)
    return s[np.ix_(perm, perm)], [tasks[i].name for i in perm]


def test_type_colors_cover_every_type() -> None:
    assert set(TYPE_COLORS) == {*TASK_TYPES, "other"}
    assert len(set(TYPE_COLORS.values())) == len(TYPE_COLORS)


def test_heatmap_hover_shows_names_values_and_ci() -> None:
    s = np.array([[1.0, 0.12345, -0.5], [0.12345, 1.0, 0.25], [-0.5, 0.25, 1.0]])
    lo, hi = s - 0.05, s + 0.05
    lo[0, 2] = np.nan  # an unknown bound
    fig = similarity_heatmap(s, ["depth", "normal", "x<y"], ci_low=lo, ci_high=hi, order="given")
    text = fig.data[0].text
    assert text[0][1] == "row: depth<br>column: normal<br>similarity: 0.123<br>95% CI: [0.073, 0.173]"
    assert text[2][1] == "row: x&lt;y<br>column: normal<br>similarity: 0.250<br>95% CI: [0.200, 0.300]"
    assert text[0][2].endswith("similarity: -0.500<br>95% CI: n/a")
    assert "CI" not in similarity_heatmap(s, ["a", "b", "c"]).data[0].text[0][1]


def test_heatmap_orders_by_cluster_and_marks_types(zoo) -> None:
    s, names = zoo
    fig = similarity_heatmap(s, names)
    order = cluster_order(s)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), s[np.ix_(order, order)])
    ticks = fig.layout.xaxis.ticktext
    assert ticks == fig.layout.yaxis.ticktext
    by_name = {t.name: t.type for t in list_tasks()}
    for tick, i in zip(ticks, order):
        assert tick == f'<span style="color:{TYPE_COLORS[by_name[names[i]]]}">{names[i]}</span>'
    legend = [tr.name for tr in fig.data if isinstance(tr, go.Scatter)]
    assert legend == list(TASK_TYPES)
    assert fig.layout.xaxis.scaleanchor == "y"  # square cells
    off = s[~np.eye(20, dtype=bool)]
    assert (fig.data[0].zmin, fig.data[0].zmax) == (off.min(), off.max())  # the colour bar spans the data
    given = similarity_heatmap(s, names, order="given")
    np.testing.assert_allclose(np.asarray(given.data[0].z), s)
    perm = np.arange(20)[::-1]
    np.testing.assert_allclose(np.asarray(similarity_heatmap(s, names, order=perm).data[0].z), s[np.ix_(perm, perm)])


def test_save_html_is_self_contained(tmp_path, zoo) -> None:
    s, names = zoo
    path = tmp_path / "sim.html"
    save_html(similarity_heatmap(s, names, ci_low=s - 0.1, ci_high=s + 0.1), path)
    html = path.read_text(encoding="utf-8")
    assert path.stat().st_size > 1_000_000  # plotly.js is inlined
    assert not re.search(r"<script[^>]*\ssrc\s*=", html, flags=re.IGNORECASE)  # no script from anywhere else
    assert not re.search(r"<link[^>]*\shref\s*=\s*[\"']https?:", html, flags=re.IGNORECASE)
    assert re.match(r"\s*(<!doctype html>\s*)?<html", html, flags=re.IGNORECASE)  # a full page
    assert "depth_zbuffer" in html and f"{s[0, 1]:.3f}" in html
    assert [p.name for p in tmp_path.iterdir()] == ["sim.html"]
    # It fills the page: no fixed pixel size, full width, a height tied to the window, plotly's responsive mode.
    assert f'style="height:{HTML_HEIGHT}; width:100%;"' in html
    assert '"responsive": true' in html
    assert not re.search(r'"layout": \{[^{]*"(width|height)": \d', html)


def test_heatmap_has_no_fixed_size() -> None:
    fig = similarity_heatmap(np.eye(3) + 0.1, ["a", "b", "c"])
    assert fig.layout.width is None and fig.layout.height is None and fig.layout.autosize
    assert fig.layout.xaxis.scaleanchor == "y"  # the cells stay square at any size


def _matrix(values: list[float]) -> np.ndarray:
    """A 3 x 3 symmetric matrix with off-diagonal values (0, 1), (0, 2), (1, 2) and a diagonal of 1."""
    s = np.eye(3)
    for (i, j), v in zip([(0, 1), (0, 2), (1, 2)], values):
        s[i, j] = s[j, i] = v
    return s


@pytest.mark.parametrize("values, kind, lo, hi", [
    ([0.2, 0.5, 0.9], "sequential", 0.2, 0.9),
    ([-0.2, -0.5, -0.9], "sequential", -0.9, -0.2),
    ([0.0, 0.3, 0.6], "sequential", 0.0, 0.6),  # zero goes with either sign
    ([-0.2, 0.1, 0.8], "diverging", -0.2, 0.8),
    ([0.4, 0.4, 0.4], "sequential", 0.0, 0.4),  # one value: widened to include 0
    ([0.0, 0.0, 0.0], "diverging", -1.0, 1.0),
])
def test_color_scale_fits_the_data(values, kind, lo, hi) -> None:
    scale = similarity_color_scale(_matrix(values))
    assert (scale.kind, scale.vmin, scale.vmax) == (kind, pytest.approx(lo), pytest.approx(hi))
    assert scale.stops[0][0] == 0.0 and scale.stops[-1][0] == 1.0
    assert all(re.fullmatch(r"#[0-9a-f]{6}", colour) for _, colour in scale.stops)


def test_diverging_scale_is_white_at_zero_and_symmetric_in_value() -> None:
    scale = similarity_color_scale(_matrix([-0.2, 0.1, 0.8]))
    white = np.array([int(scale.color(0.0)[k:k + 2], 16) for k in (1, 3, 5)])
    assert np.all(np.abs(white - 0xF7) <= 2)  # RdBu's near-white centre (#f7f7f7)
    red, blue = (np.array([int(c[k:k + 2], 16) for k in (1, 3, 5)]) for c in (scale.color(0.2), scale.color(-0.2)))
    assert red[0] > red[2] and blue[2] > blue[0]  # red = alike, blue = opposite
    assert abs(int(red.sum()) - int(blue.sum())) < 60  # equally far from white: -0.2 is not stretched to dark blue
    sequential = similarity_color_scale(_matrix([0.2, 0.5, 0.9]))
    assert sequential.stops[0][1] == "#440154" and sequential.stops[-1][1] == "#fde725"  # viridis end to end


@pytest.mark.parametrize("values, kind", [([0.2, 0.5, 0.9], "sequential"), ([-0.2, 0.1, 0.8], "diverging")])
def test_both_figures_use_the_same_scale(values, kind) -> None:
    s = _matrix(values)
    scale = similarity_color_scale(s)
    assert scale.kind == kind
    trace = similarity_heatmap(s, ["a", "b", "c"], order="given").data[0]
    assert (trace.zmin, trace.zmax) == (scale.vmin, scale.vmax)
    assert [list(stop) for stop in trace.colorscale] == scale.plotly()
    image = similarity_png_figure(s, ["a", "b", "c"], order="given").axes[0].get_images()[0]
    assert (image.norm.vmin, image.norm.vmax) == (scale.vmin, scale.vmax)
    for pos, colour in scale.stops[::8]:  # up to the rounding of matplotlib's 256-entry lookup table
        np.testing.assert_allclose(to_rgb(image.get_cmap()(pos)), to_rgb(colour), atol=3 / 255)


def test_png_cell_text_is_readable_on_both_ends() -> None:
    s = _matrix([0.1, 0.5, 0.9])
    ax = similarity_png_figure(s, ["a", "b", "c"], order="given").axes[0]
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    assert colours["0.10"] == "white" and colours["1.00"] == "black"  # viridis: dark purple low, yellow high


def test_heatmap_writes_values_in_cells_up_to_30_tasks() -> None:
    rng = np.random.default_rng(3)
    for t, written in ((3, True), (30, True), (31, False)):
        x = rng.normal(size=(t, 5))
        s = np.corrcoef(x)
        trace = similarity_heatmap(s, [f"t{i}" for i in range(t)]).data[0]
        assert (trace.texttemplate == "%{z:.2f}") is written
        if written:  # plotly picks black or white per cell for contrast, and a size that fits the cell
            assert trace.textfont.color is None and trace.textfont.size is None
        assert trace.hovertemplate == "%{text}<extra></extra>"  # the value on hover either way


def test_png_figure_for_papers(tmp_path, zoo) -> None:
    s, names = zoo
    fig = similarity_png_figure(s, names, title="Mini zoo")
    assert isinstance(fig, MplFigure)
    ax = fig.axes[0]
    assert len(ax.texts) == 20 * 20  # values written in the cells
    order = cluster_order(s)
    by_name = {t.name: t.type for t in list_tasks()}
    for label, i in zip(ax.get_yticklabels(), order):
        assert label.get_text() == names[i] and label.get_color() == TYPE_COLORS[by_name[names[i]]]
    path = tmp_path / "sim.png"
    save_png(similarity_png_figure(s[:5, :5], names[:5]), path, dpi=40)  # small: drawing 400 labels is slow
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    big = similarity_png_figure(np.eye(30), [f"t{i}" for i in range(30)])
    assert len(big.axes[0].texts) == 0  # too many cells to annotate


def test_graph_figures(tmp_path, zoo) -> None:
    s, names = zoo
    g = task_graph(s, names, top_k=3)
    fig = graph_figure(g, seed=1)
    nodes = [tr for tr in fig.data if tr.mode == "markers+text"]
    assert [tr.name for tr in nodes] == list(TASK_TYPES)
    assert sorted(t for tr in nodes for t in tr.text) == sorted(names)
    assert all(tr.marker.color == TYPE_COLORS[tr.name] for tr in nodes)
    assert any("depth_zbuffer<br>type: 3D" in h for tr in nodes for h in tr.hovertext)
    widths = [tr.line.width for tr in fig.data if tr.mode == "lines"]
    assert max(widths) > min(widths)  # edge width follows the weight
    again = graph_figure(g, seed=1)
    assert [tr.x for tr in again.data] == [tr.x for tr in fig.data]  # seeded layout
    png = graph_png_figure(g, seed=1)
    path = tmp_path / "graph.png"
    save_png(png, path, dpi=50)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    save_html(fig, tmp_path / "graph.html")
    assert "class_scene" in (tmp_path / "graph.html").read_text(encoding="utf-8")


def test_failed_write_leaves_nothing(tmp_path, monkeypatch) -> None:
    fig = similarity_png_figure(np.eye(2), ["a", "b"])

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_png(fig, tmp_path / "out.png")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: similarity_heatmap(np.ones((2, 3)), ["a", "b"]), r"similarity: expected a square .*\(2, 3\)"),
        (lambda: similarity_heatmap(np.eye(3), ["a", "b"]), r"names: expected 3 names .*got 2"),
        (lambda: similarity_png_figure(np.array([[1.0, np.nan], [0.0, 1.0]]), ["a", "b"]),
         r"similarity: expected finite values, got nan at \(0, 1\)"),
        (lambda: similarity_heatmap(np.eye(2), ["a", "b"], ci_low=np.eye(2)), r"ci_low, ci_high: expected both"),
        (lambda: similarity_heatmap(np.eye(2), ["a", "b"], ci_low=np.eye(3), ci_high=np.eye(3)),
         r"ci_low: expected shape \(2, 2\) .*got \(3, 3\)"),
        (lambda: similarity_heatmap(np.eye(2), ["a", "b"], ci_low=np.ones((2, 2)), ci_high=np.zeros((2, 2))),
         r"expected ci_low <= ci_high"),
        (lambda: similarity_heatmap(np.eye(2), ["a", "b"], order="alphabetical"),
         r"order: expected 'cluster', 'given' or a permutation of range\(2\), got 'alphabetical'"),
        (lambda: similarity_png_figure(np.eye(2), ["a", "b"], order=[0, 0]), r"order: expected .*got \[0, 0\]"),
        (lambda: graph_figure(task_graph(np.eye(2), ["a", "b"]).subgraph([])), r"graph: expected at least one node"),
        (lambda: graph_png_figure("not a graph"), r"graph: expected a networkx.Graph, got str"),
        (lambda: save_html(MplFigure(), "x.html"), r"fig: expected a plotly.graph_objects.Figure, got Figure"),
        (lambda: save_png(go.Figure(), "x.png"), r"fig: expected a matplotlib.figure.Figure, got Figure"),
        (lambda: save_png(MplFigure(), "x.png", dpi=0), r"dpi: expected a number between 10 and 2400, got 0"),
        (lambda: save_png(MplFigure(), "/nonexistent-dir/x.png"), r"PNG path .*does not exist"),
    ],
)
def test_bad_inputs_raise_user_input_error(call, match) -> None:
    with pytest.raises(UserInputError, match=match):
        call()


def test_library_never_touches_pyplot(tmp_path, monkeypatch) -> None:
    """Building and saving figures must not use pyplot (global state, GUI backends): importing it would fail here."""
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    s, names = np.eye(3), ["depth", "normal", "other"]
    save_png(similarity_png_figure(s, names), tmp_path / "a.png", dpi=20)
    save_png(graph_png_figure(task_graph(s, names)), tmp_path / "b.png", dpi=20)
