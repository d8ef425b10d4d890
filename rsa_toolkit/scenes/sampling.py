"""Random scenes: ``sample_scene(seed)`` draws a room, its objects, a light and a camera from one seeded generator.

The distribution (all uniform unless said otherwise):

1. scene type uniform over :data:`SCENE_TYPES`; the type fixes the ranges below (:data:`STYLES`);
2. room size ``W, D`` and height ``H`` in the type's ranges;
3. camera position: ``x ∈ [0.6, W − 0.6]``, ``y ∈ [0.6, D − 0.6]``, height ``∈ [1.0, min(2.0, H − 0.4)]``;
4. ``n`` objects in the type's count range, each class drawn with the type's weights, then its size
   (cabinet: box on the floor; shelf: flat box floating at 0.8 m … H − 0.6 m; ball: sphere on the floor; pillar:
   upright cylinder on the floor), yaw uniform in [0, 2π), position uniform inside the room such that the footprints
   (bounding circles) keep 0.1 m apart and 0.4 m from the camera (50 tries per object; an object that does not fit is
   dropped, so a scene can hold fewer than ``n``);
5. camera: yaw and pitch towards the centre of a random object (among those ≥ 1.5 m away, if any), yaw ± 25°,
   pitch ± 8° and then clipped to [−25°, 12°]; roll ∈ [−5°, 5°]; field of view 60°;
6. light: ``x, y`` inside the room (0.3 m margin), height ∈ [0.6 H, H − 0.15], outside every object's bounding
   cylinder; ambient ∈ [0.2, 0.35];
7. textures: per surface group (walls, floor, ceiling, each object) a kind drawn with the type's weights and colours
   from the type's palette (HSV ranges); stripe/checker periods 0.15–0.6 m, noise wavelengths 0.2–1 m.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from rsa_toolkit.validation import check_int
from rsa_toolkit.scenes.scene import (BALL, CABINET, PILLAR, SCENE_TYPES, SHELF, TEXTURE_KINDS, Camera, Light, Room,
                    Scene, Shape, Texture)

__all__ = ["Style", "STYLES", "sample_scene"]

Range = tuple[float, float]


@dataclass(frozen=True)
class Palette:
    """HSV ranges of a colour family; ``hue`` may hold several ranges (one is picked per colour)."""

    hue: tuple[Range, ...]
    sat: Range
    val: Range


@dataclass(frozen=True)
class Style:
    """What a scene type looks like: room ranges, object mix (weights over :data:`OBJECT_CLASSES`), palettes and
    texture-kind weights (over :data:`TEXTURE_KINDS`) per surface group."""

    width: Range
    height: Range
    count: tuple[int, int]
    object_weights: tuple[float, float, float, float]
    wall: Palette
    floor: Palette
    ceiling: Palette
    objects: Palette
    wall_textures: tuple[float, float, float, float]
    floor_textures: tuple[float, float, float, float]
    object_textures: tuple[float, float, float, float]


_ANY_HUE = ((0.0, 1.0),)
_LIGHT = Palette(((0.0, 1.0),), (0.0, 0.08), (0.85, 1.0))

#: One style per scene type, in :data:`SCENE_TYPES` order.
STYLES: dict[str, Style] = {
    "office": Style(width=(4.0, 6.5), height=(2.5, 3.0), count=(2, 5), object_weights=(0.5, 0.05, 0.15, 0.3),
                    wall=Palette(((0.05, 0.15), (0.55, 0.65)), (0.05, 0.25), (0.7, 0.95)),
                    floor=Palette(((0.55, 0.7),), (0.1, 0.35), (0.3, 0.55)), ceiling=_LIGHT,
                    objects=Palette(((0.0, 0.15), (0.5, 0.7)), (0.1, 0.4), (0.35, 0.8)),
                    wall_textures=(0.6, 0.1, 0.0, 0.3), floor_textures=(0.2, 0.0, 0.3, 0.5),
                    object_textures=(0.5, 0.2, 0.0, 0.3)),
    "playroom": Style(width=(4.0, 6.0), height=(2.5, 3.0), count=(3, 6), object_weights=(0.3, 0.5, 0.1, 0.1),
                      wall=Palette(_ANY_HUE, (0.35, 0.7), (0.75, 1.0)),
                      floor=Palette(_ANY_HUE, (0.4, 0.8), (0.5, 0.9)), ceiling=_LIGHT,
                      objects=Palette(_ANY_HUE, (0.6, 1.0), (0.7, 1.0)),
                      wall_textures=(0.2, 0.5, 0.2, 0.1), floor_textures=(0.0, 0.2, 0.7, 0.1),
                      object_textures=(0.2, 0.4, 0.3, 0.1)),
    "hall": Style(width=(6.5, 8.0), height=(3.0, 3.5), count=(2, 5), object_weights=(0.2, 0.1, 0.6, 0.1),
                  wall=Palette(_ANY_HUE, (0.0, 0.1), (0.55, 0.85)),
                  floor=Palette(_ANY_HUE, (0.0, 0.08), (0.1, 0.9)),
                  ceiling=Palette(_ANY_HUE, (0.0, 0.08), (0.6, 0.9)),
                  objects=Palette(_ANY_HUE, (0.0, 0.12), (0.45, 0.9)),
                  wall_textures=(0.2, 0.0, 0.0, 0.8), floor_textures=(0.0, 0.0, 0.8, 0.2),
                  object_textures=(0.3, 0.0, 0.0, 0.7)),
    "storage": Style(width=(4.5, 8.0), height=(2.6, 3.4), count=(4, 6), object_weights=(0.7, 0.05, 0.05, 0.2),
                     wall=Palette(((0.05, 0.12),), (0.15, 0.4), (0.45, 0.7)),
                     floor=Palette(((0.0, 1.0),), (0.0, 0.1), (0.3, 0.5)),
                     ceiling=Palette(((0.05, 0.12),), (0.05, 0.2), (0.55, 0.75)),
                     objects=Palette(((0.05, 0.12),), (0.3, 0.7), (0.3, 0.75)),
                     wall_textures=(0.3, 0.3, 0.0, 0.4), floor_textures=(0.3, 0.0, 0.0, 0.7),
                     object_textures=(0.1, 0.5, 0.0, 0.4)),
    "gallery": Style(width=(5.0, 8.0), height=(2.8, 3.5), count=(2, 4), object_weights=(0.2, 0.35, 0.35, 0.1),
                     wall=Palette(_ANY_HUE, (0.0, 0.04), (0.88, 1.0)),
                     floor=Palette(_ANY_HUE, (0.0, 0.3), (0.12, 0.3)), ceiling=_LIGHT,
                     objects=Palette(_ANY_HUE, (0.7, 1.0), (0.6, 1.0)),
                     wall_textures=(1.0, 0.0, 0.0, 0.0), floor_textures=(0.5, 0.0, 0.0, 0.5),
                     object_textures=(0.9, 0.0, 0.0, 0.1)),
}

_CLASS_IDS = (CABINET, BALL, PILLAR, SHELF)  # the order of OBJECT_CLASSES and of Style.object_weights


def _color(rng: np.random.Generator, palette: Palette) -> np.ndarray:
    lo, hi = palette.hue[rng.integers(len(palette.hue))]
    h, s, v = rng.uniform(lo, hi), rng.uniform(*palette.sat), rng.uniform(*palette.val)
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def _texture(rng: np.random.Generator, palette: Palette, weights: tuple[float, ...]) -> Texture:
    kind = TEXTURE_KINDS[rng.choice(len(TEXTURE_KINDS), p=np.asarray(weights) / np.sum(weights))]
    a = _color(rng, palette)
    b = _color(rng, palette) if kind != "noise" else np.clip(a * rng.uniform(0.45, 0.75), 0.0, 1.0)
    scale = rng.uniform(0.2, 1.0) if kind == "noise" else rng.uniform(0.15, 0.6)
    return Texture(kind=kind, color_a=a, color_b=b, scale=float(scale), angle=float(rng.uniform(0, np.pi)),
                   seed=int(rng.integers(2**31)))


def _object(rng: np.random.Generator, cls: int, room: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """(kind, centre with x = y = 0, half-size) of an object of class ``cls``."""
    h = room[2]
    if cls == CABINET:
        half = np.array([rng.uniform(0.2, 0.7), rng.uniform(0.2, 0.7), rng.uniform(0.2, 0.9)])
        return "box", np.array([0.0, 0.0, half[2]]), half
    if cls == SHELF:
        half = np.array([rng.uniform(0.3, 0.8), rng.uniform(0.15, 0.35), rng.uniform(0.05, 0.15)])
        return "box", np.array([0.0, 0.0, rng.uniform(0.8, h - 0.6)]), half
    if cls == BALL:
        r = rng.uniform(0.15, 0.6)
        return "sphere", np.array([0.0, 0.0, r]), np.array([r, r, r])
    r, height = rng.uniform(0.12, 0.4), rng.uniform(0.6, h - 0.15)
    return "cylinder", np.array([0.0, 0.0, height / 2]), np.array([r, r, height / 2])


def _footprint(kind: str, half: np.ndarray) -> float:
    return float(np.hypot(half[0], half[1])) if kind == "box" else float(half[0])


def _place_objects(rng: np.random.Generator, style: Style, room: np.ndarray, cam: np.ndarray) -> list[Shape]:
    shapes: list[Shape] = []
    placed: list[tuple[np.ndarray, float]] = []  # (xy, footprint radius)
    weights = np.asarray(style.object_weights) / np.sum(style.object_weights)
    for _ in range(rng.integers(style.count[0], style.count[1] + 1)):
        cls = _CLASS_IDS[rng.choice(len(_CLASS_IDS), p=weights)]
        kind, center, half = _object(rng, cls, room)
        yaw = float(rng.uniform(0, 2 * np.pi))
        rho = _footprint(kind, half)
        texture = _texture(rng, style.objects, style.object_textures)
        for _try in range(50):
            xy = rng.uniform(rho + 0.05, room[:2] - rho - 0.05)
            if np.hypot(*(xy - cam[:2])) < rho + 0.4:
                continue
            if all(np.hypot(*(xy - q)) >= rho + r + 0.1 for q, r in placed):
                placed.append((xy, rho))
                shapes.append(Shape(kind=kind, center=np.array([xy[0], xy[1], center[2]]), half_size=half, yaw=yaw,
                                    semantic=cls, texture=texture))
                break
    return shapes


def _light(rng: np.random.Generator, room: np.ndarray, shapes: list[Shape]) -> np.ndarray:
    pos = np.zeros(3)
    for _try in range(100):
        pos = np.array([rng.uniform(0.3, room[0] - 0.3), rng.uniform(0.3, room[1] - 0.3),
                        rng.uniform(0.6 * room[2], room[2] - 0.15)])
        if all(np.hypot(*(pos[:2] - s.center[:2])) > _footprint(s.kind, s.half_size) + 0.2
               or abs(pos[2] - s.center[2]) > s.half_size[2] + 0.2 for s in shapes):
            break
    return pos


def sample_scene(seed: int) -> Scene:
    """A random indoor scene, a pure function of ``seed`` (an integer >= 0; see the module docstring for the
    distribution)."""
    seed = check_int(seed, name="seed", minimum=0)
    rng = np.random.default_rng(seed)
    scene_type = int(rng.integers(len(SCENE_TYPES)))
    style = STYLES[SCENE_TYPES[scene_type]]
    room = np.array([rng.uniform(*style.width), rng.uniform(*style.width), rng.uniform(*style.height)])
    cam = np.array([rng.uniform(0.6, room[0] - 0.6), rng.uniform(0.6, room[1] - 0.6),
                    rng.uniform(1.0, min(2.0, room[2] - 0.4))])
    shapes = _place_objects(rng, style, room, cam)
    yaw, pitch = rng.uniform(0, 2 * np.pi), 0.0
    if shapes:  # look at an object, preferably one at least 1.5 m away
        far = [s for s in shapes if np.hypot(*(s.center - cam)[:2]) >= 1.5] or shapes
        target = far[rng.integers(len(far))].center - cam
        yaw = np.arctan2(target[1], target[0]) - np.pi / 2
        pitch = np.arctan2(target[2], np.hypot(target[0], target[1]))
    yaw += np.deg2rad(rng.uniform(-25, 25))
    pitch = np.clip(pitch + np.deg2rad(rng.uniform(-8, 8)), np.deg2rad(-25), np.deg2rad(12))
    camera = Camera(position=cam, yaw=float((yaw + np.pi) % (2 * np.pi) - np.pi), pitch=float(pitch),
                    roll=float(np.deg2rad(rng.uniform(-5, 5))))
    light = Light(position=_light(rng, room, shapes), ambient=float(rng.uniform(0.2, 0.35)))
    room_def = Room(size=room, wall=_texture(rng, style.wall, style.wall_textures),
                    floor=_texture(rng, style.floor, style.floor_textures),
                    ceiling=_texture(rng, style.ceiling, style.wall_textures))
    return Scene(room=room_def, camera=camera, shapes=tuple(shapes), light=light, scene_type=scene_type,
                 seed=int(seed))
