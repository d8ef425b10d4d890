"""Feature normalisations applied before an RDM is computed (RSA paper: centring; DDS paper: all of these).

Shapes: features (N, ...) with N images. ``none``, ``center``, ``zscore`` and ``layer`` work on any shape;
``batch`` treats axis 1 as channels when there are more than two axes; ``instance`` and ``group`` need (N, C, ...)
feature maps. Following torch's ``*Norm`` layers without affine parameters, eps = 1e-5 is added to variances.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rsa_toolkit.registry import Registry
from rsa_toolkit.validation import check_int
from rsa_toolkit.errors import UserInputError

__all__ = ["NORMALIZATIONS", "normalize_features"]

EPS = 1e-5
Normalization = Callable[..., np.ndarray]
NORMALIZATIONS: Registry[Normalization] = Registry("normalization")


def normalize_features(features: np.ndarray, *, normalization: str = "center", groups: int = 2,
                       name: str = "features") -> np.ndarray:
    """Return normalised float64 features of the same shape; the input is never modified."""
    fn = NORMALIZATIONS.get(normalization)
    x = np.asarray(features, dtype=np.float64)
    if normalization in ("instance", "group") and x.ndim < 3:
        raise UserInputError(
            f"{name}: normalization '{normalization}' needs feature maps (N, C, H, W), got shape {x.shape}; "
            "use none, center, zscore, layer or batch for flat features."
        )
    if normalization == "group":
        groups = check_int(groups, name="groups", minimum=1)
    if normalization == "group" and x.shape[1] % groups != 0:
        raise UserInputError(f"{name}: group norm with {groups} groups needs C divisible by it, got C = {x.shape[1]}.")
    return fn(x, groups=groups)


def _standardise(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS)


@NORMALIZATIONS.register("none")
def _none(x: np.ndarray, **_: int) -> np.ndarray:
    return x.copy()


@NORMALIZATIONS.register("center")
def _center(x: np.ndarray, **_: int) -> np.ndarray:
    """Subtract each feature's mean over images: the RSA recipe (the released code does this before Pearson)."""
    return x - x.mean(axis=0, keepdims=True)


@NORMALIZATIONS.register("zscore")
def _zscore(x: np.ndarray, **_: int) -> np.ndarray:
    """Each feature to zero mean and unit variance over images; constant features stay at zero."""
    centred = x - x.mean(axis=0, keepdims=True)
    std = x.std(axis=0, keepdims=True)
    return centred / np.where(std > 0, std, 1.0)


@NORMALIZATIONS.register("batch")
def _batch(x: np.ndarray, **_: int) -> np.ndarray:
    """BatchNorm: per channel over images and positions ((N, D): per feature over images)."""
    axes = (0,) if x.ndim == 2 else (0, *range(2, x.ndim))
    return _standardise(x, axes)


@NORMALIZATIONS.register("layer")
def _layer(x: np.ndarray, **_: int) -> np.ndarray:
    """LayerNorm: per image over all its features."""
    return _standardise(x, tuple(range(1, x.ndim)))


@NORMALIZATIONS.register("instance")
def _instance(x: np.ndarray, **_: int) -> np.ndarray:
    """InstanceNorm: per image and channel over positions."""
    return _standardise(x, tuple(range(2, x.ndim)))


@NORMALIZATIONS.register("group")
def _group(x: np.ndarray, *, groups: int = 2, **_: int) -> np.ndarray:
    """GroupNorm: per image over each group of C/groups channels and all positions."""
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, c // groups, *x.shape[2:])
    return _standardise(grouped, tuple(range(2, grouped.ndim))).reshape(x.shape)
