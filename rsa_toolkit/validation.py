"""Input checks, done once at each public entry point; the math behind them assumes valid inputs."""

from __future__ import annotations

import numbers

import numpy as np

from rsa_toolkit.errors import UserInputError

__all__ = ["check_features", "check_dtype", "check_square_stack", "check_bool", "check_int", "check_number"]


def check_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)  # type: ignore[arg-type]
    except TypeError:
        raise UserInputError(f"dtype must be float32 or float64, got {dtype!r}.") from None
    if dt not in (np.float32, np.float64):
        raise UserInputError(f"dtype must be float32 or float64, got {dt}.")
    return dt


def check_bool(value: object, *, name: str) -> bool:
    """``value`` if it is True or False (numpy's bool too); 0, 1 and "yes" are not."""
    if not isinstance(value, (bool, np.bool_)):
        raise UserInputError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def check_int(value: object, *, name: str, minimum: int | None = None, maximum: int | None = None,
              optional: bool = False, expected: str | None = None, form: str = "must",
              parameter: str | None = None) -> int | None:
    """``value`` as an int if it is an integer (numpy's too, never a bool) in [minimum, maximum]; None passes when
    ``optional``. See :func:`check_number` for ``expected`` and ``form``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not _within(value, minimum, maximum):
        raise _bad(name, value, expected or _expected("an integer", minimum, maximum, optional), form, parameter)
    return int(value)


def check_number(value: object, *, name: str, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None, below: float | None = None, finite: bool = False, optional: bool = False,
                 expected: str | None = None, form: str = "must", parameter: str | None = None) -> float | None:
    """``value`` as a float if it is a real number (never a bool) in [minimum, maximum], > ``above`` and < ``below``,
    finite when ``finite``; None passes when ``optional``.

    The message says what was expected (``expected``, else built from the bounds) and what was received, in one of
    the two forms the library uses: ``form="must"``: "n must be an integer >= 1, got 0."; ``form="expected"``:
    "n: expected an integer >= 1, got 0."; or any other ``form``, a template with ``{name}``, ``{expected}`` and
    ``{value!r}`` ("a probe set needs at least 3 frames, got {value!r}."). ``parameter``: the :class:`UserInputError`'s, for a message the command line
    rewrites to its option.
    """
    if value is None and optional:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not _within(value, minimum, maximum)
            or (above is not None and not value > above) or (below is not None and not value < below)
            or (finite and not np.isfinite(value))):
        if expected is None:
            expected = "a finite number" if finite else "a number"
            expected = f"{expected} > {above}" if above is not None else _expected(expected, minimum, maximum, False)
            expected += " or None" if optional else ""
        raise _bad(name, value, expected, form, parameter)
    return float(value)


def _within(value: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def _expected(kind: str, minimum: float | None, maximum: float | None, optional: bool) -> str:
    if minimum is not None and maximum is not None:
        text = f"{kind} between {minimum} and {maximum}"
    elif minimum is not None:
        text = f"{kind} >= {minimum}"
    elif maximum is not None:
        text = f"{kind} <= {maximum}"
    else:
        text = kind
    return text + (" or None" if optional else "")


_FORMS = {"must": "{name} must be {expected}, got {value!r}.", "expected": "{name}: expected {expected}, got {value!r}."}


def _bad(name: str, value: object, expected: str, form: str, parameter: str | None = None) -> UserInputError:
    template = _FORMS.get(form, form)
    return UserInputError(template.format(name=name, expected=expected, value=value), parameter=parameter)


def check_features(features: object, *, name: str = "features") -> np.ndarray:
    """Features of shape (N, ...) as a float64 array, after the checks every RDM needs.

    Errors name the teacher (``name``) and the first offending image row: N < 3, zero features, non-finite values,
    and an image whose features are all equal (a constant row usually means a broken extraction, and makes the
    correlation and cosine dissimilarities undefined).
    """
    try:
        x = np.asarray(features)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the caller's input
        raise UserInputError(f"{name}: could not read the features as an array ({exc}).") from None
    if x.dtype == object or np.issubdtype(x.dtype, np.complexfloating) or not (
            np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise UserInputError(f"{name}: features must be numeric (real), got dtype {x.dtype}.")
    if x.ndim < 2:
        raise UserInputError(f"{name}: features must have shape (N, ...) with N images, got shape {x.shape}.")
    n = x.shape[0]
    if n < 3:
        raise UserInputError(f"{name}: need at least 3 images for an RDM comparison, got N = {n}.")
    flat = x.reshape(n, -1)
    if flat.shape[1] == 0:
        raise UserInputError(f"{name}: features have zero values per image (shape {x.shape}).")
    flat = np.asarray(flat, dtype=np.float64)
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise UserInputError(f"{name}: image row {row} has NaN or infinite features; fix the extraction or drop it.")
    constant = np.ptp(flat, axis=1) == 0
    if constant.any():
        row = int(np.flatnonzero(constant)[0])
        raise UserInputError(
            f"{name}: image row {row} has constant features (zero variance), so its dissimilarities are undefined; "
            "check that image and the extraction."
        )
    return flat.reshape(x.shape)


def check_square_stack(rdms: object, *, name: str = "rdms") -> np.ndarray:
    """A stack of T matrices, (T, N, N) or condensed (T, N(N-1)/2), as float64."""
    x = np.asarray(rdms, dtype=np.float64)
    if x.ndim == 3 and x.shape[1] == x.shape[2]:
        if x.shape[1] < 3:
            raise UserInputError(f"{name}: need at least 3 images, got {x.shape[1]}x{x.shape[2]} matrices.")
    elif x.ndim == 2:
        n = condensed_size_to_n(x.shape[1], name=name)
        if n < 3:
            raise UserInputError(f"{name}: need at least 3 images, got condensed vectors of length {x.shape[1]}.")
    else:
        raise UserInputError(
            f"{name}: expected a stack of square matrices (T, N, N) or condensed vectors (T, N(N-1)/2), "
            f"got shape {x.shape}."
        )
    if not np.isfinite(x).all():
        t = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise UserInputError(f"{name}: matrix {t} has NaN or infinite values.")
    return x


def condensed_size_to_n(m: int, *, name: str = "rdm") -> int:
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    if n * (n - 1) // 2 != m:
        raise UserInputError(f"{name}: a condensed RDM has length N(N-1)/2, got {m}, which is not of that form.")
    return n
