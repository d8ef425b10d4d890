"""What a teacher sees of each probe image: the input kind it was trained on (its own), or the clean image.

Three Taskonomy tasks do not take the plain RGB image. Colorization sees a grey image, denoising a noisy one and
inpainting one with a hole. The mini-Taskonomy teachers were trained on exactly these inputs
(:func:`rsa_toolkit.zoo.mini.objectives.make_inputs`), and the CVPR'19 RSA release (Dwivedi & Roig) fed Taskonomy's
colorization encoder its grey input. For these teachers a clean image is off their training distribution. So by
default (``teacher_inputs="own"``) each teacher sees its own input kind on the probe set. ``teacher_inputs="clean"``
gives every teacher the clean image, which was the only behaviour before this option existed.

=============  ==========  ==========================================================================================
task           input kind  what the teacher sees (``x``: the image in [0, 1] at the teacher's S x S input)
=============  ==========  ==========================================================================================
colorization   ``grey``    luma 0.299 R + 0.587 G + 0.114 B, repeated on 3 channels (``scenes.to_gray``)
denoising      ``noisy``   ``clip(x + N(0, 0.1^2), 0, 1)``, i.i.d. per pixel and channel (``scenes.add_noise``)
inpainting     ``masked``  ``x * (1 - hole)``, one axis-aligned rectangle with sides in [S/4, S/2]
                           (``scenes.inpainting_mask``)
all others     ``clean``   ``x``
=============  ==========  ==========================================================================================

Where the transform acts: after the preprocessing's geometry (crop and resize to S x S, values still in [0, 1]) and
before its value steps (Taskonomy's low-saturation clip and [-1, 1] scaling; a generic recipe's value range, channel
order, mean and std). So it acts at the resolution the teacher takes, as in the mini zoo's training (64 x 64 frames,
transform, then [-1, 1]); a Taskonomy teacher gets it at 256 x 256.

Determinism: the noise and the hole come from :func:`image_seed`, a hash of the image's id. The same image (same id)
always gets the same noise and the same hole, whatever its place in the probe set, the batch size or the number of
ranks.

The kinds are a registry (:data:`INPUT_KINDS`); :data:`TASK_INPUT_KINDS` says which task sees which kind. A
teacher's task is :attr:`rsa_toolkit.zoo.teachers.Teacher.task`: set for the Taskonomy and mini teachers, and for a
zoo-file teacher with a ``task`` key. A teacher without a task sees the clean image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rsa_toolkit.errors import UserInputError, unknown_name
from rsa_toolkit.registry import Registry
from rsa_toolkit.tasks import try_resolve_task

__all__ = ["InputKind", "INPUT_KINDS", "TASK_INPUT_KINDS", "TEACHER_INPUTS", "DEFAULT_TEACHER_INPUTS",
           "check_teacher_inputs", "input_kind", "image_seed", "apply_input_kind", "prepare_image"]

#: The values of the ``teacher_inputs`` option (``--teacher-inputs``): each teacher's own input kind, or clean.
TEACHER_INPUTS: tuple[str, ...] = ("own", "clean")
DEFAULT_TEACHER_INPUTS = "own"

#: The tasks whose teachers see something other than the clean image (canonical task names).
TASK_INPUT_KINDS: dict[str, str] = {"colorization": "grey", "denoising": "noisy", "inpainting": "masked"}

# Bump when a transform's output changes for the same image: the feature cache key carries describe().
_VERSION = 1
_SEED_TAG = b"rsa-toolkit teacher input v1\n"


@dataclass(frozen=True)
class InputKind:
    """One input kind: ``apply(x, seed)`` maps an image (S, S, 3) float32 in [0, 1] to what the teacher sees, same
    shape and range. ``summary`` says what it does (provenance and docs)."""

    name: str
    summary: str
    apply: Callable[[np.ndarray, int], np.ndarray]

    def describe(self) -> dict[str, Any]:
        """JSON-ready record, part of the feature cache key for every kind but clean."""
        return {"kind": self.name, "transform": self.summary, "seed": "sha256 of the image id",
                "version": _VERSION}


INPUT_KINDS: Registry[InputKind] = Registry("input kind")


def _clean(x: np.ndarray, seed: int) -> np.ndarray:
    return x


def _grey(x: np.ndarray, seed: int) -> np.ndarray:
    from rsa_toolkit.scenes.render import to_gray  # the scene package is imported only when a teacher needs it

    return np.repeat(to_gray(x), 3, axis=-1)


def _noisy(x: np.ndarray, seed: int) -> np.ndarray:
    from rsa_toolkit.scenes.render import add_noise

    return add_noise(x, seed=seed)


def _masked(x: np.ndarray, seed: int) -> np.ndarray:
    from rsa_toolkit.scenes.render import inpainting_mask

    if x.shape[0] != x.shape[1]:  # every recipe's geometry ends in a square
        raise UserInputError(f"the inpainting hole needs a square image, got {x.shape[0]} x {x.shape[1]}.",
                             parameter="teacher_inputs")
    return x * (1.0 - inpainting_mask(x.shape[0], seed=seed))


for _kind in (InputKind("clean", "the image as it is", _clean),
              InputKind("grey", "luma 0.299 R + 0.587 G + 0.114 B repeated on 3 channels (scenes.to_gray)", _grey),
              InputKind("noisy", "clip(x + N(0, 0.1^2), 0, 1) per pixel and channel (scenes.add_noise)", _noisy),
              InputKind("masked", "x * (1 - hole): one rectangle with sides in [S/4, S/2] (scenes.inpainting_mask)",
                        _masked)):
    INPUT_KINDS.register(_kind.name)(_kind)


def check_teacher_inputs(value: object) -> str:
    """``value`` as a ``teacher_inputs`` choice (``"own"`` or ``"clean"``); anything else is one error line."""
    if isinstance(value, str) and value in TEACHER_INPUTS:
        return value
    raise UserInputError(unknown_name(f"teacher_inputs={value!r} is not a choice", str(value), TEACHER_INPUTS,
                                      listing="Choose",
                                      shown="own (each teacher sees its own input kind: grey for colorization, "
                                            "noisy for denoising, masked for inpainting; the default) or clean "
                                            "(every teacher sees the clean image)"),
                         parameter="teacher_inputs")


def input_kind(task: str | None, teacher_inputs: str = DEFAULT_TEACHER_INPUTS) -> str:
    """The input kind a teacher of ``task`` (any name or alias; None: no task) sees under ``teacher_inputs``."""
    if check_teacher_inputs(teacher_inputs) == "clean" or task is None:
        return "clean"
    known = try_resolve_task(task)
    return TASK_INPUT_KINDS.get(known.name, "clean") if known is not None else "clean"


def image_seed(image_id: str) -> int:
    """The seed of an image's noise and hole: the first 8 bytes of the sha256 of its id, as an integer."""
    digest = hashlib.sha256(_SEED_TAG + str(image_id).encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "little")


def apply_input_kind(kind: str, image: np.ndarray, *, seed: int) -> np.ndarray:
    """``image`` (S, S, 3) float in [0, 1] as a teacher of input kind ``kind`` sees it (float32, same shape)."""
    return np.asarray(INPUT_KINDS.get(kind).apply(np.asarray(image, dtype=np.float32), seed), dtype=np.float32)


def prepare_image(prep: Any, image: np.ndarray, kind: str, *, image_id: str) -> torch.Tensor:
    """``prep(image)`` with input kind ``kind`` applied between ``prep``'s geometry and its value steps, seeded by
    ``image_id``: (3, S, S) float32, the tensor the teacher is run on."""
    if kind == "clean":
        return prep(image)
    if not (callable(getattr(prep, "geometry", None)) and callable(getattr(prep, "values", None))):
        raise UserInputError(f"teacher_inputs='own': the '{kind}' input acts between a preprocessing's geometry and "
                             f"its value steps, and {type(prep).__name__} has no geometry() and values(); use a "
                             "PlainPreprocessing or TaskonomyPreprocessing, or teacher_inputs='clean'.",
                             parameter="teacher_inputs")
    x = prep.geometry(image).permute(1, 2, 0).numpy()  # (S, S, 3) in [0, 1]
    seen = apply_input_kind(kind, x, seed=image_seed(image_id))
    return prep.values(torch.from_numpy(np.ascontiguousarray(seen)).permute(2, 0, 1))
