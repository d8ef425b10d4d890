"""Vectorised analytic ray casting: camera rays, ray–shape intersections, the per-pixel geometry buffer, shadows.

Vectors are stored component-first (structure of arrays): one ray origin ``o`` (3,) or many ``(3, N)``, unit
directions ``d`` (3, N); each component is then a contiguous (N,) array, which keeps every operation a flat
elementwise loop. Intersections return the ray parameter ``t`` (N,) of the first hit in front of the origin (``inf``
for a miss); because ``d`` is unit length, ``t`` is the Euclidean distance. Loops run over shapes (a handful) and
the 3 axes, never over pixels.

Surface ids: room faces ``0..5`` (x = 0, x = W, y = 0, y = D, floor z = 0, ceiling z = H); shape ``k`` owns ids
``6 + 6k + face`` with box faces ``0..5`` (local −x, +x, −y, +y, −z, +z), sphere face 0, cylinder faces 0 (side),
1 (bottom cap), 2 (top cap).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rsa_toolkit.scenes.scene import CEILING, FLOOR, WALL, Scene, Shape

__all__ = ["camera_rays", "intersect_room", "intersect_shape", "bounding_sphere", "cone_candidates", "GeometryBuffer",
           "cast", "shadow_mask"]

EPS = 1e-6  # smallest accepted hit distance (metres)
SHADOW_OFFSET = 1e-4  # shadow rays start this far off the surface, along the normal (metres)
FACES_PER_SHAPE = 6
ROOM_FACES = 6
_ROOM_SEMANTIC = np.array([WALL, WALL, WALL, WALL, FLOOR, CEILING])


@lru_cache(maxsize=8)
def camera_rays(size: int, fov: float) -> np.ndarray:
    """Unit ray directions in the camera frame through the pixel centres, (3, size·size), pixels row-major (v, u).

    Pinhole with focal length ``f = (size / 2) / tan(fov / 2)`` pixels and the principal point at the image centre:
    ``d ∝ (u + ½ − size/2, v + ½ − size/2, f)``. Cached and read-only.
    """
    f = 0.5 * size / np.tan(0.5 * fov)
    c = np.arange(size) + 0.5 - 0.5 * size
    v, u = np.meshgrid(c, c, indexing="ij")
    d = np.stack([u.ravel(), v.ravel(), np.full(size * size, f)])
    d /= np.sqrt(np.sum(d * d, axis=0))
    d.setflags(write=False)
    return d


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def intersect_room(o: np.ndarray, d: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exit of rays starting at ``o`` (3,) inside the box ``[0, size]``: (t (N,), face (N,) in 0..5)."""
    t = np.full(d.shape[1], np.inf)
    face = np.zeros(d.shape[1], dtype=np.int64)
    with np.errstate(divide="ignore"):
        for i in range(3):
            ahead = d[i] >= 0
            ti = (np.where(ahead, size[i], 0.0) - o[i]) / d[i]  # d = 0 gives +inf: never the exit
            closer = ti < t
            t = np.where(closer, ti, t)
            face = np.where(closer, 2 * i + ahead, face)
    return t, face


def _box(o, d, half, t_max):
    t_near = np.full(d.shape[1], -np.inf)
    t_far = np.full(d.shape[1], np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(3):
            inv = 1.0 / d[i]
            t1 = (-half[i] - o[i]) * inv
            t2 = (half[i] - o[i]) * inv
            t_near = np.fmax(t_near, np.fmin(t1, t2))  # fmin/fmax skip the NaN of 0 * inf
            t_far = np.fmin(t_far, np.fmax(t1, t2))
    hit = (t_near <= t_far) & (t_near > EPS) & (t_near < t_max)
    return np.where(hit, t_near, np.inf)


def _sphere(o, d, r, t_max):
    b = _dot(d, o)
    disc = b * b - (_dot(o, o) - r * r)
    with np.errstate(invalid="ignore"):
        t = -b - np.sqrt(disc)
    hit = (disc >= 0) & (t > EPS) & (t < t_max)
    return np.where(hit, t, np.inf)


def _cylinder(o, d, r, hh, t_max):
    ox, oy, oz = o[0], o[1], o[2]
    dx, dy, dz = d[0], d[1], d[2]
    a = dx * dx + dy * dy
    b = dx * ox + dy * oy
    c = ox * ox + oy * oy - r * r
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(disc)) / a
        side = (disc >= 0) & (a > 0) & (np.abs(oz + t_side * dz) <= hh) & (t_side > EPS)
        t_best = np.where(side, t_side, np.inf)
        for cap in (-hh, hh):
            t_cap = (cap - oz) / dz
            x, y = ox + t_cap * dx, oy + t_cap * dy
            ok = (t_cap > EPS) & (x * x + y * y <= r * r) & (t_cap < t_best)
            t_best = np.where(ok, t_cap, t_best)
    return np.where(t_best < t_max, t_best, np.inf)


def _to_local(shape: Shape, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray origin(s) and directions in the shape's frame: centre at 0, turned by −yaw about z."""
    c, s = np.cos(shape.yaw), np.sin(shape.yaw)
    center = np.asarray(shape.center, dtype=np.float64)
    ox, oy, oz = (o[0] - center[0], o[1] - center[1], o[2] - center[2])
    lo = np.stack([c * ox + s * oy, c * oy - s * ox, oz]) if o.ndim == 2 else np.array([c * ox + s * oy,
                                                                                          c * oy - s * ox, oz])
    return lo, np.stack([c * d[0] + s * d[1], c * d[1] - s * d[0], d[2]])


def bounding_sphere(shape: Shape) -> tuple[np.ndarray, float]:
    """Centre (3,) and radius of a sphere enclosing ``shape``."""
    half = np.asarray(shape.half_size, dtype=np.float64)
    radius = half[0] if shape.kind == "sphere" else float(np.hypot(half[0], half[2])) if shape.kind == "cylinder" \
        else float(np.linalg.norm(half))
    return np.asarray(shape.center, dtype=np.float64), radius


def cone_candidates(shape: Shape, apex: np.ndarray, dirs: np.ndarray) -> np.ndarray | None:
    """Indices of the rays (unit ``dirs`` (3, N) from ``apex``) that may meet ``shape``: those inside the cone from
    ``apex`` around its bounding sphere. None when ``apex`` lies inside the bounding sphere (no culling)."""
    center, radius = bounding_sphere(shape)
    axis = center - apex
    dist = float(np.linalg.norm(axis))
    radius = radius * (1 + 1e-6) + 1e-9  # conservative against rounding
    if dist <= radius:
        return None
    cos_max = np.sqrt(1.0 - (radius / dist) ** 2)
    return np.flatnonzero((axis / dist) @ dirs >= cos_max - 1e-12)


def _intersect_local(shape: Shape, o: np.ndarray, d: np.ndarray, t_max) -> np.ndarray:
    lo, ld = _to_local(shape, o, d)
    half = np.asarray(shape.half_size, dtype=np.float64)
    if shape.kind == "box":
        return _box(lo, ld, half, t_max)
    if shape.kind == "sphere":
        return _sphere(lo, ld, half[0], t_max)
    if shape.kind == "cylinder":
        return _cylinder(lo, ld, half[0], half[2], t_max)
    raise AssertionError(f"unreachable: Shape checks its kind, got {shape.kind!r}")


def intersect_shape(shape: Shape, o: np.ndarray, d: np.ndarray, t_max: np.ndarray | float = np.inf, *,
                    candidates: np.ndarray | None = None) -> np.ndarray:
    """Distance ``t`` (N,) to the first hit of ``shape`` in ``(EPS, t_max)``, ``inf`` where the ray misses.

    ``candidates``: indices of the only rays that can hit (:func:`cone_candidates`); the others get ``inf``.
    """
    if candidates is None:
        return _intersect_local(shape, o, d, t_max)
    t = np.full(d.shape[1], np.inf)
    if len(candidates):
        t_sub = t_max[candidates] if np.ndim(t_max) else t_max
        o_sub = o[:, candidates] if o.ndim == 2 else o
        t[candidates] = _intersect_local(shape, o_sub, d[:, candidates], t_sub)
    return t


@dataclass(frozen=True, eq=False)
class GeometryBuffer:
    """Per-pixel geometry of the first hit, pixels flattened row-major over (size, size), vectors component-first.

    ``t`` (N,) Euclidean distance; ``points`` (3, N) world hit points; ``normals`` (3, N) world unit normals facing
    the camera; ``surface`` (N,) surface id (see the module docstring); ``semantic`` (N,) class id; ``uv`` (2, N)
    texture coordinates (metres); ``curvature`` (2, N) principal curvatures (k1 ≥ k2, 1/m, positive = convex);
    ``rays`` (3, N) camera-frame unit ray directions; ``rotation`` (3, 3) world-from-camera.
    """

    size: int
    t: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    surface: np.ndarray
    semantic: np.ndarray
    uv: np.ndarray
    curvature: np.ndarray
    rays: np.ndarray
    rotation: np.ndarray


def _room_attributes(p: np.ndarray, face: np.ndarray) -> dict[str, np.ndarray]:
    """Normals (inward), uv and semantic ids of room hits. Walls: u runs along the wall, v is the height."""
    axis = face // 2
    m = len(face)
    n = np.zeros((3, m))
    n[axis, np.arange(m)] = np.where(face % 2 == 0, 1.0, -1.0)
    u = np.where(axis == 0, p[1], p[0])  # x-walls run along y; y-walls, floor and ceiling along x
    v = np.where(axis == 2, p[1], p[2])  # floor and ceiling: y; walls: height
    return {"normals": n, "uv": np.stack([u, v]), "surface": face, "semantic": _ROOM_SEMANTIC[face],
            "curvature": np.zeros((2, m))}


def _shape_attributes(shape: Shape, k: int, p: np.ndarray) -> dict[str, np.ndarray]:
    """Normals, uv, face ids and curvatures of hits ``p`` (3, M) on ``shape`` (index ``k``)."""
    rot = shape.rotation
    half = np.asarray(shape.half_size, dtype=np.float64)
    q = rot.T @ (p - np.asarray(shape.center, dtype=np.float64)[:, None])  # local hit points
    m = p.shape[1]
    curv = np.zeros((2, m))
    if shape.kind == "box":
        axis = np.argmax(np.abs(q) / half[:, None], axis=0)
        sign = np.sign(q[axis, np.arange(m)])
        face = 2 * axis + (sign > 0)
        n_local = np.zeros((3, m))
        n_local[axis, np.arange(m)] = sign
        other = np.array([[1, 2], [0, 2], [0, 1]])[axis].T  # (2, M): the two in-face coordinates
        uv = q[other, np.arange(m)] + half[other]
    elif shape.kind == "sphere":
        r = half[0]
        n_local = q / r
        face = np.zeros(m, dtype=np.int64)
        uv = r * np.stack([np.arctan2(n_local[1], n_local[0]), np.arcsin(np.clip(n_local[2], -1.0, 1.0))])
        curv[:] = 1.0 / r
    else:  # cylinder
        r, hh = half[0], half[2]
        on_side = hh - np.abs(q[2]) > r - np.hypot(q[0], q[1])  # the closer of the side and the caps
        face = np.where(on_side, 0, np.where(q[2] > 0, 2, 1))
        n_local = np.where(on_side, np.stack([q[0] / r, q[1] / r, np.zeros(m)]),
                           np.stack([np.zeros(m), np.zeros(m), np.sign(q[2])]))
        uv = np.where(on_side, np.stack([r * np.arctan2(q[1], q[0]), q[2] + hh]), q[:2])
        curv[0, on_side] = 1.0 / r
    return {"normals": rot @ n_local, "uv": uv, "surface": ROOM_FACES + FACES_PER_SHAPE * k + face,
            "semantic": np.full(m, shape.semantic), "curvature": curv}


def cast(scene: Scene, size: int) -> GeometryBuffer:
    """First hits of the camera's rays through the ``size × size`` pixel centres (see :class:`GeometryBuffer`)."""
    cam = scene.camera
    rot = cam.rotation
    rays = camera_rays(size, float(cam.fov))
    d = rot @ rays
    o = np.asarray(cam.position, dtype=np.float64)
    t, face = intersect_room(o, d, np.asarray(scene.room.size, dtype=np.float64))
    winner = np.full(t.shape, -1)
    for k, shape in enumerate(scene.shapes):
        tk = intersect_shape(shape, o, d, t, candidates=cone_candidates(shape, o, d))
        closer = tk < t
        winner[closer] = k
        t = np.where(closer, tk, t)
    p = o[:, None] + t * d
    n = len(t)
    attrs: dict[str, np.ndarray] = {"normals": np.empty((3, n)), "uv": np.empty((2, n)), "curvature": np.empty((2, n)),
                                    "surface": np.empty(n, dtype=np.int64), "semantic": np.empty(n, dtype=np.int64)}
    groups = [(winner < 0, None)] + [(winner == k, k) for k in range(len(scene.shapes))]
    for sel, k in groups:
        if not sel.any():
            continue
        values = _room_attributes(p[:, sel], face[sel]) if k is None else _shape_attributes(scene.shapes[k], k,
                                                                                            p[:, sel])
        for key, value in values.items():
            attrs[key][..., sel] = value
    return GeometryBuffer(size=size, t=t, points=p, rays=rays, rotation=rot, **attrs)


def shadow_mask(scene: Scene, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """(M,) bool: True where the light is visible from ``points`` (3, M), False in shadow (a shape lies between).

    Shadow rays start ``SHADOW_OFFSET`` off the surface along its normal and end at the light. The room never
    casts shadows: it is convex and contains the light.
    """
    light = np.asarray(scene.light.position, dtype=np.float64)
    origin = points + SHADOW_OFFSET * normals
    to_light = light[:, None] - origin
    dist = np.sqrt(_dot(to_light, to_light))
    d = to_light / dist
    lit = np.ones(len(dist), dtype=bool)
    for shape in scene.shapes:  # cull with the cone from the light: a blocked segment ends in it
        lit &= ~np.isfinite(intersect_shape(shape, origin, d, dist, candidates=cone_candidates(shape, light, -d)))
    return lit
