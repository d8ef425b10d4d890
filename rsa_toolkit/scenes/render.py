"""Render a scene: the RGB image and exact labels for the 20 Taskonomy tasks, plus the input transforms.

``render(scene, size)`` casts one ray per pixel (:mod:`.raycast`), textures the hits (:mod:`.textures`), shades
them with a point light, hard shadows and an ambient term, and derives each requested label. See
:data:`rsa_toolkit.scenes.LABEL_SPECS` (and docs/scenes.md) for every label's formula, shape and range.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rsa_toolkit.validation import check_int, check_number
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import list_tasks, resolve_task
from rsa_toolkit.scenes import labels, layout
from rsa_toolkit.scenes.raycast import GeometryBuffer, cast, shadow_mask
from rsa_toolkit.scenes.scene import Scene
from rsa_toolkit.scenes.textures import texture_albedo

__all__ = ["render", "add_noise", "to_gray", "inpainting_mask", "ALL_TASKS", "MIN_SIZE"]

ALL_TASKS: tuple[str, ...] = tuple(t.name for t in list_tasks())
MIN_SIZE = 16
_GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma


def _check_tasks(tasks: Iterable[str] | str | None) -> tuple[str, ...]:
    if tasks is None:
        return ALL_TASKS
    if isinstance(tasks, str):
        tasks = [tasks]
    return tuple(dict.fromkeys(resolve_task(t) for t in tasks))  # unknown names raise with the closest valid ones


def _check_scene(scene: object) -> Scene:
    if not isinstance(scene, Scene):
        raise UserInputError(f"scene must be a rsa_toolkit.scenes.Scene (e.g. sample_scene(seed)), "
                             f"got {type(scene).__name__}.")
    return scene


def _check_size(size: object) -> int:
    return check_int(size, name="size", minimum=MIN_SIZE)


def _albedo(scene: Scene, gb: GeometryBuffer) -> np.ndarray:
    """Albedo (N, 3): texture groups are the walls, the floor, the ceiling and each shape."""
    group = np.where(gb.surface < 4, 0, np.where(gb.surface < 6, gb.surface - 3, 3 + (gb.surface - 6) // 6))
    textures = (scene.room.wall, scene.room.floor, scene.room.ceiling, *(s.texture for s in scene.shapes))
    out = np.empty((len(group), 3))
    for g in np.flatnonzero(np.bincount(group)):
        sel = group == g
        out[sel] = texture_albedo(textures[g], gb.uv[0, sel], gb.uv[1, sel])
    return out


def _shading(scene: Scene, gb: GeometryBuffer) -> np.ndarray:
    """Unit-albedo shading (N,) = a + (1 − a) · max(0, n · l) · lit, with ``l`` the unit vector to the light, ``a``
    the ambient term and ``lit`` ∈ {0, 1} the shadow test; in [a, 1]."""
    to_light = np.asarray(scene.light.position, dtype=np.float64)[:, None] - gb.points
    cos = np.sum(gb.normals * to_light, axis=0) / np.sqrt(np.sum(to_light * to_light, axis=0))
    direct = np.maximum(cos, 0.0)
    front = direct > 0
    direct[front] *= shadow_mask(scene, gb.points[:, front], gb.normals[:, front])
    a = scene.light.ambient
    return a + (1.0 - a) * direct


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma (H, W, 1) = 0.299 R + 0.587 G + 0.114 B of an (H, W, 3) image (the colorization input)."""
    return (np.asarray(rgb) @ _GRAY_WEIGHTS.astype(np.asarray(rgb).dtype))[..., None]


def add_noise(rgb: np.ndarray, *, seed: int, sigma: float = 0.1) -> np.ndarray:
    """The denoising input: ``clip(rgb + N(0, σ²), 0, 1)`` with i.i.d. Gaussian noise from ``default_rng(seed)``."""
    rgb = np.asarray(rgb)
    check_number(sigma, name="sigma", minimum=0, expected=">= 0")
    noise = np.random.default_rng(seed).standard_normal(rgb.shape) * sigma
    return np.clip(rgb + noise, 0.0, 1.0).astype(rgb.dtype if rgb.dtype.kind == "f" else np.float32)


def inpainting_mask(size: int, *, seed: int) -> np.ndarray:
    """The inpainting hole (size, size, 1) float32: 1 inside one random axis-aligned rectangle, 0 elsewhere.

    Side lengths uniform in [size/4, size/2] (integers), position uniform such that the rectangle fits. The input is
    ``rgb * (1 - mask)``.
    """
    size = _check_size(size)
    rng = np.random.default_rng(seed)
    h, w = rng.integers(size // 4, size // 2 + 1, size=2)
    top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
    mask = np.zeros((size, size, 1), dtype=np.float32)
    mask[top:top + h, left:left + w] = 1.0
    return mask


def render(scene: Scene, size: int = 128, *, tasks: Iterable[str] | str | None = None) -> dict[str, np.ndarray]:
    """The RGB image and the labels of ``tasks`` (default: all 20) for ``scene`` at ``size × size`` pixels.

    Returns ``{"rgb": (H, W, 3), task: label, ...}``, every array float32, keyed by canonical task names (aliases
    such as ``depth`` or ``normals`` are accepted in ``tasks``). Shapes, ranges and formulas: ``LABEL_SPECS`` and
    docs/scenes.md. Only the requested labels are computed. At 128 × 128 on one core (docs/scenes.md) the image
    takes about 12 ms, the 17 geometric and semantic labels little more; of the scikit-image labels Canny
    (edge_texture) and Harris (keypoints2d) add ~1–2 ms and Felzenszwalb (segment_unsup2d) ~17 ms.

    Raises:
        UserInputError: ``scene`` not a :class:`Scene`, an unknown task name, or ``size`` not an integer >= 16.
    """
    scene = _check_scene(scene)
    wanted = _check_tasks(tasks)
    size = _check_size(size)
    gb = cast(scene, size)
    shading = _shading(scene, gb)
    rgb = np.clip(_albedo(scene, gb) * shading[:, None], 0.0, 1.0).reshape(size, size, 3)
    hw = (size, size)
    zbuffer = (gb.t * gb.rays[2]).reshape(hw)
    gray = None

    def normals_cam() -> np.ndarray:
        return (gb.rotation.T @ gb.normals).T.reshape(size, size, 3)

    if {"edge_texture", "keypoints2d"} & set(wanted):
        gray = to_gray(rgb)[..., 0]
    make = {
        "autoencoding": lambda: rgb, "colorization": lambda: rgb, "denoising": lambda: rgb, "inpainting": lambda: rgb,
        "edge_texture": lambda: labels.texture_edges(gray)[..., None],
        "keypoints2d": lambda: labels.keypoints2d(gray)[..., None],
        "segment_unsup2d": lambda: labels.segments_2d(rgb)[..., None],
        "curvature": lambda: gb.curvature.T.reshape(size, size, 2),
        "depth_euclidean": lambda: gb.t.reshape(size, size, 1),
        "depth_zbuffer": lambda: zbuffer[..., None],
        "edge_occlusion": lambda: labels.occlusion_edges(zbuffer, gb.surface.reshape(hw), normals_cam(),
                                                         gb.curvature[0].reshape(hw) != 0,
                                                         focal=0.5 * size / np.tan(0.5 * scene.camera.fov))[..., None],
        "keypoints3d": lambda: labels.keypoints3d(scene, gb)[..., None],
        "normal": normals_cam,
        "reshading": lambda: shading.reshape(size, size, 1),
        "segment_unsup25d": lambda: labels.relabel_by_appearance(gb.surface.reshape(hw))[..., None],
        "class_object": lambda: labels.class_object(gb.semantic),
        "class_scene": lambda: layout.class_scene(scene),
        "segment_semantic": lambda: gb.semantic.reshape(size, size, 1),
        "room_layout": lambda: layout.room_layout(scene),
        "vanishing_point": lambda: layout.vanishing_points(scene),
    }
    out = {"rgb": rgb.astype(np.float32)}
    for task in wanted:
        out[task] = np.array(make[task](), dtype=np.float32)  # a fresh float32 array per task
    return out
