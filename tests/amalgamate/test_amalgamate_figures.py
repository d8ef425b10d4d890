"""The report's figures on made-up logs and outputs (no training): task colours and legend groups of the curves,
colour bars with units in the predictions grid, and a self-contained curves.html."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from rsa_toolkit.viz.plots import save_html

from amalgamate.evaluation.figures import curves_figure, predictions_figure, task_colors


def _log(tasks: list[str], steps: int = 5, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"step": s, "losses": {t: float(rng.uniform(0.1, 1)) for t in tasks},
             "weights": {t: float(rng.uniform(0.5, 2)) for t in tasks}} for s in range(1, steps + 1)]


def test_curves_one_colour_and_legend_group_per_task() -> None:
    tasks = ["depth_zbuffer", "normal", "edge_texture"]
    fig = curves_figure([("SOKA (gradnorm)", _log(tasks))])
    assert len(fig.data) == 2 * len(tasks)  # a loss and a weight curve per task
    for task in tasks:
        traces = [tr for tr in fig.data if tr.legendgroup == task]
        assert [tr.name for tr in traces] == ["loss", "weight"]
        assert len({tr.line.color for tr in traces}) == 1  # one colour across the two panels
        assert {tr.yaxis for tr in traces} == {"y", "y2"}
        assert all(tr.showlegend is not False for tr in traces)  # the weight curve is in the legend too
        assert traces[0].legendgrouptitle.text == task
    assert len({tr.line.color for tr in fig.data}) == len(tasks)  # tasks tell apart
    assert fig.layout.legend.groupclick == "togglegroup"  # a click shows or hides the task's curves in both panels
    assert fig.layout.height is None and fig.layout.width is None  # fills the page


def test_curves_of_several_runs_keep_task_colours_and_differ_by_dash() -> None:
    fig = curves_figure([("SOKA", _log(["depth", "normal"])), ("KD n-to-1", _log(["normal", "depth"], seed=1)),
                         ("empty", [])])
    colors = task_colors(["depth", "normal"])
    for tr in fig.data:
        assert tr.line.color == colors[tr.legendgroup]
    dashes = {tr.name.split(":")[0]: tr.line.dash for tr in fig.data}
    assert dashes["SOKA"] != dashes["KD n-to-1"]
    assert sum(1 for tr in fig.data if tr.legendgrouptitle.text) == 2  # one group title per task, not per run


def test_curves_html_is_self_contained(tmp_path) -> None:
    path = tmp_path / "curves.html"
    save_html(curves_figure([("SOKA", _log(["depth", "normal"]))]), path)
    html = path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc\s*=", html, flags=re.IGNORECASE)
    assert "Plotly" in html and "width:100%" in html


@pytest.fixture
def outputs() -> tuple[dict[str, np.ndarray], SimpleNamespace]:
    rng = np.random.default_rng(0)
    n, size = 2, 8
    examples = {"image": rng.uniform(0, 1, (n, size, size, 3))}
    for kind in ("student", "teacher", "truth"):
        examples[f"depth/{kind}"] = rng.normal(0.5, 0.2, (n, 1, size, size))
        examples[f"normal/{kind}"] = rng.uniform(-1, 1, (n, 3, size, size))
        examples[f"edges/{kind}"] = rng.uniform(0, 1, (n, 1, size, size)) if kind == "truth" \
            else rng.normal(0, 2, (n, 1, size, size))
    # the attributes of amalgamate.evaluation.results.Evaluation that the figure reads
    metrics = SimpleNamespace(targets=("depth", "normal", "edges"), method="soka", weighting="gradnorm",
                              eval_set=SimpleNamespace(ground_truth=True),
                              spaces={"depth": "log_depth", "normal": "normal", "edges": "edge_logits"})
    return examples, metrics


def test_predictions_have_colour_bars_with_units(outputs) -> None:
    examples, metrics = outputs
    fig = predictions_figure(examples, metrics, label="SOKA (gradnorm)")
    labels = sorted(ax.get_ylabel() for ax in fig.axes if ax.get_ylabel())  # colour bars carry their units
    assert labels == ["depth (m)"] * 2 + ["edge probability"] * 2  # one per scalar task and row, none for normals
    edge_bars = [ax for ax in fig.axes if ax.get_ylabel() == "edge probability"]
    assert all(ax.get_ylim() == (0.0, 1.0) for ax in edge_bars)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert "normal (RGB = xyz)\nstudent" in titles  # RGB maps say so instead of a colour bar
    assert titles[0] == "input"
