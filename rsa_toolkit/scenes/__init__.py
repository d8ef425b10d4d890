"""Mini-Taskonomy: procedural indoor scenes rendered by analytic ray casting, with exact labels for all 20 tasks.

    >>> from rsa_toolkit.scenes import sample_scene, render
    >>> frame = render(sample_scene(0), 128)             # {"rgb": (128, 128, 3), "depth_zbuffer": ..., ...}
    >>> frame = render(sample_scene(0), 64, tasks=["depth", "normal"])   # only what you need

A scene (:func:`sample_scene`) is a pure function of its seed; rendering is a pure function of the scene. Every label
is float32; :data:`LABEL_SPECS` gives each one's shape, range and meaning, docs/scenes.md the formulas.
"""

from __future__ import annotations

from rsa_toolkit.scenes.layout import (ROOM_LAYOUT_FIELDS, VANISHING_POINT_FIELDS, class_scene, room_layout, vanishing_point_pixels,
                     vanishing_points)
from rsa_toolkit.scenes.render import ALL_TASKS, MIN_SIZE, add_noise, inpainting_mask, render, to_gray
from rsa_toolkit.scenes.sampling import STYLES, sample_scene
from rsa_toolkit.scenes.scene import (CLASSES, OBJECT_CLASSES, SCENE_TYPES, SHAPE_KINDS, TEXTURE_KINDS, Camera, Light, Room, Scene,
                    Shape, Texture, camera_rotation)
from rsa_toolkit.scenes.specs import LABEL_SPECS, LabelSpec

__all__ = [
    "ALL_TASKS", "CLASSES", "LABEL_SPECS", "MIN_SIZE", "OBJECT_CLASSES", "ROOM_LAYOUT_FIELDS", "SCENE_TYPES",
    "SHAPE_KINDS", "STYLES", "TEXTURE_KINDS", "VANISHING_POINT_FIELDS",
    "Camera", "LabelSpec", "Light", "Room", "Scene", "Shape", "Texture",
    "add_noise", "camera_rotation", "class_scene", "inpainting_mask", "render", "room_layout", "sample_scene",
    "to_gray", "vanishing_point_pixels", "vanishing_points",
]
