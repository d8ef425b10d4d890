"""A zoo: the teachers a run compares, from a directory of Taskonomy weights and/or a zoo file.

A zoo file (TOML, JSON or YAML) lists teachers; paths are relative to the file, whose directory is importable
while the models are built (so ``my_models.py`` beside it works)::

    [[teacher]]
    name = "small_cnn"
    model = "my_models:SmallCNN"        # "module:callable" returning a torch.nn.Module
    kwargs = { width = 16 }             # optional keyword arguments for it
    checkpoint = "small_cnn.pth"        # optional: {'state_dict': ...} or a bare state dict, weights_only loading
    layers = ["features.3", "head"]     # optional: the layers of interest; the first is the default
    preprocessing = "imagenet"          # optional: imagenet (default), plain, taskonomy, taskonomy-low-sat,
                                        # or a table of plain keys (PREPROCESSING_KEYS):
    # preprocessing = { input_size = 224, resize = "resize_short_then_center_crop", mean = [0.5, 0.5, 0.5],
    #                   std = [0.5, 0.5, 0.5], value_range = [0, 1], channel_order = "RGB" }
    task = "colorization"               # optional: the task it was trained on; colorization, denoising and
                                        # inpainting teachers then see grey, noisy, masked probe images
                                        # (teacher_inputs="own", the default; rsa_toolkit.images.teacher_inputs)

    [[teacher]]
    taskonomy = "depth"                 # a Taskonomy encoder, from weights_dir / --weights-dir / $RSA_TOOLKIT_WEIGHTS
    weights_dir = "weights"             # optional

A zoo file is code: loading it imports the modules it names and calls their callables, as running a Python script
would, so it must come from a trusted source (checkpoints, by contrast, are never unpickled beyond tensors). A
failure while importing or building (SyntaxError, ImportError, an exception in the constructor) is one
:class:`UserInputError` line naming the zoo file, the teacher and the file:line where it happened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import os
import shlex
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from rsa_toolkit.errors import UserInputError, unknown_name
from rsa_toolkit.files import file_sha256
from rsa_toolkit.images.preprocess import Preprocessing, get_preprocessing, preprocessing_from_keys
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.zoo.teachers import Teacher, list_layers, module_teacher, source_definition, taskonomy_teacher

__all__ = ["load_zoo_file", "build_zoo", "read_zoo_entries", "layers_command", "ZOO_KEYS"]

ZOO_KEYS = ("name", "model", "kwargs", "checkpoint", "layers", "preprocessing", "task", "taskonomy", "weights_dir",
            "normalize_outputs")


def build_zoo(*, weights_dir: str | os.PathLike[str] | None = None, zoo_file: str | os.PathLike[str] | None = None,
              tasks: Sequence[str] | None = None, normalize_outputs: bool = False,
              strict_layers: bool = True) -> list[Teacher]:
    """The teachers of a run: Taskonomy encoders for ``tasks`` (default: every task whose encoder file is in
    ``weights_dir``) plus the zoo file's teachers. Names must be unique. ``strict_layers=False``: a zoo-file layer
    that does not exist is left out instead of being an error (to list what does exist)."""
    from rsa_toolkit.zoo.taskonomy.weights import available_taskonomy_tasks, resolve_weights_dir

    teachers: list[Teacher] = []
    if weights_dir is not None or (zoo_file is None):
        directory = resolve_weights_dir(weights_dir)
        chosen = list(tasks) if tasks else available_taskonomy_tasks(directory)
        teachers += [taskonomy_teacher(t, directory, normalize_outputs=normalize_outputs) for t in chosen]
    if zoo_file is not None:
        teachers += load_zoo_file(zoo_file, weights_dir=weights_dir, strict_layers=strict_layers)
    names = [t.name for t in teachers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(f"teacher names must be unique in a zoo; repeated: {', '.join(repeated)}.")
    if len(teachers) < 1:
        raise UserInputError("the zoo is empty: give weights_dir= with Taskonomy checkpoints or a zoo_file= file.",
                             parameter=("weights_dir", "zoo_file"))
    return teachers


def load_zoo_file(path: str | os.PathLike[str], *, weights_dir: str | os.PathLike[str] | None = None,
                  strict_layers: bool = True) -> list[Teacher]:
    """The teachers listed in a zoo file (see the module docstring); this runs the code the file names."""
    path = Path(path)
    entries = read_zoo_entries(path)
    return [_teacher(entry, i, path, weights_dir, strict_layers) for i, entry in enumerate(entries)]


def layers_command(teachers: Sequence[str] = (), *, zoo: str | os.PathLike[str] | None = None,
                   weights_dir: str | os.PathLike[str] | None = None) -> str:
    """The ``rsa-toolkit layers`` command that lists ``teachers``' layers in this zoo (``zoo``: a file or "mini";
    None with no ``weights_dir``: the default, mini zoo)."""
    words = ["rsa-toolkit", "layers", *teachers]
    if zoo is not None:
        words += ["--zoo", str(zoo)]
    if weights_dir is not None:
        words += ["--weights-dir", str(weights_dir)]
    return shlex.join(words)


def read_zoo_entries(path: str | os.PathLike[str]) -> list[dict[str, object]]:
    """The zoo file's teacher entries, parsed but not built (nothing is imported)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"zoo file '{path}' does not exist.")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ModuleNotFoundError:
                raise UserInputError(f"zoo file '{path}' is YAML but PyYAML is not installed; "
                                     "pip install pyyaml, or write the zoo as TOML or JSON.") from None
            data = yaml.safe_load(text)
        else:
            raise UserInputError(f"zoo file '{path}': expected a .toml, .json or .yaml file.")
    except UserInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - each parser has its own error type; all mean a malformed file
        raise UserInputError(f"zoo file '{path}' could not be parsed: {exc}") from None
    entries = data.get("teacher") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise UserInputError(f"zoo file '{path}': expected a list of teachers ([[teacher]] tables in TOML, "
                             "{\"teacher\": [...]} or a list in JSON/YAML).")
    return entries


def _teacher(entry: dict[str, object], index: int, path: Path, weights_dir: str | os.PathLike[str] | None,
             strict_layers: bool = True) -> Teacher:
    where = f"zoo file '{path}', teacher {index + 1}"
    unknown = sorted(set(entry) - set(ZOO_KEYS))
    if unknown:
        raise UserInputError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(ZOO_KEYS)}.")
    if "taskonomy" in entry:
        if "task" in entry:
            raise UserInputError(f"{where}: 'task' is for model= teachers; a Taskonomy encoder's task is its "
                                 "'taskonomy' key. Leave 'task' out.")
        directory = entry.get("weights_dir")
        directory = (path.parent / str(directory)) if directory is not None else weights_dir
        teacher = taskonomy_teacher(str(entry["taskonomy"]), directory,
                                    normalize_outputs=bool(entry.get("normalize_outputs", False)))
        if "name" in entry:
            teacher = _renamed(teacher, str(entry["name"]))
        return teacher
    for key in ("name", "model"):
        if key not in entry:
            raise UserInputError(f"{where}: missing '{key}' (or 'taskonomy' for a Taskonomy encoder).")
    name = str(entry["name"])
    kwargs = entry.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise UserInputError(f"{where} ('{name}'): kwargs must be a table of keyword arguments.")
    target, label = str(entry["model"]), f"{where} ('{name}')"
    task = _task(entry.get("task"), label)
    layers = entry.get("layers")
    if layers is not None and (not isinstance(layers, list) or not all(isinstance(x, str) for x in layers)):
        raise UserInputError(f"{label}: layers must be a list of layer names, got {layers!r}.")
    checkpoint = None
    if "checkpoint" in entry:
        checkpoint = path.parent / str(entry["checkpoint"])
        if not checkpoint.is_file():
            raise UserInputError(f"{label}: checkpoint '{checkpoint}' does not exist.")
    # With a checkpoint the weights' hash is the file's, so the network is only described here (built on the meta
    # device: its layers, no memory, no weights) and built and loaded when features are computed: a run whose
    # features are all cached loads no network. Without one, the weights come from the constructor and are hashed.
    model = _skeleton(target, kwargs, path.parent, label) if checkpoint is not None else None
    lazy = model is not None
    if model is None:
        model = _built(target, kwargs, path.parent, label, checkpoint, name)
    layers = _checked_layers(name, model, layers, path, weights_dir, label, strict_layers)
    # The cache key covers the code of the module the zoo file names (a factory function's too, not only the
    # model's classes): an edited model file with the same weights is a new set of features.
    definition = source_definition(sys.modules[target.partition(":")[0]], extra=kwargs)
    teacher = module_teacher(name, model, layers=layers or None,
                             preprocessing=_preprocessing(entry.get("preprocessing", "imagenet"), label),
                             weights_sha256=file_sha256(checkpoint) if checkpoint is not None else None,
                             source=f"module:{target}:{json.dumps(kwargs, sort_keys=True)}", definition=definition,
                             task=task)
    if lazy:
        build = functools.cache(lambda: _built(target, kwargs, path.parent, label, checkpoint, name).eval())
        teacher = dataclasses.replace(teacher, build=build)
    return teacher


def _skeleton(target: str, kwargs: dict[str, object], directory: Path, where: str) -> object | None:
    """The network built on the meta device (its structure, no weights), or None when its code cannot build there
    (it then is built for real at once)."""
    import torch

    try:
        with torch.device("meta"):
            model = _build(target, kwargs, directory, where)
    except UserInputError:
        return None
    return model if isinstance(model, torch.nn.Module) else None


def _built(target: str, kwargs: dict[str, object], directory: Path, where: str, checkpoint: Path | None,
           name: str) -> object:
    """The network, built and (with a checkpoint) loaded; weights only, never unpickled objects."""
    model = _build(target, kwargs, directory, where)
    if checkpoint is not None:
        from rsa_toolkit.zoo.taskonomy.weights import load_into, load_state_dict_file

        # generic names may end in "-<digits>" that are no hash: the file's name is not verified
        load_into(model, load_state_dict_file(checkpoint), what=f"teacher '{name}' ({checkpoint.name})")
    return model


def _checked_layers(name: str, model: object, layers: list[str] | None, path: Path,
                    weights_dir: str | os.PathLike[str] | None, where: str, strict: bool) -> list[str] | None:
    """The zoo file's layers that exist; a missing one is an error naming the command that lists them (``strict``)
    or is left out."""
    if not layers or not hasattr(model, "named_modules"):
        return layers  # not a module: module_teacher says so
    available = list_layers(model)  # type: ignore[arg-type]
    bad = [layer for layer in layers if layer not in available]
    if bad and strict:
        shown = ", ".join(available[:40]) + (" ..." if len(available) > 40 else "")
        command = layers_command([name], zoo=path, weights_dir=weights_dir)
        raise UserInputError(unknown_name(f"{where}: Unknown layer '{bad[0]}' for teacher '{name}'", bad[0], available,
                                          shown=f"{shown} (list them with: {command})"))
    return [layer for layer in layers if layer in available]


def _task(value: object, where: str) -> str | None:
    """A zoo file's ``task`` key as a canonical task name (None when absent)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise UserInputError(f"{where}: task must be a task name (e.g. \"colorization\"), got {value!r}.")
    try:
        return resolve_task(value)
    except UserInputError as exc:
        raise UserInputError(f"{where}: task: {exc}") from None


def _preprocessing(value: object, where: str) -> Preprocessing:
    try:
        if isinstance(value, str):
            return get_preprocessing(value)
        return preprocessing_from_keys(value)  # type: ignore[arg-type]
    except UserInputError as exc:
        raise UserInputError(f"{where}: preprocessing: {exc}") from None


def _build(target: str, kwargs: dict[str, object], directory: Path, where: str) -> object:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UserInputError(f"{where}: model must be 'module:callable', got '{target}'.")
    with _importable(directory):
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name.split(".")[0] and exc.name != module_name:
                raise UserInputError(f"{where}: cannot import '{module_name}': {_one_line(exc, directory)}") from None
            raise UserInputError(f"{where}: cannot import '{module_name}': no module of that name in '{directory}' "
                                 "or on the Python path.") from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module failed to import: say where
            raise UserInputError(f"{where}: cannot import '{module_name}': {_one_line(exc, directory)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserInputError(f"{where}: '{module_name}' has no attribute '{attr}'.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserInputError(f"{where}: '{target}' is not callable.")
    try:
        with _importable(directory):
            return obj(**kwargs)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's constructor failed: say where
        raise UserInputError(f"{where}: calling '{target}' with kwargs {kwargs} failed: "
                             f"{_one_line(exc, directory)}") from None


def _one_line(exc: BaseException, directory: Path) -> str:
    """``Type: message (file:line)`` for an exception raised in the user's code: the line of a SyntaxError, else the
    innermost frame outside rsa-toolkit and the Python/torch installation (the innermost frame if there is none)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        location = f"{_short(exc.filename, directory)}:{exc.lineno}"
        message = exc.msg
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = str(Path(__file__).resolve().parent.parent)
        user = [f for f in frames if not f.filename.startswith(("<", ours, sys.prefix, sys.base_prefix))]
        frame = (user or frames or [None])[-1]
        location = f"{_short(frame.filename, directory)}:{frame.lineno}" if frame is not None else "unknown location"
        message = str(exc)
    message = " ".join(message.split())
    return f"{type(exc).__name__}: {message} ({location})." if message else f"{type(exc).__name__} ({location})."


def _short(filename: str, directory: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(filename).resolve().relative_to(directory.resolve()))
    return filename


@contextlib.contextmanager
def _importable(directory: Path) -> Iterator[None]:
    entry = str(directory.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _renamed(teacher: Teacher, name: str) -> Teacher:
    from dataclasses import replace

    return replace(teacher, name=name)
