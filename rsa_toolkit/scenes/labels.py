"""Per-pixel labels derived from the geometry buffer or the rendered image, one function per label.

All take and return (H, W) arrays (float64 inside; :func:`rsa_toolkit.scenes.render` casts to float32). The 2D
labels (texture edges, Harris corners, superpixels) use scikit-image and are the slow part of a frame.
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.scenes.raycast import GeometryBuffer, intersect_shape
from rsa_toolkit.scenes.scene import OBJECT_CLASSES, Scene

__all__ = ["occlusion_edges", "keypoints3d", "keypoints2d", "texture_edges", "segments_2d", "relabel_by_appearance",
           "class_object", "OCCLUSION_THRESHOLD", "KEYPOINT_SIGMA", "HARRIS_EPS"]

#: edge_occlusion: smallest relative depth jump |z_p − z_q| / min(z_p, z_q) between neighbours that counts.
OCCLUSION_THRESHOLD = 0.02
#: keypoints3d / keypoints2d: Gaussian blob width in pixels at 128 × 128 (scaled with the image size).
KEYPOINT_SIGMA = 1.5
#: keypoints2d: the Harris response below which the log compression is about linear.
HARRIS_EPS = 1e-4
_FIRST_OBJECT_CLASS = 4  # semantic id of OBJECT_CLASSES[0]


def _slopes_along_rows(inv: np.ndarray, surface: np.ndarray, analytic: np.ndarray, curved: np.ndarray) -> np.ndarray:
    """Each pixel's |∂(1/z)/∂u| along the rows (H, W): the analytic tangent-plane slope on planar surfaces; on curved
    ones the larger finite difference to a same-surface neighbour (the tangent plane overstates the slope near a
    silhouette), or the analytic slope when neither neighbour is on the same surface."""
    step = np.abs(inv[:, 1:] - inv[:, :-1])
    pair = np.where(surface[:, 1:] == surface[:, :-1], step, np.nan)
    pad = np.full((inv.shape[0], 1), np.nan)
    empirical = np.fmax(np.concatenate([pad, pair], axis=1), np.concatenate([pair, pad], axis=1))
    return np.where(curved & ~np.isnan(empirical), empirical, analytic)


def occlusion_edges(zbuffer: np.ndarray, surface: np.ndarray, normals: np.ndarray, curved: np.ndarray, *,
                    focal: float, threshold: float = OCCLUSION_THRESHOLD) -> np.ndarray:
    """Occlusion edges (H, W) in {0, 1}: depth discontinuities, marked on the nearer (occluding) side.

    A 4-neighbour pair (p, q) is an occlusion when p and q lie on different surfaces and (1) the z-depth jumps by
    more than ``threshold`` × the nearer depth and (2) the inverse depth steps by more than twice the larger of the
    two pixels' inverse-depth slopes ``s``. On a plane ``n · X = c`` (camera frame, ``c = z n · (x̂, ŷ, 1)``) the
    inverse depth is affine in the pixel coordinates, ``∂(1/z)/∂u = n_x / (f c)``, so where two planes meet in a
    crease (wall and floor, two box faces) the step is a convex combination of their slopes and never passes (2);
    behind an occluding contour it jumps. ``normals`` (H, W, 3) camera frame, ``curved`` (H, W) bool, ``focal`` in
    pixels.
    """
    size = zbuffer.shape[0]
    grid = (np.arange(size) + 0.5 - 0.5 * size) / focal
    c = zbuffer * (normals[..., 0] * grid[None, :] + normals[..., 1] * grid[:, None] + normals[..., 2])
    with np.errstate(divide="ignore"):
        inv = 1.0 / zbuffer
        slope_u = np.abs(normals[..., 0] / (focal * c))
        slope_v = np.abs(normals[..., 1] / (focal * c))
    edges = np.zeros(zbuffer.shape, dtype=bool)
    for z, iv, sid, s_an, cur, out in ((zbuffer, inv, surface, slope_u, curved, edges),
                                      (zbuffer.T, inv.T, surface.T, slope_v.T, curved.T, edges.T)):
        slope = _slopes_along_rows(iv, sid, s_an, cur)
        near, far = np.minimum(z[:, 1:], z[:, :-1]), np.maximum(z[:, 1:], z[:, :-1])
        jump = ((sid[:, 1:] != sid[:, :-1]) & (far - near > threshold * near)
                & (np.abs(iv[:, 1:] - iv[:, :-1]) > 2.0 * np.maximum(slope[:, 1:], slope[:, :-1])))
        left_nearer = z[:, :-1] <= z[:, 1:]
        out[:, :-1] |= jump & left_nearer
        out[:, 1:] |= jump & ~left_nearer
    return edges.astype(np.float64)


def _keypoints_world(scene: Scene) -> np.ndarray:
    """3D keypoints (K, 3): room corners, box vertices, each cylinder's four silhouette corners (where the lines of
    sight tangent to the cylinder meet the top and bottom rims) and each sphere's point nearest the camera."""
    w, d, h = scene.room.size
    corners = np.array([[x, y, z] for x in (0, w) for y in (0, d) for z in (0, h)], dtype=np.float64)
    points = [corners]
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    cam = np.asarray(scene.camera.position, dtype=np.float64)
    for shape in scene.shapes:
        c, half = np.asarray(shape.center, dtype=np.float64), np.asarray(shape.half_size, dtype=np.float64)
        if shape.kind == "box":
            points.append(c + (signs * half) @ shape.rotation.T)
        elif shape.kind == "sphere":
            to_cam = cam - c
            points.append((c + half[0] * to_cam / np.linalg.norm(to_cam))[None])
        else:  # tangent points of the circle seen from the camera: at ±acos(r / distance) from the camera bearing
            r, dist = half[0], np.hypot(*(cam - c)[:2])
            bearing = np.arctan2(*(cam - c)[1::-1])
            spread = np.arccos(min(r / dist, 1.0))
            rims = [c[2] - half[2], c[2] + half[2]]
            points.append(np.array([[c[0] + r * np.cos(bearing + s * spread), c[1] + r * np.sin(bearing + s * spread),
                                     z] for s in (-1, 1) for z in rims]))
    return np.concatenate(points)


def _visible(scene: Scene, points: np.ndarray) -> np.ndarray:
    """(K,) bool: no shape lies on the line of sight from the camera to each point (1 mm tolerance). The room
    cannot hide a point inside it: it is convex and contains the camera."""
    o = np.asarray(scene.camera.position, dtype=np.float64)
    to_point = (points - o).T
    dist = np.sqrt(np.sum(to_point * to_point, axis=0))
    d = to_point / dist
    visible = np.ones(len(points), dtype=bool)
    for shape in scene.shapes:
        visible &= ~np.isfinite(intersect_shape(shape, o, d, dist - 1e-3))
    return visible


def _splat(u: np.ndarray, v: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """max_k exp(−((x − u_k)² + (y − v_k)²) / 2σ²) over pixel centres (x, y): (size, size) in [0, 1]."""
    if len(u) == 0:
        return np.zeros((size, size))
    centres = np.arange(size) + 0.5
    gx = np.exp(-0.5 * ((centres[None, :] - u[:, None]) / sigma) ** 2)
    gy = np.exp(-0.5 * ((centres[None, :] - v[:, None]) / sigma) ** 2)
    return np.max(gy[:, :, None] * gx[:, None, :], axis=0)


def keypoints3d(scene: Scene, gb: GeometryBuffer) -> np.ndarray:
    """Heat map (H, W) in [0, 1] of the visible 3D keypoints (:func:`_keypoints_world`) as Gaussian blobs.

    A keypoint counts when it lies in front of the camera, projects inside the image and nothing hides it
    (:func:`_visible`). Blob width: ``KEYPOINT_SIGMA · size / 128`` pixels.
    """
    size = gb.size
    f = 0.5 * size / np.tan(0.5 * scene.camera.fov)
    world = _keypoints_world(scene)
    pc = (world - np.asarray(scene.camera.position, dtype=np.float64)) @ gb.rotation
    with np.errstate(divide="ignore", invalid="ignore"):
        u = 0.5 * size + f * pc[:, 0] / pc[:, 2]
        v = 0.5 * size + f * pc[:, 1] / pc[:, 2]
    keep = (pc[:, 2] > 1e-3) & (u >= 0) & (u < size) & (v >= 0) & (v < size)
    keep[keep] = _visible(scene, world[keep])
    return _splat(u[keep], v[keep], size, KEYPOINT_SIGMA * size / 128)


def keypoints2d(gray: np.ndarray) -> np.ndarray:
    """2D corner response (H, W) in [0, 1]: the Harris response ``R`` (``skimage.feature.corner_harris``, k = 0.05,
    σ = size/128) compressed as ``log(1 + R⁺/ε) / log(1 + max R⁺/ε)`` with ε = HARRIS_EPS (all 0 on a flat image)."""
    from skimage.feature import corner_harris

    r = np.maximum(corner_harris(gray, k=0.05, sigma=max(1.0, gray.shape[0] / 128)), 0.0)
    top = r.max()
    return np.log1p(r / HARRIS_EPS) / np.log1p(top / HARRIS_EPS) if top > 0 else r


def texture_edges(gray: np.ndarray) -> np.ndarray:
    """Canny edges (H, W) in {0, 1} of the grayscale image (``skimage.feature.canny``, σ = size/128, default
    hysteresis thresholds 0.1 / 0.2)."""
    from skimage.feature import canny

    return canny(gray, sigma=max(1.0, gray.shape[0] / 128)).astype(np.float64)


def relabel_by_appearance(ids: np.ndarray) -> np.ndarray:
    """Non-negative integer ids renumbered 0, 1, 2, … in the raster order of their first pixel (a canonical
    labelling)."""
    flat = ids.ravel()
    first = np.full(int(flat.max()) + 1, flat.size)
    np.minimum.at(first, flat, np.arange(flat.size))
    present = np.flatnonzero(first < flat.size)
    rank = np.zeros(len(first), dtype=np.int64)
    rank[present[np.argsort(first[present])]] = np.arange(len(present))
    return rank[flat].reshape(ids.shape)


def segments_2d(rgb: np.ndarray) -> np.ndarray:
    """Superpixels (H, W) of the RGB image: Felzenszwalb–Huttenlocher graph segmentation
    (``skimage.segmentation.felzenszwalb``, scale = 300 · size/128, σ = 0.8 · size/128, min_size = 40 · (size/128)²),
    renumbered by :func:`relabel_by_appearance`."""
    from skimage.segmentation import felzenszwalb

    k = rgb.shape[0] / 128
    return relabel_by_appearance(felzenszwalb(rgb, scale=300 * k, sigma=0.8 * k, min_size=max(4, int(40 * k * k))))


def class_object(semantic: np.ndarray) -> np.ndarray:
    """Pixel-area distribution (len(OBJECT_CLASSES),) over the object classes in view: the fraction of object pixels
    of each class (sums to 1); uniform when no object is in view."""
    n = len(OBJECT_CLASSES)
    counts = np.bincount(semantic.ravel(), minlength=_FIRST_OBJECT_CLASS + n)[_FIRST_OBJECT_CLASS:].astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.full(n, 1.0 / n)
