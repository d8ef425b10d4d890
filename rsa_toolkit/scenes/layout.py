"""Image-level labels computed from the scene alone: room layout, vanishing points, scene class.

These need no rendering (they are functions of the camera and the room box), so a training pipeline can get them
for free. The room box is symmetric under a half turn about its vertical axis (x → W − x, y → D − y), which the image
of the bare room cannot tell apart; :func:`room_layout` therefore reports the layout in the one of the two room
frames in which the camera's yaw lies in [−π/2, π/2].
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
    (yaw ∈ [−π/2, π/2] after choosing the room frame, see the module docstring; pitch and roll as sampled) and
    ``(x, y, z)`` the camera position in that frame, so entries 3–5 lie in [−1, 1].
    """
    cam = scene.camera
    w, d, h = (float(v) for v in scene.room.size)
    x, y, z = (float(v) for v in cam.position)
    yaw = (cam.yaw + np.pi) % (2 * np.pi) - np.pi
    if abs(yaw) > np.pi / 2:  # use the half-turned room frame
        yaw = (yaw + 2 * np.pi) % (2 * np.pi) - np.pi
        x, y = w - x, d - y
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
