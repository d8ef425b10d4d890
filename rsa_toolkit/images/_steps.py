"""The shared steps of the preprocessing recipes (:mod:`rsa_toolkit.images.preprocess`): input checks, crops and
bilinear resizes on (C, H, W) tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.validation import check_int


def _check_size(size: object) -> None:
    check_int(size, name="size", minimum=1, expected="a positive integer (the output side in pixels)")


def _check_image(image: object) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise UserInputError(f"image must be a numpy array of shape (H, W, 3), got {type(image).__name__}.")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise UserInputError(f"image must have shape (H, W, 3) (RGB, channels last), got shape {image.shape}.")
    if not np.issubdtype(image.dtype, np.floating):
        raise UserInputError(
            f"image must be floating point with values in [0, 1], got dtype {image.dtype}; "
            "load files with rsa_toolkit.images.probe.load_image, or divide 8-bit images by 255."
        )
    lo, hi = float(np.min(image)), float(np.max(image))
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
        raise UserInputError(f"image values must lie in [0, 1], got the range [{lo:g}, {hi:g}].")
    return image


def _to_chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)


def _crop_taskonomy(x: torch.Tensor) -> torch.Tensor:
    """Centre square crop exactly as ``load_raw_image_center_crop``: ``l = min(H, W) // 2``,
    ``img[H//2 - l : H//2 + l, W//2 - l : W//2 + l]`` (a 1-pixel side, where that is empty, keeps the centre pixel)."""
    h, w = x.shape[-2:]
    half = min(h, w) // 2
    if half == 0:
        return x[..., h // 2: h // 2 + 1, w // 2: w // 2 + 1]
    return x[..., h // 2 - half: h // 2 + half, w // 2 - half: w // 2 + half]


def _crop_plain(x: torch.Tensor) -> torch.Tensor:
    """Centre square crop of side min(H, W), offsets rounded as torchvision's ``CenterCrop``."""
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = int(round((h - side) / 2.0)), int(round((w - side) / 2.0))
    return x[..., top: top + side, left: left + side]


def _resize_to(x: torch.Tensor, hw: tuple[int, int], antialias: bool) -> torch.Tensor:
    if tuple(x.shape[-2:]) == hw:
        return x
    return F.interpolate(x.unsqueeze(0), size=hw, mode="bilinear", align_corners=False,
                         antialias=antialias).squeeze(0)


def _crop_centre(x: torch.Tensor, side: int) -> torch.Tensor:
    """Centre crop side x side, offsets as torchvision's ``CenterCrop``."""
    h, w = x.shape[-2:]
    top, left = int(round((h - side) / 2.0)), int(round((w - side) / 2.0))
    return x[..., top: top + side, left: left + side]


def _short_side_to(h: int, w: int, short: int) -> tuple[int, int]:
    """torchvision ``Resize(short)``: the shorter side becomes ``short``, the longer ``int(short * long / shorter)``."""
    if h <= w:
        return short, max(1, int(short * w / h))
    return max(1, int(short * h / w)), short


def _resize(x: torch.Tensor, size: int, antialias: bool) -> torch.Tensor:
    if x.shape[-2:] == (size, size):
        return x  # as the released resize_image: same dims, no interpolation
    return F.interpolate(x.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False,
                         antialias=antialias).squeeze(0)


def _plain_geometry(prep: Any, x: torch.Tensor) -> torch.Tensor:
    """A generic recipe's geometry (``prep``: a PlainPreprocessing; its ``resize`` rule) on a (3, H, W) image:
    (3, size, size)."""
    size, aa = int(prep.size), bool(prep.antialias)
    if prep.resize == "center_crop_then_resize":
        return _resize(_crop_plain(x), size, aa)
    if prep.resize == "resize":
        return _resize_to(x, (size, size), aa)
    h, w = x.shape[-2:]
    if prep.resize == "resize_short_then_center_crop":
        return _crop_centre(_resize_to(x, _short_side_to(h, w, int(prep.resize_short)), aa), size)
    if h < size or w < size:  # center_crop
        raise UserInputError(f"resize='center_crop' needs images of at least {size} x {size} pixels, got {h} x {w}; "
                             "use resize='resize_short_then_center_crop' or 'center_crop_then_resize'.")
    return _crop_centre(x, size)
