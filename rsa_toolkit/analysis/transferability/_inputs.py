"""Input checks for the transferability measures, done once at each public entry point.

Target kinds:

- ``"classification"``: class labels, shape (N,), integers (or booleans); relabelled to 0..C-1.
- ``"regression"``: real targets, shape (N,) or (N, ...), flattened to (N, K).
- ``"features"``: another representation of the same N images (e.g. a target teacher's features), (N, ...) -> (N, D2).

With ``target_kind=None`` the kind is inferred: a 1-D integer or boolean array is a classification target; anything
else is a regression target when the measure accepts regression targets, and a feature target otherwise.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from rsa_toolkit.errors import UserInputError

TARGET_KINDS = ("classification", "regression", "features")

_KIND_HELP = {
    "classification": "class labels of shape (N,) with integer values",
    "regression": "real-valued targets of shape (N,) or (N, K)",
    "features": "a feature array of shape (N, D2) for the same N images",
}


@dataclass(frozen=True)
class Target:
    """A checked target: ``kind``, the float64 (N, K) array (one-hot for classification) and, for classification,
    the labels relabelled to 0..C-1 (``labels``) with ``classes`` their original values."""

    kind: str
    values: np.ndarray  # (N, K) float64; one-hot (N, C) for classification
    labels: np.ndarray | None = None  # (N,) int64 in 0..C-1
    classes: np.ndarray | None = None  # (C,) original label values


def _as_numeric(x: object, *, name: str, measure: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the caller's input
        raise UserInputError(f"{measure}: could not read {name} as an array ({exc}).") from None
    if arr.dtype == object or np.issubdtype(arr.dtype, np.complexfloating) or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise UserInputError(f"{measure}: {name} must be a real numeric array, got dtype {arr.dtype}.")
    return arr


def check_feature_matrix(features: object, *, measure: str, name: str = "features", min_n: int = 2) -> np.ndarray:
    """Features (N, ...) as a float64 (N, D) array: numeric, finite, N >= ``min_n``, D >= 1."""
    x = _as_numeric(features, name=name, measure=measure)
    if x.ndim < 2:
        raise UserInputError(
            f"{measure}: {name} must have shape (N, ...) with one row per image, got shape {x.shape}; "
            "reshape a single vector per image to (N, 1)."
        )
    n = x.shape[0]
    if n < min_n:
        raise UserInputError(f"{measure}: need at least {min_n} images, got N = {n} rows in {name}.")
    flat = np.asarray(x.reshape(n, -1), dtype=np.float64)
    if flat.shape[1] == 0:
        raise UserInputError(f"{measure}: {name} have zero values per image (shape {x.shape}).")
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise UserInputError(f"{measure}: {name} row {row} has NaN or infinite values; fix or drop that image.")
    return flat


def check_target(target: object, n: int, *, measure: str, accepts: Collection[str],
                 target_kind: str | None = None) -> Target:
    """The target for N images, checked against the kinds the measure accepts."""
    y = _as_numeric(target, name="target", measure=measure)
    if target_kind is not None and target_kind not in TARGET_KINDS:
        raise UserInputError(
            f"{measure}: target_kind must be one of {', '.join(TARGET_KINDS)} or None (infer), got {target_kind!r}."
        )
    integral = np.issubdtype(y.dtype, np.integer) or y.dtype == bool
    if target_kind is None:
        if y.ndim == 1 and integral:
            kind = "classification"
        elif "regression" in accepts or "features" not in accepts:
            kind = "regression"
        else:
            kind = "features"
    else:
        kind = target_kind
    if kind not in accepts:
        wanted = "; or ".join(f"{k} targets ({_KIND_HELP[k]})" for k in accepts)
        inferred = "" if target_kind is not None else " (inferred; pass target_kind= to choose)"
        raise UserInputError(
            f"{measure} accepts {wanted}; got a {kind} target{inferred} of shape {y.shape}, dtype {y.dtype}."
        )
    if y.ndim == 0 or y.shape[0] != n:
        raise UserInputError(
            f"{measure}: target must have one row per image, N = {n} (the rows of features), got shape {y.shape}."
        )
    if kind == "classification":
        return _check_labels(y, measure=measure)
    values = np.asarray(y.reshape(n, -1), dtype=np.float64)
    if values.shape[1] == 0:
        raise UserInputError(f"{measure}: target has zero values per image (shape {y.shape}).")
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise UserInputError(f"{measure}: target row {row} has NaN or infinite values; fix or drop that image.")
    return Target(kind=kind, values=values)


def _check_labels(y: np.ndarray, *, measure: str) -> Target:
    if y.ndim != 1:
        raise UserInputError(
            f"{measure}: class labels must have shape (N,), got shape {y.shape}; "
            "for several target columns use target_kind='regression'."
        )
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        yf = y.astype(np.float64)
        if not (np.isfinite(yf).all() and np.array_equal(yf, np.round(yf))):
            raise UserInputError(
                f"{measure}: class labels must be integers, got non-integer values of dtype {y.dtype}."
            )
        y = yf.astype(np.int64)
    classes, labels = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise UserInputError(
            f"{measure}: class labels need at least 2 distinct classes, got only {classes.tolist()}."
        )
    labels = labels.reshape(-1).astype(np.int64)
    onehot = np.zeros((len(labels), len(classes)), dtype=np.float64)
    onehot[np.arange(len(labels)), labels] = 1.0
    return Target(kind="classification", values=onehot, labels=labels, classes=classes)


def check_positive_float(value: object, *, name: str, measure: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = np.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise UserInputError(f"{measure}: {name} must be a finite number {bound}, got {value!r}.")
    return float(value)  # type: ignore[arg-type]


def check_int(value: object, *, name: str, measure: str, minimum: int = 1,
              maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise UserInputError(f"{measure}: {name} must be an integer {bound}, got {value!r}.")
    return int(value)


def check_choice(value: object, *, name: str, measure: str, choices: Collection[str]) -> str:
    if value not in choices:
        raise UserInputError(f"{measure}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}.")
    return str(value)
