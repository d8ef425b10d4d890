"""Image preprocessing: the RSA paper's Taskonomy recipe and a plain (ImageNet-style) recipe for generic models.

Every preprocessing is a small frozen dataclass: ``prep(image)`` maps one image, float32 (H, W, 3) RGB in [0, 1],
to a float32 tensor (3, S, S); ``prep.describe()`` is a JSON-ready dict of everything that changes the output, used
in feature-cache keys and provenance (``get_preprocessing(prep.describe())`` rebuilds it). ``prep(image)`` is
``prep.values(prep.geometry(image))``: crop and resize (values still in [0, 1]), then the value steps; a teacher's own
input kind acts in between (:mod:`rsa_toolkit.images.teacher_inputs`).

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
their config's ``resize_rescale_image`` (no clip); colorization's config feeds a lightness channel, not RGB: the
visualpriors port takes 3 channels for all tasks, so colorization gets the grey image on 3 channels instead, under
``teacher_inputs="own"`` (:mod:`rsa_toolkit.images.teacher_inputs`, not a preprocessing step). Load_ops also has a
``resize_rescale_image_low_sat_2`` (clip [0.2, 0.8]) used only by Taskonomy's training-time feature generation, not by
the RSA release.

Resize choice: ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` for both recipes. The
released code used scikit-image 0.12.3 (pinned in taskbank/requirement.txt), whose ``resize(order=1)`` has no
anti-aliasing and maps pixel centres the same way as ``align_corners=False``; so the Taskonomy recipe uses
``antialias=False`` and matches it exactly in the interior (Taskonomy's 512 -> 256 is then the 2 x 2 mean). The
only difference is at the border when *up*-sampling (skimage 0.12 blends in a black border, torch repeats the edge).
``antialias=True`` (a field) is the better choice for photos much larger than S, at the price of leaving the paper's
recipe. The generic recipe defaults to ``antialias=True``, like PIL's and torchvision's resize that ImageNet models
are usually trained with. PIL was not used: it always anti-aliases and works on 8-bit images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from rsa_toolkit.registry import Registry
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.validation import check_bool, check_int
from rsa_toolkit.images._steps import (_check_image, _check_size, _crop_centre, _crop_plain, _crop_taskonomy,
                                      _plain_geometry, _resize, _to_chw)

__all__ = [
    "LOW_SAT_TASKS", "LOW_SAT_TF_NAMES", "LOW_SAT_RANGE", "PREPROCESSINGS", "PlainPreprocessing", "Preprocessing",
    "TaskonomyPreprocessing", "get_preprocessing", "preprocess_batch", "taskonomy_preprocessing",
    "RESIZE_RULES", "CHANNEL_ORDERS", "PREPROCESSING_KEYS", "preprocessing_from_keys",
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
    """What the toolkit needs of a preprocessing: an output size, a description and the mapping itself (teacher
    input kinds other than clean also need ``geometry`` and ``values``, as the two recipes below have)."""

    size: int

    def describe(self) -> dict[str, Any]: ...

    def __call__(self, image: np.ndarray) -> torch.Tensor: ...


# ---------------------------------------------------------------------------------------------------------------------
# the shared steps (checks, crops and resizes) are in _steps.py


def centre_crop(prep: Preprocessing, x: torch.Tensor) -> torch.Tensor:
    """The region of an image that ``prep`` keeps (before resizing), on any (..., H, W) tensor aligned with it (a
    mask): the centre square for the square-crop recipes, the whole image for ``resize``, the centre crop mapped back
    to the image's resolution for ``resize_short_then_center_crop`` and ``center_crop``."""
    if isinstance(prep, TaskonomyPreprocessing):
        return _crop_taskonomy(x)
    rule = getattr(prep, "resize", "center_crop_then_resize")
    if rule == "resize":
        return x
    if rule == "resize_short_then_center_crop":
        side = max(1, round(int(prep.size) * min(x.shape[-2:]) / int(prep.resize_short)))  # type: ignore[attr-defined]
        return _crop_centre(x, side)
    if rule == "center_crop":
        return _crop_centre(x, int(prep.size))
    return _crop_plain(x)


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
            "name": _preset_name(self),
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
        return self.values(self.geometry(image))

    def geometry(self, image: np.ndarray) -> torch.Tensor:
        """Crop and resize: (3, size, size) float32, values still in [0, 1] (where teacher inputs act)."""
        return _resize(_crop_taskonomy(_to_chw(_check_image(image))), int(self.size), bool(self.antialias))

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """The value steps on :meth:`geometry`'s output: the optional clip, then [0, 1] -> [-1, 1]."""
        if self.low_saturation:
            x = x.clamp(*LOW_SAT_RANGE)
        return (x * 2.0 - 1.0).contiguous()


#: How a generic recipe turns an image of any shape into a size x size square (the zoo-file key ``resize``).
RESIZE_RULES: dict[str, str] = {
    "center_crop_then_resize": "centre square crop of side min(H, W) (torchvision CenterCrop offsets), bilinear resize "
                               "to size x size",
    "resize_short_then_center_crop": "bilinear resize of the shorter side to resize_short (torchvision Resize(int)), "
                                     "centre crop size x size",
    "resize": "bilinear resize to size x size (the aspect ratio is not kept)",
    "center_crop": "centre crop size x size at the image's own resolution (no resizing)",
}
CHANNEL_ORDERS = ("RGB", "BGR")


def _check_triple(value: object, name: str) -> tuple[float, float, float]:
    try:
        triple = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        triple = ()
    if len(triple) != 3 or not all(np.isfinite(triple)):
        raise UserInputError(f"{name} must be 3 finite numbers (one per channel, in channel_order), got {value!r}.")
    return triple  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class PlainPreprocessing:
    """Generic recipe for any network, in this order:

    1. geometry, ``resize`` (one of :data:`RESIZE_RULES`): by default the centre square crop of side min(H, W)
       resized to ``size``; ``resize_short_then_center_crop`` (the usual ImageNet evaluation transform: shorter side to
       ``resize_short``, default ``int(size / 0.875)`` = 256 for 224, then a centre crop), ``resize`` or
       ``center_crop``; bilinear, ``align_corners=False``, anti-aliased by default;
    2. value range: [0, 1] mapped linearly onto ``value_range`` (e.g. (-1, 1), or (0, 255) for Caffe models);
    3. channel order: ``"RGB"`` or ``"BGR"`` (the channels reversed);
    4. ``(x - mean) / std`` per channel, in the units of ``value_range`` and the order of ``channel_order``;
       ``mean=None, std=None`` skips it.

    Defaults: the ``imagenet`` preset (224 px, ImageNet statistics on [0, 1] RGB). Output (3, size, size) float32.
    """

    size: int = 224
    mean: tuple[float, float, float] | None = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] | None = (0.229, 0.224, 0.225)
    antialias: bool = True
    resize: str = "center_crop_then_resize"
    resize_short: int | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    channel_order: str = "RGB"

    def __post_init__(self) -> None:
        _check_size(self.size)
        check_bool(self.antialias, name="antialias")
        if not isinstance(self.resize, str) or self.resize not in RESIZE_RULES:
            raise UserInputError(f"resize must be one of {', '.join(RESIZE_RULES)}, got {self.resize!r}.")
        if self.resize == "resize_short_then_center_crop":
            short = int(self.size / 0.875) if self.resize_short is None else self.resize_short
            check_int(short, name="resize_short", minimum=int(self.size),
                      expected=f"an integer >= size ({self.size}): the shorter side before the centre crop")
            object.__setattr__(self, "resize_short", int(short))
        elif self.resize_short is not None:
            raise UserInputError(f"resize_short is used only with resize='resize_short_then_center_crop', got "
                                 f"resize_short={self.resize_short!r} with resize={self.resize!r}.")
        try:
            lo, hi = (float(v) for v in self.value_range)
        except (TypeError, ValueError):
            lo, hi = np.nan, np.nan
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise UserInputError(f"value_range must be two finite numbers [low, high] with low < high (e.g. [0, 1] "
                                 f"or [-1, 1]), got {self.value_range!r}.")
        object.__setattr__(self, "value_range", (lo, hi))
        order = self.channel_order.upper() if isinstance(self.channel_order, str) else None
        if order not in CHANNEL_ORDERS:
            raise UserInputError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}.")
        object.__setattr__(self, "channel_order", order)
        if (self.mean is None) != (self.std is None):
            raise UserInputError(
                f"mean and std must both be given or both be None, got mean={self.mean!r}, std={self.std!r}."
            )
        if self.mean is not None:
            for name in ("mean", "std"):  # normalise lists/arrays to a hashable tuple of floats
                object.__setattr__(self, name, _check_triple(getattr(self, name), name))
            if min(self.std) <= 0:  # type: ignore[arg-type]
                raise UserInputError(f"std must be positive for every channel, got {self.std!r}.")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "generic",
            "name": _preset_name(self),
            "recipe_version": _RECIPE_VERSION,
            "size": int(self.size),
            "resize": self.resize,
            "resize_short": self.resize_short,
            "steps": RESIZE_RULES[self.resize].replace("resize_short", str(self.resize_short)).replace(
                "size x size", f"{self.size} x {self.size}"),
            "interpolation": "bilinear, align_corners=False",
            "antialias": bool(self.antialias),
            "value_range": list(self.value_range),
            "channel_order": self.channel_order,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
        }

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        return self.values(self.geometry(image))

    def geometry(self, image: np.ndarray) -> torch.Tensor:
        """Step 1 (crop and resize): (3, size, size) float32, values still in [0, 1] (where teacher inputs act)."""
        return _plain_geometry(self, _to_chw(_check_image(image)))

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """Steps 2-4 (value range, channel order, mean and std) on :meth:`geometry`'s output."""
        lo, hi = self.value_range
        if (lo, hi) != (0.0, 1.0):
            x = x * (hi - lo) + lo
        if self.channel_order == "BGR":
            x = x.flip(0)
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

# "plain" is the generic kind's name in records written before 0.x named it "generic"; both read back.
_KINDS: dict[str, type] = {"taskonomy": TaskonomyPreprocessing, "generic": PlainPreprocessing,
                           "plain": PlainPreprocessing}

#: The keys a zoo file's ``preprocessing = { ... }`` table accepts (see :func:`preprocessing_from_keys`).
PREPROCESSING_KEYS = ("base", "input_size", "resize", "resize_short", "mean", "std", "value_range", "channel_order",
                      "antialias")


def _preset_name(prep: object) -> str:
    """The preset ``prep`` equals ("imagenet", "taskonomy", ...), or "custom": provenance says what a recipe is."""
    for name in PREPROCESSINGS.names():
        if PREPROCESSINGS.get(name) == prep:
            return name
    return "custom"


def preprocessing_from_keys(keys: Mapping[str, Any]) -> PlainPreprocessing:
    """A generic recipe from plain keys (a zoo file's ``preprocessing = { ... }`` table): ``input_size``, ``resize``
    (:data:`RESIZE_RULES`), ``resize_short``, ``mean``, ``std``, ``value_range``, ``channel_order``, ``antialias``,
    each overriding ``base`` (``"plain"``, the default: 224 px, [0, 1], RGB, no mean/std; or ``"imagenet"``)."""
    if not isinstance(keys, Mapping):
        raise UserInputError(f"preprocessing must be a preset name ({', '.join(PREPROCESSINGS.names())}) or a table "
                             f"of keys ({', '.join(PREPROCESSING_KEYS)}), got {type(keys).__name__}.")
    unknown = sorted(set(keys) - set(PREPROCESSING_KEYS))
    if unknown:
        raise UserInputError(f"unknown preprocessing key(s) {', '.join(unknown)}; expected some of "
                             f"{', '.join(PREPROCESSING_KEYS)}.")
    base = keys.get("base", "plain")
    if base not in ("plain", "imagenet"):
        raise UserInputError(f"preprocessing base must be 'plain' or 'imagenet' (the Taskonomy recipes take no keys: "
                             f"write preprocessing = \"taskonomy\"), got {base!r}.")
    fields_ = {k: getattr(PREPROCESSINGS.get(base), k) for k in PlainPreprocessing.__dataclass_fields__}
    fields_["resize_short"] = None
    if "input_size" in keys:
        fields_["size"] = check_int(keys["input_size"], name="input_size", minimum=1,
                                    expected="a positive integer (the network's input side in pixels)")
    for key in ("resize", "resize_short", "mean", "std", "value_range", "channel_order", "antialias"):
        if key in keys:
            fields_[key] = keys[key]
    if base == "plain" and ("mean" in keys) != ("std" in keys):
        given, missing = ("mean", "std") if "mean" in keys else ("std", "mean")
        raise UserInputError(f"{given} needs {missing}: give both, or neither (no normalisation), got only {given}.")
    return PlainPreprocessing(**fields_)


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
    for key in ("mean", "std", "value_range"):
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
