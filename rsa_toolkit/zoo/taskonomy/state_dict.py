"""Reading a checkpoint file's state dict (``torch.load(weights_only=True)``, never unpickling arbitrary objects)
and loading it into a Taskonomy module, with errors that say what the file is and which task it would fit."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
import torch.nn as nn

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.zoo.taskonomy.release import DECODER_CHANNELS, DECODER_HEADS, ENCODER_ONLY_TASKS

__all__ = ["load_state_dict_file", "load_into"]

_MAX_LISTED = 5
_ZIP_MAGIC = b"PK\x03\x04"



def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint file, read with ``torch.load(path, map_location="cpu", weights_only=True)``.

    Accepted content: the visualpriors format ``{'state_dict': {name: tensor}}`` (other top-level keys are
    ignored), or a bare state dict ``{name: tensor}``. The mapping is returned as stored (an ``OrderedDict`` with
    its ``_metadata`` when saved from ``module.state_dict()``).

    Errors (``UserInputError``): a file that is not a PyTorch checkpoint, truncated or corrupted; a pickle holding
    objects that ``weights_only=True`` refuses (never retried unsafely: unpickling can run arbitrary code); content
    that is not one of the two accepted forms.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"Checkpoint '{path}' does not exist or is not a file.")
    size = path.stat().st_size
    if size == 0:
        raise UserInputError(f"Checkpoint '{path}' is empty (0 bytes); the download or copy failed. Obtain it again.")
    with path.open("rb") as fh:
        head = fh.read(4)
    looks_like_zip = head == _ZIP_MAGIC  # torch.save's format (the central directory may still be cut off)
    looks_like_pickle = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")  # legacy
    if not (looks_like_zip or looks_like_pickle):
        raise UserInputError(
            f"Checkpoint '{path}' ({size:,} bytes) is not a PyTorch checkpoint: it is neither torch.save's zip "
            f"archive nor a pickle (it may be truncated, corrupted, or another kind of file). Obtain the file again.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, zip errors, ... for bad files
        raise UserInputError(_load_failure_message(path, size, exc)) from exc
    return _state_dict_from(obj, path)


# What torch's weights_only unpickler says when it refuses an object, across versions: "Unsupported global: GLOBAL
# x.Y was not an allowed global by default", "GLOBAL x.Y is blocked", "Weights only load failed", "WeightsUnpickler
# error", "Unsupported operand"/"Unsupported class".
_REFUSED = re.compile(r"Weights only load failed|WeightsUnpickler error|Unsupported global|GLOBAL \S+ (?:was not an "
                      r"allowed global|is (?:not allowed|blocked))|Unsupported (?:class|operand)", re.IGNORECASE)
_GLOBAL = re.compile(r"GLOBAL ([\w.<>]+)")


def _load_failure_message(path: Path, size: int, exc: Exception) -> str:
    text = str(exc)
    if _REFUSED.search(text):
        found = _GLOBAL.search(text)
        what = f"; it holds {found.group(1)}" if found else ""
        return (f"Checkpoint '{path}' was refused for safety: it contains Python objects beyond tensors "
                f"(weights_only=True){what}. rsa-toolkit loads tensors only, since unpickling objects can run "
                f"arbitrary code. Re-save it as tensors only, e.g. torch.save({{'state_dict': model.state_dict()}}, "
                f"path), in an environment you trust.")
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first_sentence = re.split(r"(?<=\.)\s", first_line)[0].rstrip(".")[:200]
    return (f"Checkpoint '{path}' ({size:,} bytes) cannot be read: it is truncated or corrupted "
            f"({type(exc).__name__}: {first_sentence}). Obtain the file again and compare its SHA-256 with the "
            f"one in its visualpriors name.")


def _describe(obj: object) -> str:
    if isinstance(obj, Mapping):
        keys = list(obj)[:_MAX_LISTED]
        more = ", …" if len(obj) > _MAX_LISTED else ""
        return f"a {type(obj).__name__} with keys {', '.join(repr(k) for k in keys)}{more}" if keys else "an empty dict"
    return f"a {type(obj).__name__}"


def _state_dict_from(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj:
        inner = obj["state_dict"]
        where = "its 'state_dict' entry"
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = obj
        where = "the file"
    else:
        raise UserInputError(
            f"Checkpoint '{path}' holds {_describe(obj)}; expected the visualpriors format, a dict with key "
            f"'state_dict' mapping parameter names to tensors (or a bare {{name: tensor}} state dict). Save it with "
            f"torch.save({{'state_dict': model.state_dict()}}, path).")
    if not isinstance(inner, Mapping) or not inner:
        raise UserInputError(
            f"Checkpoint '{path}': {where} is {_describe(inner)}; expected a non-empty mapping of parameter names "
            f"to tensors (model.state_dict()).")
    bad = [(k, v) for k, v in inner.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        listed = ", ".join(f"{k!r} ({type(v).__name__})" for k, v in bad[:_MAX_LISTED])
        raise UserInputError(
            f"Checkpoint '{path}': {where} has {len(bad)} entr{'y' if len(bad) == 1 else 'ies'} that are not "
            f"name → tensor pairs ({listed}{', …' if len(bad) > _MAX_LISTED else ''}); expected a state dict "
            f"mapping parameter names to tensors (model.state_dict()).")
    return inner  # type: ignore[return-value]


_KIND_NAME = {"encoder": "an encoder", "conv decoder": "a pixel-to-pixel decoder",
              "mlp decoder": "a classification-head (MLP) decoder (class_object, class_scene)"}
_KIND_TEXT = {"encoder": "an encoder checkpoint (keys conv1.weight, layer1.…, compress1.weight)",
              "conv decoder": "a decoder checkpoint (keys conv2.…, deconv8.…, decoder_output.…)",
              "mlp decoder": "a classification-head decoder checkpoint (keys fc0.weight, bn0.…, fc2.…)"}


def _kind(keys: Iterable[str]) -> str | None:
    """Which Taskonomy network a set of state-dict keys belongs to, from the top-level module names."""
    tops = {k.split(".", 1)[0] for k in keys}
    if tops & {"layer1", "layer2", "layer3", "layer4", "compress1", "compress_bn"}:
        return "encoder"
    if tops & {"decoder_output", "conv2", "deconv8", "deconv14"}:
        return "conv decoder"
    if tops & {"fc0", "fc2"}:
        return "mlp decoder"
    return None


def _tolerated_missing(key: str, state_dict: Mapping[str, torch.Tensor], module: nn.Module) -> bool:
    """A missing ``num_batches_tracked`` that BatchNorm fills in itself (no version-2 metadata for its module)."""
    if not key.endswith("num_batches_tracked"):
        return False
    prefix = key[: -len("num_batches_tracked")].rstrip(".")
    try:
        owner = module.get_submodule(prefix) if prefix else module
    except AttributeError:
        return False
    if not isinstance(owner, nn.modules.batchnorm._BatchNorm):
        return False
    metadata = getattr(state_dict, "_metadata", None)
    version = metadata.get(prefix, {}).get("version") if metadata is not None else None
    return version is None or version < 2


def _fitting_tasks(key: str, found: tuple[int, ...]) -> str | None:
    """For an output-layer shape mismatch: the tasks whose decoder has that many output channels."""
    head = {"decoder_output.0.weight": "conv", "decoder_output.0.bias": "conv",
            "fc2.weight": "mlp", "fc2.bias": "mlp"}.get(key)
    if head is None or not found:
        return None
    channels = found[0]
    tasks = [t for t, c in DECODER_CHANNELS.items()
             if c == channels and DECODER_HEADS[t] == head and t not in ENCODER_ONLY_TASKS]
    if tasks:
        return (f"its output layer has {channels} channel{'s' if channels != 1 else ''}, which fits the decoder of "
                f"{', '.join(tasks)}: it is probably another task's decoder")
    return f"its output layer has {channels} channels, which fits no Taskonomy task's decoder"


def load_into(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, what: str) -> None:
    """Load ``state_dict`` into ``module`` strictly (every key present, nothing extra, same shapes).

    Differences are checked first so the error is one clear ``UserInputError`` starting with ``what`` (e.g.
    "checkpoint '…/normal_decoder.pth' (normal decoder)"): an encoder checkpoint where a decoder is expected (or
    the other way round) is named as such; otherwise up to 5 missing keys, 5 unexpected keys and the shape
    mismatches (name, expected, found) are listed, and a decoder output layer of the wrong size names the tasks it
    would fit. Missing ``num_batches_tracked`` buffers are accepted where ``load_state_dict`` accepts them.
    """
    expected = module.state_dict()
    expected_kind, found_kind = _kind(expected), _kind(state_dict)
    if expected_kind and found_kind and expected_kind != found_kind:
        raise UserInputError(
            f"{what} looks like {_KIND_TEXT[found_kind]}, but {_KIND_NAME[expected_kind]} is expected here; check "
            f"that the file is the right task and part ({{task}}_encoder-….pth vs {{task}}_decoder-….pth).")
    missing = [k for k in expected if k not in state_dict and not _tolerated_missing(k, state_dict, module)]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [(k, tuple(expected[k].shape), tuple(state_dict[k].shape)) for k in expected
                  if k in state_dict and tuple(expected[k].shape) != tuple(state_dict[k].shape)]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing key{'s' if len(missing) != 1 else ''} ({_listed(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected key{'s' if len(unexpected) != 1 else ''} "
                            f"({_listed(unexpected)})")
        if mismatched:
            shown = "; ".join(f"{k}: expected {e}, found {f}" for k, e, f in mismatched[:_MAX_LISTED])
            more = "; …" if len(mismatched) > _MAX_LISTED else ""
            problems.append(f"{len(mismatched)} shape mismatch{'es' if len(mismatched) != 1 else ''} ({shown}{more})")
        hints = dict.fromkeys(h for k, _, f in mismatched if (h := _fitting_tasks(k, f)))
        hint = f"; {'; '.join(hints)}" if hints else ""
        raise UserInputError(
            f"{what} does not fit the network: {', '.join(problems)}{hint}. Expected a state dict with exactly the "
            f"network's {len(expected)} keys and shapes (docs/taskonomy_architecture.md lists them).")
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # anything the checks above did not foresee
        first_line = str(exc).strip().splitlines()[0]
        raise UserInputError(f"{what} does not fit the network: {first_line}") from exc


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:_MAX_LISTED]) + (", …" if len(keys) > _MAX_LISTED else "")
