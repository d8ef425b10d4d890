"""Per-image targets from dense (pixel) label maps, so dense tasks (depth, normals, segmentation) can be scored.

Choices (stated in docs/transferability.md):

- regression: adaptive average pooling of the map to a ``grid`` (e.g. the 16 x 16 feature grid), cell (a, b)
  covering rows floor(a H / h) .. ceil((a + 1) H / h) - 1 and the same for columns (torch's
  ``adaptive_avg_pool2d`` bins; exact block means when h divides H); NaN pixels (masked) are left out of a cell's
  mean; the target is the flattened (N, h * w * C) array, cell-major, channel last.
- classification: the per-image majority label (the most frequent pixel label; ties go to the smallest label),
  leaving out ``ignore_index`` pixels.
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.errors import UserInputError

__all__ = ["pooled_pixel_target", "majority_pixel_label"]


def pooled_pixel_target(label_map: np.ndarray, *, grid: tuple[int, int]) -> np.ndarray:
    """Dense map (N, H, W) or (N, H, W, C) -> regression target (N, h * w * C) float64 by adaptive average pooling
    to ``grid`` = (h, w), ignoring NaN pixels."""
    x = np.asarray(label_map)
    if x.ndim not in (3, 4) or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise UserInputError(
            f"pooled_pixel_target: label_map must be a numeric array (N, H, W) or (N, H, W, C), got shape "
            f"{x.shape} and dtype {x.dtype}."
        )
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        x = x[..., None]
    n, h_in, w_in, c = x.shape
    if (not isinstance(grid, (tuple, list)) or len(grid) != 2
            or not all(isinstance(g, (int, np.integer)) and not isinstance(g, bool) for g in grid)
            or not (1 <= grid[0] <= h_in and 1 <= grid[1] <= w_in)):
        raise UserInputError(
            f"pooled_pixel_target: grid must be two integers (h, w) with 1 <= h <= H = {h_in} and "
            f"1 <= w <= W = {w_in}, got {grid!r}."
        )
    if np.isinf(x).any():
        raise UserInputError("pooled_pixel_target: label_map has infinite values; use NaN to mask pixels.")
    gh, gw = int(grid[0]), int(grid[1])
    out = np.empty((n, gh, gw, c))
    for a in range(gh):
        r0, r1 = (a * h_in) // gh, -((-(a + 1) * h_in) // gh)
        for b in range(gw):
            c0, c1 = (b * w_in) // gw, -((-(b + 1) * w_in) // gw)
            cell = x[:, r0:r1, c0:c1, :].reshape(n, -1, c)
            valid = ~np.isnan(cell)
            count = valid.sum(axis=1)
            if (count == 0).any():
                i, ch = map(int, np.argwhere(count == 0)[0])
                raise UserInputError(
                    f"pooled_pixel_target: image {i}, grid cell ({a}, {b}), channel {ch} has only NaN (masked) "
                    "pixels; use a coarser grid or fill the mask."
                )
            out[:, a, b, :] = np.where(valid, cell, 0.0).sum(axis=1) / count
    return out.reshape(n, -1)


def majority_pixel_label(label_map: np.ndarray, *, ignore_index: int | None = None) -> np.ndarray:
    """Integer label map (N, H, W) -> (N,) int64 classification target: each image's most frequent label (ties:
    the smallest), not counting ``ignore_index`` pixels."""
    x = np.asarray(label_map)
    if x.ndim != 3 or not (np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
        raise UserInputError(
            f"majority_pixel_label: label_map must be an integer array (N, H, W), got shape {x.shape} and dtype "
            f"{x.dtype}."
        )
    out = np.empty(x.shape[0], dtype=np.int64)
    for i, image in enumerate(x.reshape(x.shape[0], -1)):
        values = image if ignore_index is None else image[image != ignore_index]
        if values.size == 0:
            raise UserInputError(
                f"majority_pixel_label: image {i} has only ignore_index ({ignore_index}) pixels, so it has no label."
            )
        labels, counts = np.unique(values, return_counts=True)
        out[i] = labels[int(np.argmax(counts))]
    return out
