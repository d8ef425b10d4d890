"""What a scene is: frozen dataclasses of plain numbers and arrays, and the fixed vocabularies (classes, scene types).

Coordinates. World: right-handed, metres, ``z`` up; the room is the box ``[0, W] × [0, D] × [0, H]`` (floor at
``z = 0``). Camera frame: OpenCV convention, ``x`` right, ``y`` down, ``z`` forward (the optical axis). With
``yaw = pitch = roll = 0`` the camera looks along world ``+y`` with world ``+z`` up in the image; ``yaw`` turns it
about world ``z`` (positive = to the left, counter-clockwise seen from above), ``pitch`` about its own ``x`` axis
(positive = looking up), ``roll`` about its optical axis (positive = the camera turns clockwise as seen from behind
it, so the image content turns counter-clockwise). :func:`camera_rotation` gives the world-from-camera matrix.

Shapes are boxes (rotated by ``yaw`` about world ``z``), spheres and upright cylinders, each described by a centre,
half-extents and a yaw. A sphere has half-extents ``(r, r, r)``, a cylinder ``(r, r, h/2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.validation import check_number

__all__ = [
    "CLASSES", "OBJECT_CLASSES", "SCENE_TYPES", "SHAPE_KINDS", "TEXTURE_KINDS",
    "Camera", "Room", "Texture", "Shape", "Light", "Scene", "camera_rotation",
]

#: Semantic classes (``segment_semantic`` ids). 0 is reserved: every ray hits the closed room, so it never occurs.
CLASSES: tuple[str, ...] = ("none", "wall", "floor", "ceiling", "cabinet", "ball", "pillar", "shelf")
WALL, FLOOR, CEILING, CABINET, BALL, PILLAR, SHELF = range(1, 8)
#: Object classes, the entries of the ``class_object`` vector (semantic ids 4..7, in this order).
OBJECT_CLASSES: tuple[str, ...] = CLASSES[4:]
#: Scene types (``class_scene`` entries). Each type has its own room sizes, palette, textures and object mix
#: (see :mod:`rsa_toolkit.scenes.sampling`), so the type can be recognised from the image.
SCENE_TYPES: tuple[str, ...] = ("office", "playroom", "hall", "storage", "gallery")
SHAPE_KINDS: tuple[str, ...] = ("box", "sphere", "cylinder")
TEXTURE_KINDS: tuple[str, ...] = ("solid", "stripes", "checker", "noise")

#: Columns: world coordinates of the camera's x (right), y (down) and z (forward) axes when yaw = pitch = roll = 0.
_BASE = np.array([[1.0, 0.0, 0.0],
                  [0.0, 0.0, 1.0],
                  [0.0, -1.0, 0.0]])


def _check_kind(name: str, kind: str, valid: tuple[str, ...]) -> None:
    if kind not in valid:
        raise UserInputError(f"Unknown {name} '{kind}'. Available: {', '.join(valid)}.")


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """World-from-camera rotation ``R = Rz(yaw) · B · Rx(pitch) · Rz(roll)`` (3, 3); ``x_world = R @ x_cam``.

    ``B`` maps the camera axes to the world at zero angles (x → +x, y → −z, z → +y). ``Rx(pitch)`` tilts the
    optical axis towards the camera's −y (up) for a positive pitch; ``Rz(roll)`` turns about the optical axis.
    """
    return _rot_z(yaw) @ _BASE @ _rot_x(pitch) @ _rot_z(roll)


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera: ``position`` (3,) in the room, angles in radians, horizontal = vertical field of view."""

    position: np.ndarray
    yaw: float
    pitch: float = 0.0
    roll: float = 0.0
    fov: float = np.deg2rad(60.0)

    @property
    def rotation(self) -> np.ndarray:
        """World-from-camera rotation (3, 3)."""
        return camera_rotation(self.yaw, self.pitch, self.roll)


@dataclass(frozen=True, eq=False)
class Texture:
    """A procedural texture over a surface's (u, v) coordinates in metres.

    ``kind``: one of :data:`TEXTURE_KINDS`. ``color_a``/``color_b``: RGB in [0, 1] (``solid`` uses ``color_a``).
    ``scale``: the period in metres (stripes, checker) or the noise's base wavelength. ``angle``: stripe direction
    (radians). ``seed``: the value-noise lattice.
    """

    kind: str
    color_a: np.ndarray
    color_b: np.ndarray
    scale: float = 0.5
    angle: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_kind("Texture.kind", self.kind, TEXTURE_KINDS)
        check_number(self.scale, name="Texture.scale", above=0, expected="> 0 (metres)")


@dataclass(frozen=True, eq=False)
class Room:
    """The room box ``[0, W] × [0, D] × [0, H]``: ``size = (W, D, H)`` in metres; one texture per surface group."""

    size: np.ndarray
    wall: Texture
    floor: Texture
    ceiling: Texture


@dataclass(frozen=True, eq=False)
class Shape:
    """One object: ``kind`` in :data:`SHAPE_KINDS`, ``center`` (3,), ``half_size`` (3,) (sphere: (r, r, r); cylinder:
    (r, r, h/2)), ``yaw`` about world z (radians), semantic class id ``semantic`` (index into :data:`CLASSES`)."""

    kind: str
    center: np.ndarray
    half_size: np.ndarray
    yaw: float
    semantic: int
    texture: Texture

    def __post_init__(self) -> None:
        _check_kind("Shape.kind", self.kind, SHAPE_KINDS)
        if np.shape(self.half_size) != (3,) or not np.all(np.asarray(self.half_size) > 0):
            raise UserInputError(f"Shape.half_size must be 3 positive numbers, got {self.half_size!r}.")
        if not 0 <= self.semantic < len(CLASSES):
            raise UserInputError(f"Shape.semantic must be a class id in 0..{len(CLASSES) - 1}, got {self.semantic!r}.")

    @property
    def rotation(self) -> np.ndarray:
        """World-from-object rotation (3, 3), a turn by ``yaw`` about world z."""
        return _rot_z(self.yaw)


@dataclass(frozen=True, eq=False)
class Light:
    """A white point light at ``position`` (3,) plus an ambient term ``ambient`` in [0, 1)."""

    position: np.ndarray
    ambient: float = 0.2


@dataclass(frozen=True, eq=False)
class Scene:
    """A full scene. ``scene_type`` indexes :data:`SCENE_TYPES`; ``seed`` is the seed it was sampled from (or -1)."""

    room: Room
    camera: Camera
    shapes: tuple[Shape, ...]
    light: Light
    scene_type: int = 0
    seed: int = -1
