"""Image-level labels computed from the scene alone: room layout, vanishing points, scene class.

These need no rendering (they are functions of the camera and the room box), so a training pipeline can get them
for free. The bare room cannot tell its four walls apart: they share one texture, and width and depth are drawn
from the same range, so the image of a W × D room seen at yaw θ is that of a D × W room seen at θ + π/2. Only the
yaw modulo a quarter turn is in the image (the vanishing points show it). :func:`room_layout` therefore reports the
layout in the one of the room's four quarter-turned frames in which the camera's yaw lies in [−π/4, π/4): the
frame whose ``+y`` axis is nearest the camera's forward direction. (Before, a half turn only: yaw in [−π/2, π/2],
whose quarter-turn ambiguity left the teachers' yaw at 0.98 × the trivial baseline.)
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.scenes.scene import SCENE_TYPES, Scene

__all__ = ["room_layout", "vanishing_points", "vanishing_point_pixels", "class_scene",
           "ROOM_LAYOUT_FIELDS", "VANISHING_POINT_FIELDS"]

#: The 9 entries of :func:`room_layout`.
ROOM_LAYOUT_FIELDS: tuple[str, ...] = ("yaw", "pitch", "roll", "x", "y", "z", "width", "depth", "height")
#: The 9 entries of :func:`vanishing_points`: three camera-frame unit directions.
VANISHING_POINT_FIELDS: tuple[str, ...] = tuple(f"{vp}_{c}" for vp in ("forward", "side", "vertical")
                                                for c in "xyz")
_SIZE_SCALE = np.array([8.0, 8.0, 4.0])  # metres: room width and depth / 8, height / 4


def room_layout(scene: Scene) -> np.ndarray:
    """The camera relative to the room box and the box's size, 9 values (float64):

    ``[yaw, pitch, roll, 2x/W − 1, 2y/D − 1, 2z/H − 1, W/8, D/8, H/4]`` with the angles in radians
    (yaw ∈ [−π/4, π/4) after choosing the room frame, see the module docstring; pitch and roll as sampled),
    ``(x, y, z)`` the camera position and ``W, D`` the box's extents along that frame's axes, so entries 3–5 lie in
    [−1, 1].
    """
    cam = scene.camera
    w, d, h = (float(v) for v in scene.room.size)
    x, y, z = (float(v) for v in cam.position)
    turns = int(np.floor((cam.yaw + np.pi / 4) / (np.pi / 2))) % 4  # quarter turns from the world's room frame
    yaw = (cam.yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
    for _ in range(turns):  # the frame turned by +π/2: x' = y, y' = W − x, and width and depth swap
        x, y, w, d = y, w - x, d, w
    return np.array([yaw, cam.pitch, cam.roll, 2 * x / w - 1, 2 * y / d - 1, 2 * z / h - 1,
                     *(np.array([w, d, h]) / _SIZE_SCALE)])


def vanishing_points(scene: Scene) -> np.ndarray:
    """The vanishing points of the room's three axes as camera-frame unit directions, 9 values (float64).

    A world direction ``e`` vanishes at the image point of the camera-frame direction ``a = Rᵀ e`` (``R`` world-from-
    camera); a direction (rather than a pixel) also covers points at infinity (``a_z = 0``). Order: the horizontal
    room axis closer to the optical axis ("forward", larger ``|a_z|``), the other horizontal axis ("side"), the
    vertical axis. Signs: forward has ``a_z ≥ 0`` (the vanishing point in front), side ``a_x ≥ 0`` (to the right),
    vertical ``a_y ≥ 0`` (downwards, the floor's vanishing point). At zero yaw, pitch and roll the forward one is
    (0, 0, 1), the principal point.
    """
    axes = scene.camera.rotation  # row i = world axis i in camera coordinates (R^T e_i)
    horizontal = axes[:2]
    order = np.argsort(-np.abs(horizontal[:, 2]), kind="stable")
    forward, side, vertical = horizontal[order[0]], horizontal[order[1]], axes[2]
    forward = forward if forward[2] >= 0 else -forward
    side = side if side[0] >= 0 else -side
    vertical = vertical if vertical[1] >= 0 else -vertical
    return np.concatenate([forward, side, vertical])


def vanishing_point_pixels(vp: np.ndarray, size: int, fov: float) -> np.ndarray:
    """Pixel positions (3, 2) ``(u, v)`` of the three vanishing points (``u = size/2 + f a_x / a_z``, same for v,
    ``f = (size/2) / tan(fov/2)``, pixel centres at half-integers); ``±inf`` or ``nan`` for points at infinity."""
    a = np.asarray(vp, dtype=np.float64).reshape(3, 3)
    f = 0.5 * size / np.tan(0.5 * fov)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * size + f * a[:, :2] / a[:, 2:3]


def class_scene(scene: Scene) -> np.ndarray:
    """One-hot (len(SCENE_TYPES),) of the scene type the scene was sampled with."""
    out = np.zeros(len(SCENE_TYPES))
    out[scene.scene_type] = 1.0
    return out
