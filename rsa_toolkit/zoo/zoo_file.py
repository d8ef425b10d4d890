"""A zoo: the teachers a run compares, from a directory of Taskonomy weights and/or a zoo file.

A zoo file (TOML, JSON or YAML) lists teachers; paths are relative to the file, whose directory is importable
while the models are built (so ``my_models.py`` beside it works)::

    [[teacher]]
    name = "small_cnn"
    model = "my_models:SmallCNN"        # "module:callable" returning a torch.nn.Module
    kwargs = { width = 16 }             # optional keyword arguments for it
    checkpoint = "small_cnn.pth"        # optional: {'state_dict': ...} or a bare state dict, weights_only loading
    layers = ["features.3", "head"]     # optional: the layers of interest; the first is the default
    preprocessing = "imagenet"          # optional: imagenet (default), plain, taskonomy, taskonomy-low-sat

    [[teacher]]
    taskonomy = "depth"                 # a Taskonomy encoder, from weights_dir / --weights-dir / $RSA_TOOLKIT_WEIGHTS
    weights_dir = "weights"             # optional

The callable runs code the user named, as any import does; checkpoints are never unpickled beyond tensors.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.zoo.teachers import Teacher, module_teacher, taskonomy_teacher

__all__ = ["load_zoo_file", "build_zoo", "ZOO_KEYS"]

ZOO_KEYS = ("name", "model", "kwargs", "checkpoint", "layers", "preprocessing", "taskonomy", "weights_dir",
            "normalize_outputs")


def build_zoo(*, weights_dir: str | os.PathLike[str] | None = None, zoo_file: str | os.PathLike[str] | None = None,
              tasks: Sequence[str] | None = None, normalize_outputs: bool = False) -> list[Teacher]:
    """The teachers of a run: Taskonomy encoders for ``tasks`` (default: every task whose encoder file is in
    ``weights_dir``) plus the zoo file's teachers. Names must be unique."""
    from rsa_toolkit.zoo.taskonomy.weights import available_taskonomy_tasks, resolve_weights_dir

    teachers: list[Teacher] = []
    if weights_dir is not None or (zoo_file is None):
        directory = resolve_weights_dir(weights_dir)
        chosen = list(tasks) if tasks else available_taskonomy_tasks(directory)
        teachers += [taskonomy_teacher(t, directory, normalize_outputs=normalize_outputs) for t in chosen]
    if zoo_file is not None:
        teachers += load_zoo_file(zoo_file, weights_dir=weights_dir)
    names = [t.name for t in teachers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(f"teacher names must be unique in a zoo; repeated: {', '.join(repeated)}.")
    if len(teachers) < 1:
        raise UserInputError("the zoo is empty: give weights_dir= with Taskonomy checkpoints or a zoo_file= file.",
                             parameter=("weights_dir", "zoo_file"))
    return teachers


def load_zoo_file(path: str | os.PathLike[str], *, weights_dir: str | os.PathLike[str] | None = None) -> list[Teacher]:
    """The teachers listed in a zoo file (see the module docstring)."""
    path = Path(path)
    entries = _read_entries(path)
    return [_teacher(entry, i, path, weights_dir) for i, entry in enumerate(entries)]


def _read_entries(path: Path) -> list[dict[str, object]]:
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


def _teacher(entry: dict[str, object], index: int, path: Path, weights_dir: str | os.PathLike[str] | None) -> Teacher:
    where = f"zoo file '{path}', teacher {index + 1}"
    unknown = sorted(set(entry) - set(ZOO_KEYS))
    if unknown:
        raise UserInputError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(ZOO_KEYS)}.")
    if "taskonomy" in entry:
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
    model = _build(str(entry["model"]), kwargs, path.parent, f"{where} ('{name}')")
    digest = None
    if "checkpoint" in entry:
        from rsa_toolkit.files import file_sha256
        from rsa_toolkit.zoo.taskonomy.weights import load_into, load_state_dict_file

        checkpoint = path.parent / str(entry["checkpoint"])
        if not checkpoint.is_file():
            raise UserInputError(f"{where} ('{name}'): checkpoint '{checkpoint}' does not exist.")
        digest = file_sha256(checkpoint)  # generic names may end in "-<digits>" that are no hash: don't verify
        load_into(model, load_state_dict_file(checkpoint), what=f"teacher '{name}' ({checkpoint.name})")
    layers = entry.get("layers")
    if layers is not None and (not isinstance(layers, list) or not all(isinstance(x, str) for x in layers)):
        raise UserInputError(f"{where} ('{name}'): layers must be a list of layer names.")
    return module_teacher(name, model, layers=layers, preprocessing=str(entry.get("preprocessing", "imagenet")),
                          weights_sha256=digest, source=f"module:{entry['model']}:{json.dumps(kwargs, sort_keys=True)}")


def _build(target: str, kwargs: dict[str, object], directory: Path, where: str) -> object:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UserInputError(f"{where}: model must be 'module:callable', got '{target}'.")
    with _importable(directory):
        try:
            obj = importlib.import_module(module_name)
        except ImportError as exc:
            raise UserInputError(f"{where}: cannot import '{module_name}': {exc}.") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserInputError(f"{where}: '{module_name}' has no attribute '{attr}'.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserInputError(f"{where}: '{target}' is not callable.")
    try:
        return obj(**kwargs)
    except TypeError as exc:
        raise UserInputError(f"{where}: calling '{target}' with kwargs {kwargs} failed: {exc}.") from None


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
