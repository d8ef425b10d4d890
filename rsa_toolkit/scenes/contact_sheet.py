"""A contact sheet: a few scenes × the RGB image and all 20 labels, as a matplotlib Figure (no pyplot, no display).

Per-pixel labels are drawn as images (depths: viridis, metres; normals: (n + 1)/2 as RGB; curvature: k1 in red,
k2 in green, scaled by 1/0.2 m; segments: a random colour per id; semantic: a fixed colour per class). The
autoencoding-like tasks show their inputs (noisy, gray, masked image); image-level labels are bar charts, and the
vanishing points are drawn on the image (a ring where a point is inside the frame, an arrow towards it otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from rsa_toolkit.scenes.layout import ROOM_LAYOUT_FIELDS, vanishing_point_pixels
from rsa_toolkit.scenes.render import add_noise, inpainting_mask, render, to_gray
from rsa_toolkit.scenes.sampling import sample_scene
from rsa_toolkit.scenes.scene import CLASSES, OBJECT_CLASSES, SCENE_TYPES

__all__ = ["contact_sheet"]

_COLUMNS = 7
_ROWS_PER_SCENE = 3
_CURVATURE_SCALE = 0.2  # metres: curvature 1/0.2 m shows at full intensity
_CLASS_COLORS = np.array([[0, 0, 0], [0.65, 0.65, 0.65], [0.55, 0.35, 0.2], [0.95, 0.95, 0.8], [0.2, 0.45, 0.85],
                          [0.9, 0.2, 0.2], [0.2, 0.75, 0.3], [0.85, 0.65, 0.1]])
_VP_COLORS = ("tab:red", "tab:green", "tab:blue")


def _id_colors(ids: np.ndarray) -> np.ndarray:
    palette = np.random.default_rng(7).uniform(0.15, 1.0, size=(int(ids.max()) + 1, 3))
    return palette[ids.astype(int)]


def _image(ax, img, title, **kw) -> None:
    ax.imshow(img, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _bars(ax, values, names, title, *, ylim=None) -> None:
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.tick_params(axis="y", labelsize=6)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title(title, fontsize=8)


def _vanishing_points(ax, rgb, vp, fov) -> None:
    size = rgb.shape[0]
    _image(ax, rgb, "vanishing_point (fwd r, side g, vert b)")
    c = 0.5 * size
    for (u, v), a, color in zip(vanishing_point_pixels(vp, size, fov), vp.reshape(3, 3), _VP_COLORS):
        if np.isfinite(u) and np.isfinite(v) and 0 <= u < size and 0 <= v < size and a[2] > 0:
            ax.plot(u - 0.5, v - 0.5, "o", mfc="none", mec=color, ms=9, mew=2)
        else:  # off-frame or at infinity: an arrow from the centre towards it
            direction = np.array([u - c, v - c]) if np.isfinite(u) and np.isfinite(v) else a[:2]
            direction = direction / max(np.linalg.norm(direction), 1e-9) * (np.sign(a[2]) if a[2] < 0 else 1)
            ax.annotate("", xy=(c + 0.4 * size * direction[0], c + 0.4 * size * direction[1]), xytext=(c, c),
                        arrowprops={"color": color, "width": 1.5, "headwidth": 6})
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylim(size - 0.5, -0.5)


def _scene_panels(axes, seed: int, size: int) -> None:
    scene = sample_scene(seed)
    f = render(scene, size)
    rgb = f["rgb"]
    mask = inpainting_mask(size, seed=seed)
    curv = np.clip(f["curvature"] * _CURVATURE_SCALE, 0, 1)
    panels = [
        lambda ax: _image(ax, rgb, f"seed {seed}: {SCENE_TYPES[scene.scene_type]} — autoencoding"),
        lambda ax: _image(ax, add_noise(rgb, seed=seed), "denoising (input)"),
        lambda ax: _image(ax, to_gray(rgb)[..., 0], "colorization (input)", cmap="gray", vmin=0, vmax=1),
        lambda ax: _image(ax, rgb * (1 - mask), "inpainting (input)"),
        lambda ax: _image(ax, f["edge_texture"][..., 0], "edge_texture", cmap="gray", vmin=0, vmax=1),
        lambda ax: _image(ax, f["keypoints2d"][..., 0], "keypoints2d", cmap="magma", vmin=0, vmax=1),
        lambda ax: _image(ax, _id_colors(f["segment_unsup2d"][..., 0]), "segment_unsup2d"),
        lambda ax: _image(ax, f["depth_zbuffer"][..., 0], "depth_zbuffer (m, 0–max)", cmap="viridis", vmin=0),
        lambda ax: _image(ax, f["depth_euclidean"][..., 0], "depth_euclidean (m, 0–max)", cmap="viridis", vmin=0),
        lambda ax: _image(ax, (f["normal"] + 1) / 2, "normal ((n+1)/2)"),
        lambda ax: _image(ax, np.dstack([curv, np.zeros(curv.shape[:2])]), "curvature (k1 red, k2 green)"),
        lambda ax: _image(ax, f["reshading"][..., 0], "reshading", cmap="gray", vmin=0, vmax=1),
        lambda ax: _image(ax, f["edge_occlusion"][..., 0], "edge_occlusion", cmap="gray", vmin=0, vmax=1),
        lambda ax: _image(ax, f["keypoints3d"][..., 0], "keypoints3d", cmap="magma", vmin=0, vmax=1),
        lambda ax: _image(ax, _id_colors(f["segment_unsup25d"][..., 0]), "segment_unsup25d"),
        lambda ax: _image(ax, _CLASS_COLORS[f["segment_semantic"][..., 0].astype(int)], "segment_semantic"),
        lambda ax: _bars(ax, f["class_object"], OBJECT_CLASSES, "class_object", ylim=(0, 1)),
        lambda ax: _bars(ax, f["class_scene"], SCENE_TYPES, "class_scene", ylim=(0, 1)),
        lambda ax: _bars(ax, f["room_layout"], ROOM_LAYOUT_FIELDS, "room_layout", ylim=(-1.6, 1.6)),
        lambda ax: _vanishing_points(ax, rgb, f["vanishing_point"], scene.camera.fov),
        lambda ax: _legend(ax),
    ]
    for ax, draw in zip(axes, panels):
        draw(ax)


def _legend(ax) -> None:
    ax.set_axis_off()
    ax.set_title("segment_semantic classes", fontsize=8)
    for i, (name, color) in enumerate(zip(CLASSES[1:], _CLASS_COLORS[1:])):
        y = 0.92 - i * 0.13
        ax.add_patch(Rectangle((0.05, y - 0.04), 0.12, 0.08, facecolor=color, edgecolor="k", lw=0.5,
                               transform=ax.transAxes))
        ax.text(0.22, y, f"{i + 1} {name}", va="center", fontsize=8, transform=ax.transAxes)


def contact_sheet(seeds: Sequence[int] = (5, 6, 38), size: int = 128, *, dpi: int = 100) -> Figure:
    """A Figure with, for each seed, 3 rows × 7 panels: the 20 labels (see the module docstring) and a legend."""
    fig = Figure(figsize=(_COLUMNS * 2.1, len(seeds) * _ROWS_PER_SCENE * 2.25), dpi=dpi)
    grid = fig.add_gridspec(len(seeds) * _ROWS_PER_SCENE, _COLUMNS, hspace=0.55, wspace=0.25)
    for i, seed in enumerate(seeds):
        axes = [fig.add_subplot(grid[i * _ROWS_PER_SCENE + r, c])
                for r in range(_ROWS_PER_SCENE) for c in range(_COLUMNS)]
        _scene_panels(axes, seed, size)
    fig.subplots_adjust(left=0.03, right=0.99, top=0.98, bottom=0.03)
    return fig
