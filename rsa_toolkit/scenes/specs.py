"""What :func:`rsa_toolkit.scenes.render` returns for each task: shape, value range, kind and meaning.

One entry per canonical task name (``rsa_toolkit.tasks``). All labels are float32. ``channels`` is the last axis of a
per-pixel label of shape (H, W, channels), or the length of an image-level vector. ``kind``: ``"image"`` (continuous
map), ``"binary"`` (0/1 map), ``"ids"`` (integer-valued map: segments or classes), ``"vector"`` (image-level).
"""

from __future__ import annotations

from dataclasses import dataclass

from rsa_toolkit.tasks import list_tasks
from rsa_toolkit.scenes.scene import CLASSES, OBJECT_CLASSES, SCENE_TYPES

__all__ = ["LabelSpec", "LABEL_SPECS"]


@dataclass(frozen=True)
class LabelSpec:
    task: str
    channels: int
    per_pixel: bool
    kind: str
    low: float
    high: float
    description: str

    @property
    def shape(self) -> str:
        return f"(H, W, {self.channels})" if self.per_pixel else f"({self.channels},)"


_INF = float("inf")
_SPECS = (
    LabelSpec("autoencoding", 3, True, "image", 0.0, 1.0, "the RGB image itself"),
    LabelSpec("colorization", 3, True, "image", 0.0, 1.0, "RGB target; the input is to_gray(rgb)"),
    LabelSpec("denoising", 3, True, "image", 0.0, 1.0, "clean RGB target; the input is add_noise(rgb)"),
    LabelSpec("edge_texture", 1, True, "binary", 0.0, 1.0, "Canny edges of the grayscale image"),
    LabelSpec("inpainting", 3, True, "image", 0.0, 1.0, "RGB target; the input is masked by inpainting_mask"),
    LabelSpec("keypoints2d", 1, True, "image", 0.0, 1.0, "log-compressed Harris corner response, max-normalised"),
    LabelSpec("segment_unsup2d", 1, True, "ids", 0.0, _INF, "Felzenszwalb superpixels of the RGB image"),
    LabelSpec("curvature", 2, True, "image", 0.0, _INF,
              "principal curvatures (k1 >= k2) in 1/m; 0 on planes, 1/r on spheres, (1/r, 0) on cylinder sides"),
    LabelSpec("depth_euclidean", 1, True, "image", 0.0, _INF, "distance from the camera centre along the ray (m)"),
    LabelSpec("depth_zbuffer", 1, True, "image", 0.0, _INF, "depth along the optical axis (m)"),
    LabelSpec("edge_occlusion", 1, True, "binary", 0.0, 1.0, "depth discontinuities (the nearer side)"),
    LabelSpec("keypoints3d", 1, True, "image", 0.0, 1.0,
              "Gaussian blobs at visible room corners, box vertices, cylinder rim silhouette points, sphere tips"),
    LabelSpec("normal", 3, True, "image", -1.0, 1.0, "camera-frame unit normals (x right, y down, z forward)"),
    LabelSpec("reshading", 1, True, "image", 0.0, 1.0, "unit-albedo shading: ambient + (1 - ambient) max(0, n.l) lit"),
    LabelSpec("segment_unsup25d", 1, True, "ids", 0.0, _INF, "one id per surface (each box face, wall, sphere, ...)"),
    LabelSpec("class_object", len(OBJECT_CLASSES), False, "vector", 0.0, 1.0,
              f"pixel-area distribution over {', '.join(OBJECT_CLASSES)}"),
    LabelSpec("class_scene", len(SCENE_TYPES), False, "vector", 0.0, 1.0, f"one-hot over {', '.join(SCENE_TYPES)}"),
    LabelSpec("segment_semantic", 1, True, "ids", 0.0, float(len(CLASSES) - 1),
              f"semantic class id: {', '.join(f'{i} {c}' for i, c in enumerate(CLASSES))}"),
    LabelSpec("room_layout", 9, False, "vector", -_INF, _INF,
              "yaw, pitch, roll (rad), camera position in [-1, 1]^3, room W/8, D/8, H/4"),
    LabelSpec("vanishing_point", 9, False, "vector", -1.0, 1.0,
              "camera-frame unit directions of the forward, side and vertical vanishing points"),
)

#: Task name → :class:`LabelSpec`, in the task registry's order.
LABEL_SPECS: dict[str, LabelSpec] = {s.task: s for s in sorted(_SPECS, key=lambda s: [t.name for t in
                                                                                     list_tasks()].index(s.task))}
