"""Reading a features directory: one file per teacher, named after it.

Layout (what ``rsa-toolkit matrix --features DIR`` reads):

* ``<teacher>.npy`` - one array (N, ...) per teacher: a single layer;
* ``<teacher>.npz`` - one array (N, ...) per layer, keyed by layer name (e.g. ``block4``, ``encoder_output``);
  the key ``image_ids`` is reserved for the ordered image identifiers.
* ``<layer>/<teacher>.npy`` - one subdirectory per layer (what ``rsa-toolkit features`` writes for several layers;
  memory-mappable, unlike ``.npz``);
* optional ``image_ids.txt`` beside ``.npy`` files (or at the top of a layered directory): one image identifier per
  line, in row order.

Teacher and layer names become file names downstream (``--layer all`` writes one output per layer), so an ``.npz``
member name that is not a plain name (a path separator, ``..``, NUL, control characters) is refused when read, and
every file written goes through :func:`rsa_toolkit.files.safe_child`. Every teacher must hold the same N images in the
same order. ``.npy`` files are memory-mapped, so a directory larger
than memory is read one teacher at a time. Nothing is unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

import os
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.files import check_name

__all__ = ["FeatureSet", "available_layers", "load_features_dir", "write_features_dir", "IMAGE_IDS_KEY"]

IMAGE_IDS_KEY = "image_ids"
# What numpy raises on a corrupt or truncated .npy/.npz (a bad zip, a damaged member or header): the user's file.
READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, tokenize.TokenError)


@dataclass(frozen=True)
class FeatureSet:
    names: list[str]  # teacher names (file stems), sorted
    arrays: list[np.ndarray]  # (N, ...) per teacher, for the chosen layer
    layer: str | None  # None for single-layer .npy directories
    layers: list[str]  # layers every teacher has (empty for .npy directories)
    image_ids: list[str] | None
    files: list[Path]
    details: dict[str, object] = field(default_factory=dict)  # provenance of extracted features (weights, probe set)

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self.arrays))


def feature_files(directory: str | os.PathLike[str]) -> list[Path]:
    path = _check_dir(directory)
    files = _array_files(path)
    if not files:
        raise UserInputError(f"features directory '{path}' holds no <teacher>.npy or <teacher>.npz files; "
                             "write them with numpy.save (one (N, ...) array per teacher).")
    if len({p.suffix for p in files}) > 1:
        raise UserInputError(f"features directory '{path}' mixes .npy and .npz files; use one kind.")
    return files


def available_layers(directory: str | os.PathLike[str]) -> list[str]:
    """The layer names every teacher has (``.npz`` keys in file order, or layer subdirectories sorted by name);
    empty for single-layer ``.npy`` directories."""
    layered = _layer_dirs(_check_dir(directory))
    if layered:
        return [d.name for d in layered]
    files = feature_files(directory)
    if files[0].suffix == ".npy":
        return []
    keys = []
    for path in files:
        with _open_npz(path) as archive:
            keys.append([check_name(k, what=f"features file '{path}': layer")
                         for k in archive.files if k != IMAGE_IDS_KEY])
    return [k for k in keys[0] if all(k in other for other in keys)]


def load_features_dir(directory: str | os.PathLike[str], *, layer: str | None = None) -> FeatureSet:
    """Open every teacher's features in ``directory`` (see the module docstring), for one layer.

    ``layer`` is required when ``.npz`` files hold several layers; it must be None for ``.npy`` files.
    """
    layered = _layer_dirs(_check_dir(directory))
    if layered:
        return _load_layered(Path(directory), [d.name for d in layered], layer)
    files = feature_files(directory)
    names = [p.stem for p in files]
    if files[0].suffix == ".npy":
        if layer is not None:
            raise UserInputError(f"layer '{layer}': .npy feature files hold a single layer; layers apply to .npz "
                                 "files (one array per layer).")
        arrays = [_load_npy(p) for p in files]
        ids_file = Path(directory) / "image_ids.txt"
        ids = ids_file.read_text().splitlines() if ids_file.exists() else None
        return FeatureSet(names, arrays, None, [], _check_ids(ids, arrays), files)

    common = available_layers(directory)
    if not common:
        raise UserInputError(f"features directory '{directory}': the .npz files share no layer name.")
    layer = _choose_layer(layer, common, "Layers every teacher has")
    arrays, ids = [], []
    for path in files:
        with _open_npz(path) as archive:
            arrays.append(_read_key(archive, layer, path))
            if IMAGE_IDS_KEY in archive.files:
                ids.append([str(i) for i in _read_key(archive, IMAGE_IDS_KEY, path)])
    if ids and any(i != ids[0] for i in ids):
        raise UserInputError("the teachers' image_ids differ: every teacher must see the same images in the same "
                             "order.")
    return FeatureSet(names, arrays, layer, common, _check_ids(ids[0] if ids else None, arrays), files)


def _choose_layer(layer: str | None, layers: list[str], listing: str) -> str:
    """The requested layer, or the only one; several layers and no choice, or an unknown name, is an error."""
    if layer is None:
        if len(layers) > 1:
            raise UserInputError(f"the features hold several layers ({', '.join(layers)}); choose one with "
                                 "--layer NAME, or --layer all.")
        return layers[0]
    if layer not in layers:
        raise UserInputError(f"Unknown layer '{layer}'. {listing}: {', '.join(layers)}.")
    return layer


def _load_layered(directory: Path, layers: list[str], layer: str | None) -> FeatureSet:
    layer = _choose_layer(layer, layers, f"Layers in '{directory}'")
    inner = load_features_dir(directory / layer)
    ids_file = directory / "image_ids.txt"
    ids = ids_file.read_text().splitlines() if ids_file.exists() else inner.image_ids
    return FeatureSet(inner.names, inner.arrays, layer, layers, _check_ids(ids, inner.arrays), inner.files)


def _check_dir(directory: str | os.PathLike[str]) -> Path:
    path = Path(directory)
    if not path.exists():
        raise UserInputError(f"features directory '{path}' does not exist.")
    if not path.is_dir():
        raise UserInputError(f"features path '{path}' is not a directory; expected a directory of <teacher>.npy files.")
    return path


def _array_files(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.suffix in (".npy", ".npz") and p.is_file())
    except PermissionError:
        raise UserInputError(f"features directory '{path}' is not readable.") from None


def _layer_dirs(path: Path) -> list[Path]:
    """Subdirectories holding .npy files, when the directory itself holds no arrays (a layered directory)."""
    if _array_files(path):
        return []
    try:
        subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    except PermissionError:
        raise UserInputError(f"features directory '{path}' is not readable.") from None
    return [d for d in subdirs if any(p.suffix == ".npy" for p in d.iterdir())]


def write_features_dir(features: dict[str, np.ndarray], directory: str | os.PathLike[str], *,
                       image_ids: list[str] | None = None) -> list[Path]:
    """Write one ``<teacher>.npy`` per teacher (and ``image_ids.txt``), each atomically; returns the paths."""
    from rsa_toolkit.files import atomic_path, safe_child

    path = Path(directory)
    for name in features:  # every name checked before anything is written
        check_name(name, what="teacher name")
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for name, array in features.items():
        target = safe_child(path, name, suffix=".npy", what="teacher name")
        with atomic_path(target) as tmp:
            np.save(tmp, np.asarray(array), allow_pickle=False)
        written.append(target)
    if image_ids is not None:
        target = path / "image_ids.txt"
        with atomic_path(target) as tmp:
            tmp.write_text("".join(f"{i}\n" for i in image_ids))
        written.append(target)
    return written


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except READ_ERRORS as exc:
        raise UserInputError(f"could not read features file '{path}': {_reason(exc)}.") from None


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    try:
        return np.load(path, allow_pickle=False)
    except READ_ERRORS as exc:
        raise UserInputError(f"could not read features file '{path}': {_reason(exc)}.") from None


def _read_key(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except READ_ERRORS as exc:
        raise UserInputError(f"could not read layer '{key}' of '{path}': {str(exc).rstrip('.')}.") from None


def _check_ids(ids: list[str] | None, arrays: list[np.ndarray]) -> list[str] | None:
    if ids is not None and arrays and arrays[0].ndim and len(ids) != arrays[0].shape[0]:
        raise UserInputError(f"image_ids lists {len(ids)} images but the features have N = {arrays[0].shape[0]}.")
    return ids


def _reason(exc: BaseException) -> str:
    """Why numpy could not read a file, without numpy's advice to unpickle it (that can run arbitrary code)."""
    text = str(exc).rstrip(".")
    if "pickle" in text.lower():
        return "it is not a NumPy array file (it holds pickled Python objects or other data; rsa-toolkit never unpickles)"
    return text
