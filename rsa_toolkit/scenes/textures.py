"""Procedural textures: solid, stripes, checker and fractal value noise, evaluated at surface (u, v) coordinates.

Every function maps arrays of surface coordinates (metres, shape (N,)) to albedo colours (N, 3) in [0, 1]; all are
vectorised and deterministic (the noise lattice comes from ``np.random.default_rng(texture.seed)``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rsa_toolkit.scenes.scene import Texture

__all__ = ["value_noise", "texture_albedo"]

_LATTICE = 256  # lattice period of the value noise (in cells)
_OCTAVES = 3


@lru_cache(maxsize=256)
def _lattice(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A permutation of 0..255 (doubled, to index without a second modulo) and 256 lattice values in [0, 1]."""
    rng = np.random.default_rng(seed)
    perm = np.concatenate([rng.permutation(_LATTICE)] * 2)
    values = rng.random(_LATTICE)
    perm.setflags(write=False)
    values.setflags(write=False)
    return perm, values


def _smoothstep(x: np.ndarray) -> np.ndarray:
    return x * x * (3.0 - 2.0 * x)


def _noise_octave(u: np.ndarray, v: np.ndarray, perm: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Value noise of one octave: hashed lattice values, bilinearly blended with a smoothstep; in [0, 1]."""
    fu, fv = np.floor(u), np.floor(v)
    iu = fu.astype(np.int64) & (_LATTICE - 1)
    iv = fv.astype(np.int64) & (_LATTICE - 1)
    su, sv = _smoothstep(u - fu), _smoothstep(v - fv)
    iu1 = (iu + 1) & (_LATTICE - 1)
    iv1 = (iv + 1) & (_LATTICE - 1)
    row0, row1 = perm[iu], perm[iu1]
    v00, v01 = values[perm[row0 + iv]], values[perm[row0 + iv1]]
    v10, v11 = values[perm[row1 + iv]], values[perm[row1 + iv1]]
    a = v00 + su * (v10 - v00)
    b = v01 + su * (v11 - v01)
    return a + sv * (b - a)


def value_noise(u: np.ndarray, v: np.ndarray, *, seed: int, octaves: int = _OCTAVES) -> np.ndarray:
    """Fractal value noise at (u, v) in lattice units: octave k has frequency 2^k and weight 2^-k; result in [0, 1]."""
    perm, values = _lattice(seed)
    total = np.zeros(np.shape(u))
    weight = 0.0
    for k in range(octaves):
        f, w = 2.0 ** k, 0.5 ** k
        total += w * _noise_octave(u * f + 17.0 * k, v * f + 31.0 * k, perm, values)
        weight += w
    return total / weight


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a[None, :] + t[:, None] * (b - a)[None, :]


def texture_albedo(texture: Texture, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Albedo (N, 3) of ``texture`` at surface coordinates ``u, v`` (N,) in metres.

    * solid: ``color_a``;
    * stripes: ``color_a`` where ``frac((u cos θ + v sin θ) / scale) < 1/2``, else ``color_b``;
    * checker: ``color_a`` where ``floor(u / scale) + floor(v / scale)`` is even, else ``color_b``;
    * noise: ``color_a + n (color_b − color_a)``, ``n`` = :func:`value_noise` at ``(u, v) / scale``.
    """
    a = np.asarray(texture.color_a, dtype=np.float64)
    b = np.asarray(texture.color_b, dtype=np.float64)
    if texture.kind == "solid":
        return np.broadcast_to(a, (len(u), 3)).copy()
    if texture.kind == "stripes":
        s = (u * np.cos(texture.angle) + v * np.sin(texture.angle)) / texture.scale
        return np.where(((s - np.floor(s)) < 0.5)[:, None], a, b)
    if texture.kind == "checker":
        parity = (np.floor(u / texture.scale) + np.floor(v / texture.scale)) % 2 == 0
        return np.where(parity[:, None], a, b)
    if texture.kind == "noise":
        return _mix(a, b, value_noise(u / texture.scale, v / texture.scale, seed=texture.seed))
    raise AssertionError(f"unreachable: Texture checks its kind, got {texture.kind!r}")
