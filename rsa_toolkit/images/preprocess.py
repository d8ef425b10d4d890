"""Image preprocessing: the RSA paper's Taskonomy recipe and a plain (ImageNet-style) recipe for generic models.

Every preprocessing is a small frozen dataclass: ``prep(image)`` maps one image, float32 (H, W, 3) RGB in [0, 1],
to a float32 tensor (3, S, S); ``prep.describe()`` is a JSON-ready dict of everything that changes the output, used
in feature-cache keys and provenance (``get_preprocessing(prep.describe())`` rebuilds it).

Taskonomy recipe (Dwivedi & Roig, CVPR 2019; Zamir et al., CVPR 2018), as in the released code:

1. centre square crop, side ``2 * (min(H, W) // 2)`` starting at ``(H // 2 - side // 2, W // 2 - side // 2)``
   (``load_raw_image_center_crop`` in the TF taskbank's ``tools/task_viz.py``; an odd side loses one row/column);
2. bilinear resize to S x S (S = 256), half-pixel centres, no anti-aliasing;
3. for the 14 "low_sat" tasks only, clip the pixel values to [0.1, 0.9] (in the [0, 1] scale, after the resize);
4. scale [0, 1] -> [-1, 1]: ``x * 2 - 1``.

Source of steps 2-4: ``taskbank/lib/data/load_ops.py`` in StanfordVL/taskonomy::

    def resize_rescale_image_low_sat(img, new_dims, new_scale, interp_order=1, ...):
        img = skimage.img_as_float( img )
        img = resize_image( img, new_dims, interp_order )     # skimage.transform.resize(order=1, preserve_range=True)
        img = np.clip(img, 0.1, 0.9)
        img = rescale_image( img, new_scale, ... )             # new_scale = [-1, 1]: im * 2 - 1

and the task list, identical in StanfordVL/taskonomy ``taskbank/tools/run_img_task.py`` and in the RSA release
kshitijd20/RSA-CVPR19-release ``taskonomy/taskbank/tools/generate_features_taskonomy_500.py`` (the script that made
the paper's features, commented "Since we observe that areas with pixel values closes to either 0 or 1 sometimes
overflows, we clip pixels value")::

    low_sat_tasks = 'autoencoder curvature denoise edge2d edge3d keypoint2d keypoint3d
                     reshade rgb2depth rgb2mist rgb2sfnorm segment25d segment2d room_layout'

The other six tasks (colorization, inpainting_whole, vanishing_point, segmentsemantic, class_1000, class_places) use
their config's ``resize_rescale_image`` (no clip); colorization's config feeds a lightness channel, not RGB, which
this toolkit does not reproduce (the visualpriors port takes RGB for all tasks). Load_ops also has a
``resize_rescale_image_low_sat_2`` (clip [0.2, 0.8]) used only by Taskonomy's training-time feature generation, not by
the RSA release.

Resize choice: ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` for both recipes. The
released code used scikit-image 0.12.3 (pinned in taskbank/requirement.txt), whose ``resize(order=1)`` has no
anti-aliasing and maps pixel centres the same way as ``align_corners=False``; so the Taskonomy recipe uses
``antialias=False`` and matches it exactly in the interior (Taskonomy's 512 -> 256 is then the 2 x 2 mean). The
only difference is at the border when *up*-sampling (skimage 0.12 blends in a black border, torch repeats the edge).
``antialias=True`` (a field) is the better choice for photos much larger than S, at the price of leaving the paper's
recipe. The plain recipe defaults to ``antialias=True``, like PIL's and torchvision's resize that ImageNet models
are usually trained with. PIL was not used: it always anti-aliases and works on 8-bit images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from rsa_toolkit.registry import Registry
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.validation import check_bool, check_int

__all__ = [
    "LOW_SAT_TASKS", "LOW_SAT_TF_NAMES", "LOW_SAT_RANGE", "PREPROCESSINGS", "PlainPreprocessing", "Preprocessing",
    "TaskonomyPreprocessing", "get_preprocessing", "preprocess_batch", "taskonomy_preprocessing",
]

# Bump when an implementation change alters outputs for the same description (invalidates feature caches).
_RECIPE_VERSION = 1

LOW_SAT_RANGE = (0.1, 0.9)

# The 14 TF task names, verbatim from the released code (see the module docstring for the files).
LOW_SAT_TF_NAMES: tuple[str, ...] = (
    "autoencoder", "curvature", "denoise", "edge2d", "edge3d", "keypoint2d", "keypoint3d",
    "reshade", "rgb2depth", "rgb2mist", "rgb2sfnorm", "segment25d", "segment2d", "room_layout",
)

#: Canonical (visualpriors) names of the tasks whose inputs are clipped to [0.1, 0.9].
LOW_SAT_TASKS: frozenset[str] = frozenset(resolve_task(name) for name in LOW_SAT_TF_NAMES)


@runtime_checkable
class Preprocessing(Protocol):
    """What the toolkit needs of a preprocessing: an output size, a description and the mapping itself."""

    size: int

    def describe(self) -> dict[str, Any]: ...

    def __call__(self, image: np.ndarray) -> torch.Tensor: ...


# ---------------------------------------------------------------------------------------------------------------------
# checks and the shared steps


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


def centre_crop(prep: Preprocessing, x: torch.Tensor) -> torch.Tensor:
    """The centre square crop ``prep`` applies to an image, on any (..., H, W) tensor aligned with it (a mask)."""
    return _crop_taskonomy(x) if isinstance(prep, TaskonomyPreprocessing) else _crop_plain(x)


def _resize(x: torch.Tensor, size: int, antialias: bool) -> torch.Tensor:
    if x.shape[-2:] == (size, size):
        return x  # as the released resize_image: same dims, no interpolation
    return F.interpolate(x.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False,
                         antialias=antialias).squeeze(0)


# ---------------------------------------------------------------------------------------------------------------------
# the two recipes


@dataclass(frozen=True, kw_only=True)
class TaskonomyPreprocessing:
    """The RSA paper's recipe: Taskonomy centre crop, bilinear resize to ``size``, optional [0.1, 0.9] clip
    (``low_saturation``), scale to [-1, 1]. Output (3, size, size) float32 in [-1, 1] ([-0.8, 0.8] when clipped).

    Use :func:`taskonomy_preprocessing` to get the right ``low_saturation`` for a task.
    """

    low_saturation: bool = False
    size: int = 256
    antialias: bool = False

    def __post_init__(self) -> None:
        _check_size(self.size)
        check_bool(self.low_saturation, name="low_saturation")
        check_bool(self.antialias, name="antialias")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "taskonomy",
            "recipe_version": _RECIPE_VERSION,
            "size": int(self.size),
            "crop": "centre square, side 2*(min(H,W)//2) (Taskonomy load_raw_image_center_crop)",
            "resize": "bilinear, align_corners=False",
            "antialias": bool(self.antialias),
            "low_saturation": bool(self.low_saturation),
            "clip": list(LOW_SAT_RANGE) if self.low_saturation else None,
            "output_range": [-1.0, 1.0],
        }

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        x = _resize(_crop_taskonomy(_to_chw(_check_image(image))), int(self.size), bool(self.antialias))
        if self.low_saturation:
            x = x.clamp(*LOW_SAT_RANGE)
        return (x * 2.0 - 1.0).contiguous()


@dataclass(frozen=True, kw_only=True)
class PlainPreprocessing:
    """Generic recipe: centre square crop (side min(H, W)), bilinear resize to ``size``, then
    ``(x - mean) / std`` per channel; ``mean=None, std=None`` keeps [0, 1]. Defaults: ImageNet statistics, 224 px."""

    size: int = 224
    mean: tuple[float, float, float] | None = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] | None = (0.229, 0.224, 0.225)
    antialias: bool = True

    def __post_init__(self) -> None:
        _check_size(self.size)
        check_bool(self.antialias, name="antialias")
        if (self.mean is None) != (self.std is None):
            raise UserInputError(
                f"mean and std must both be given or both be None, got mean={self.mean!r}, std={self.std!r}."
            )
        if self.mean is not None:
            for name in ("mean", "std"):
                value = getattr(self, name)
                try:
                    triple = tuple(float(v) for v in value)
                except (TypeError, ValueError):
                    triple = ()
                if len(triple) != 3 or not all(np.isfinite(triple)):
                    raise UserInputError(f"{name} must be 3 finite numbers (R, G, B), got {value!r}.")
                object.__setattr__(self, name, triple)  # normalise lists/arrays to a hashable tuple of floats
            if min(self.std) <= 0:  # type: ignore[arg-type]
                raise UserInputError(f"std must be positive for every channel, got {self.std!r}.")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "plain",
            "recipe_version": _RECIPE_VERSION,
            "size": int(self.size),
            "crop": "centre square, side min(H,W) (torchvision CenterCrop offsets)",
            "resize": "bilinear, align_corners=False",
            "antialias": bool(self.antialias),
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
        }

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        x = _resize(_crop_plain(_to_chw(_check_image(image))), int(self.size), bool(self.antialias))
        if self.mean is not None:
            mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
            std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
            x = (x - mean) / std
        return x.contiguous()


# ---------------------------------------------------------------------------------------------------------------------
# presets, look-up and batching

PREPROCESSINGS: Registry[Preprocessing] = Registry("preprocessing")
PREPROCESSINGS.register("taskonomy")(TaskonomyPreprocessing(low_saturation=False))
PREPROCESSINGS.register("taskonomy-low-sat")(TaskonomyPreprocessing(low_saturation=True))
PREPROCESSINGS.register("imagenet")(PlainPreprocessing())
PREPROCESSINGS.register("plain")(PlainPreprocessing(size=224, mean=None, std=None))

_KINDS: dict[str, type] = {"taskonomy": TaskonomyPreprocessing, "plain": PlainPreprocessing}


def taskonomy_preprocessing(task: str, *, size: int = 256) -> TaskonomyPreprocessing:
    """The RSA recipe for ``task`` (any name or alias): low-saturation clipping exactly for :data:`LOW_SAT_TASKS`."""
    return TaskonomyPreprocessing(low_saturation=resolve_task(task) in LOW_SAT_TASKS, size=size)


def _from_description(spec: Mapping[str, Any]) -> Preprocessing:
    kind = spec.get("kind")
    if kind not in _KINDS:
        raise UserInputError(
            f"Preprocessing description has kind {kind!r}; expected one of {', '.join(map(repr, _KINDS))}."
        )
    version = spec.get("recipe_version", _RECIPE_VERSION)
    if version != _RECIPE_VERSION:
        raise UserInputError(
            f"Preprocessing description has recipe_version {version!r}, but this rsa-toolkit implements version "
            f"{_RECIPE_VERSION}; features made with it cannot be reproduced exactly by this version."
        )
    cls = _KINDS[kind]
    names = {f.name for f in fields(cls)}
    kwargs = {k: spec[k] for k in names if k in spec}
    for key in ("mean", "std"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    prep = cls(**kwargs)
    described = prep.describe()
    for key, value in spec.items():  # fields this version does not understand would be silently ignored otherwise
        if key not in described:
            raise UserInputError(f"Preprocessing description has an unknown key {key!r} for kind {kind!r}.")
    return prep


def get_preprocessing(name_or_spec: str | Mapping[str, Any] | Preprocessing) -> Preprocessing:
    """A preprocessing from a preset name (``PREPROCESSINGS.names()``), a ``describe()`` dict, or an instance
    (returned as is)."""
    if isinstance(name_or_spec, str):
        return PREPROCESSINGS.get(name_or_spec)
    if isinstance(name_or_spec, Mapping):
        return _from_description(name_or_spec)
    if isinstance(name_or_spec, Preprocessing):
        return name_or_spec
    raise UserInputError(
        f"preprocessing must be a preset name ({', '.join(PREPROCESSINGS.names())}), a describe() dict or a "
        f"preprocessing object, got {type(name_or_spec).__name__}."
    )


def preprocess_batch(images: Sequence[np.ndarray], prep: Preprocessing | str) -> torch.Tensor:
    """Stack ``prep(image)`` for each image: float32 tensor (B, 3, S, S)."""
    prep = get_preprocessing(prep)
    if len(images) == 0:
        raise UserInputError("preprocess_batch needs at least one image, got an empty list.")
    return torch.stack([prep(image) for image in images])
