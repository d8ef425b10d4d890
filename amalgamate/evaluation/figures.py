"""The report's figures (Luo et al., ECCV 2020, Figs. 2 and 3): training curves (plotly) and predictions (matplotlib).

Both return figure objects and never show or save them; :mod:`amalgamate.evaluation.report` saves them with
:func:`rsa_toolkit.viz.plots.save_html` and :func:`~rsa_toolkit.viz.plots.save_png`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from amalgamate.evaluation.results import Evaluation

__all__ = ["TASK_COLORS", "task_colors", "curves_figure", "predictions_figure"]

# Okabe-Ito (colour-blind safe) without its yellow, which does not show on white; then plotly's Dark24 for zoos with
# more tasks than that.
TASK_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def task_colors(tasks: list[str]) -> dict[str, str]:
    """One colour per task, in the given order (the same task keeps its colour across runs and panels)."""
    from plotly.colors import qualitative

    palette = TASK_COLORS + tuple(c for c in qualitative.Dark24 if c not in TASK_COLORS)
    return {task: palette[i % len(palette)] for i, task in enumerate(dict.fromkeys(tasks))}


def curves_figure(runs: list[tuple[str, list[dict[str, Any]]]]):  # noqa: ANN201 - plotly Figure
    """Seed Fig. 3: per-task distillation loss (top, log scale) and loss weight (bottom) over the training steps.

    ``runs``: (label, log entries) per run; an entry has ``step``, ``losses`` {task: value} and ``weights``
    {task: value}. A task has one colour in both panels and in every run; runs differ by line dash. The legend has
    one group per task (its loss and its weight, per run): clicking an entry shows or hides the task's curves in both
    panels.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("distillation loss per task", "loss weight per task"))
    tasks = [task for _, entries in runs if entries for task in entries[0]["losses"]]
    colors = task_colors(tasks)
    several = sum(1 for _, entries in runs if entries) > 1
    titled: set[str] = set()
    for r, (label, entries) in enumerate(runs):
        if not entries:
            continue
        steps = [e["step"] for e in entries]
        dash = _RUN_DASHES[r % len(_RUN_DASHES)]
        prefix = f"{label}: " if several else ""
        for task in entries[0]["losses"]:
            for row, (key, what) in enumerate((("losses", "loss"), ("weights", "weight")), start=1):
                if not all(task in e.get(key, {}) for e in entries):
                    continue
                group_title = {} if task in titled else dict(legendgrouptitle=dict(text=task))
                titled.add(task)
                fig.add_trace(go.Scatter(
                    x=steps, y=[e[key][task] for e in entries], mode="lines", name=f"{prefix}{what}",
                    legendgroup=task, **group_title, line=dict(color=colors[task], dash=dash, width=2),
                    hovertemplate=f"{prefix}{task} {what}<br>step %{{x}}: %{{y:.4g}}<extra></extra>"),
                    row=row, col=1)
    fig.update_yaxes(type="log", title_text="loss (log scale)", row=1, col=1)
    fig.update_yaxes(title_text="weight", row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(title=dict(text="Training curves", x=0.5), template="plotly_white", autosize=True,
                      hovermode="x unified", legend=dict(groupclick="togglegroup", tracegroupgap=12))
    return fig


@dataclass
class _Shown:
    """How one output is displayed: an image (None: the caption only), imshow options, and the colour bar's label
    (None: no colour bar, e.g. RGB images)."""

    image: np.ndarray | None
    caption: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    units: str | None = None
    note: str = ""  # added to the column title, e.g. how an RGB image encodes its values


def _display(task: str, space: str, array: np.ndarray, truth: bool) -> _Shown:
    """How one output is shown in the figure; image-level outputs are captions only."""
    import torch

    from rsa_toolkit.scenes import SCENE_TYPES

    from amalgamate.spaces import depth_metres

    if space == "class_logits" and array.ndim == 1:  # image-level classes
        k = int(np.argmax(array))
        names = SCENE_TYPES if task == "class_scene" and len(SCENE_TYPES) == len(array) else None
        return _Shown(None, names[k] if names else f"class {k}")
    if array.ndim == 1:
        return _Shown(None, " ".join(f"{v:.2f}" for v in array[:3]) + " …")
    if space in ("log_depth", "taskonomy_depth"):
        metres = np.exp(array[0]) if truth else depth_metres(torch.from_numpy(array[0]), space).numpy()
        return _Shown(metres, options={"cmap": "viridis"}, units="depth (m)")
    if space == "normal":
        return _Shown(np.clip((np.moveaxis(array, 0, -1) + 1) / 2, 0, 1), note="RGB = xyz")
    if space == "edge_logits":
        prob = array[0] if truth else 1 / (1 + np.exp(-array[0]))
        return _Shown(prob, options={"cmap": "gray", "vmin": 0, "vmax": 1}, units="edge probability")
    if space == "class_logits":
        labels = array if truth else np.argmax(array, axis=0)
        return _Shown(labels, options={"cmap": "tab10", "vmin": -0.5, "vmax": 9.5, "interpolation": "nearest"},
                      units="class")
    if array.ndim == 2:  # id maps (unsupervised segments)
        return _Shown(array % 20, options={"cmap": "tab20", "vmin": -0.5, "vmax": 19.5, "interpolation": "nearest"},
                      units="segment id (mod 20)")
    if array.shape[0] == 3:
        return _Shown(np.clip(np.moveaxis(array, 0, -1), 0, 1), note="RGB")
    lo, hi = np.percentile(array[0], [1, 99])
    return _Shown(array[0], options={"cmap": "magma", "vmin": lo, "vmax": hi if hi > lo else lo + 1},
                  units="value (1st-99th percentile)")


def _share_scale(shown: list[_Shown]) -> list[_Shown]:
    """One colour scale (1st-99th percentile of them all) for the scalar maps of a row that set none, e.g. depth,
    so the student, the teacher and the truth compare by colour."""
    free = [s for s in shown if s.image is not None and s.image.ndim == 2 and "vmin" not in s.options]
    if free:
        lo, hi = np.percentile(np.concatenate([s.image.ravel() for s in free]), [1, 99])
        for s in free:
            s.options = {**s.options, "vmin": float(lo), "vmax": float(hi if hi > lo else lo + 1)}
    return shown


def predictions_figure(examples: dict[str, np.ndarray], metrics: Evaluation, *, label: str):  # noqa: ANN201
    """Seed Fig. 2: one row per test frame; the input, then per task the student's, the teacher's and (where known)
    the true output, with a colour bar per task and row for scalar maps (depth in metres, edge probability 0-1,
    class ids); RGB outputs such as normals get none, their column title says how they encode. ``label`` names
    the run in the title (:func:`amalgamate.evaluation.report.run_label`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = metrics.targets
    kinds = ["student", "teacher"] + (["truth"] if metrics.eval_set.ground_truth else [])
    images = examples["image"]
    n = len(images)
    shown = [{task: _share_scale([_display(task, metrics.spaces[task], examples[f"{task}/{kind}"][row],
                                           kind == "truth") for kind in kinds]) for task in tasks}
             for row in range(n)]
    with_bar = {task: any(s.units is not None and s.image is not None for r in shown for s in r[task])
                for task in tasks}
    # Columns: the input, then per task its panels and, for scalar maps, a narrow colour-bar column.
    ratios = [1.0] + [r for task in tasks for r in [1.0] * len(kinds) + ([0.07, 0.38] if with_bar[task] else [])]
    fig = Figure(figsize=(1.6 * sum(ratios) + 0.3, 1.7 * n + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, len(ratios), squeeze=False, gridspec_kw=dict(width_ratios=ratios, wspace=0.08))
    for row in range(n):
        axes[row][0].imshow(images[row])
        if row == 0:
            axes[row][0].set_title("input", fontsize=8)
        col = 1
        for task in tasks:
            last_image = None
            for kind, s in zip(kinds, shown[row][task]):
                ax = axes[row][col]
                if s.image is None:
                    ax.text(0.5, 0.5, s.caption, ha="center", va="center", fontsize=8, wrap=True)
                else:
                    image = ax.imshow(s.image, **s.options)
                    if s.units is not None:
                        last_image = (image, s.units)
                if row == 0:
                    ax.set_title(f"{task}" + (f" ({s.note})" if s.note else "") + f"\n{kind}", fontsize=8)
                col += 1
            if with_bar[task]:
                bar, gap = axes[row][col], axes[row][col + 1]
                gap.set_axis_off()
                if last_image is None:
                    bar.set_axis_off()
                else:
                    colorbar = fig.colorbar(last_image[0], cax=bar)
                    colorbar.set_label(last_image[1], fontsize=6)
                    colorbar.ax.tick_params(labelsize=6)
                    if last_image[0].get_cmap().name in ("tab10", "tab20"):
                        colorbar.locator = _integer_ticks()
                        colorbar.update_ticks()
                col += 2
        for ax in axes[row]:
            if ax.get_images() or ax.texts:
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle(f"{label}: student vs teacher" + (" vs ground truth" if "truth" in kinds else ""),
                 fontsize=9)
    return fig


def _integer_ticks():  # noqa: ANN202 - a matplotlib Locator
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=5, integer=True)
