"""Validity masks for the distillation loss: Taskonomy's ``mask_valid`` images, or any folder of masks.

Taskonomy trains its pixel tasks on valid pixels only (no depth through windows or beyond the scan); a user who trains
on Taskonomy images can hand the same masks to the student (``--masks DIR``), and the distillation loss of every
pixel task then counts valid pixels only (:func:`amalgamate.training.losses.distillation_loss`). Image-level tasks ignore them.

A mask belongs to an image by name: ``DIR/<the image's relative path, any extension>`` with a ``.png`` suffix, or,
for Taskonomy's names, the image's ``_domain_rgb`` replaced by ``_domain_mask_valid``. Every training image must have
one, checked before training starts. A mask goes through the geometry of the student's preprocessing (its centre
square crop, :func:`rsa_toolkit.images.preprocess.centre_crop`), then nearest-neighbour resizing to the task's output size;
a pixel is valid when its mask value is above half the range.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.images.preprocess import Preprocessing, centre_crop
from rsa_toolkit.images.probe import ProbeSet

__all__ = ["mask_files", "load_masks"]

_TASKONOMY_RGB, _TASKONOMY_MASK = "_domain_rgb", "_domain_mask_valid"


def _candidates(folder: Path, image_id: str) -> list[Path]:
    stem = Path(image_id).with_suffix("")
    names = [stem]
    if stem.name.endswith(_TASKONOMY_RGB):
        names.append(stem.with_name(stem.name[: -len(_TASKONOMY_RGB)] + _TASKONOMY_MASK))
    return [folder / f"{name}.png" for name in names]


def mask_files(images: ProbeSet, folder: str | os.PathLike[str]) -> list[Path]:
    """The mask file of every image in ``images`` (in order); a missing one is an error naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"masks='{folder}' is not a directory; give the folder of validity masks (PNG, one "
                             "per training image, e.g. Taskonomy's mask_valid).", parameter="masks")
    files, missing = [], []
    for image_id in images.ids:
        found = next((p for p in _candidates(folder, image_id) if p.is_file()), None)
        if found is None:
            missing.append(image_id)
        files.append(found)
    if missing:
        expected = " or ".join(str(p) for p in _candidates(folder, missing[0]))
        raise UserInputError(f"masks='{folder}': {len(missing)} of {len(images)} training images have no mask; "
                             f"the first, '{missing[0]}', needs {expected}.", parameter="masks")
    return files  # type: ignore[return-value]


def load_masks(files: Sequence[Path], indices: Sequence[int] | np.ndarray, size: int, prep: Preprocessing) -> Tensor:
    """The masks of images ``indices``, cropped as ``prep`` crops the images, at ``size`` x ``size``:
    (B, 1, size, size) float32, 1 = valid."""
    out = np.empty((len(indices), 1, size, size), dtype=np.float32)
    for row, i in enumerate(indices):
        path = files[int(i)]
        try:
            with Image.open(path) as img:
                grey = img.convert("I;16") if img.mode.startswith("I") else img.convert("L")
                full = np.asarray(grey)
        except OSError as exc:
            raise UserInputError(f"mask '{path}' cannot be read ({exc}); replace it with a PNG mask.") from None
        top = 65535 if grey.mode.startswith("I") else 255
        square = centre_crop(prep, torch.from_numpy(np.ascontiguousarray(full > top / 2))).numpy()
        square = Image.fromarray(square.astype(np.uint8) * 255)
        out[row, 0] = np.asarray(square.resize((size, size), Image.NEAREST)) > 0
    return torch.from_numpy(out)
