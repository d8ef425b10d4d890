"""Feature extraction with an on-disk cache: every (teacher, layer, probe set, preprocessing) is computed once.

Cache entries live in ``<cache>/features/<key[:2]>/<key>.npy`` (float32, (N, ...), rows in probe-set order) with a
``<key>.json`` sidecar (teacher, layer, image ids, provenance). The key is the sha256 of the weights hash, the
teacher's source (architecture options), the layer, the probe set's content hash, the preprocessing and the cache
format, so a changed input recomputes and an unchanged one never does. Features are streamed to disk batch by batch
(the array file is written sequentially, never held in memory), and an entry appears only when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ._io import atomic_path, current_umask
from .errors import UserInputError
from .features_io import FeatureSet
from .probe import ProbeSet
from .provenance import provenance
from .zoo.teachers import Teacher

__all__ = ["CACHE_ENV", "default_cache_dir", "cache_key", "extract_features", "zoo_features", "save_features_dir",
           "resolve_device"]

_T = TypeVar("_T")

CACHE_ENV = "RSA_TOOLKIT_CACHE"
CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``$RSA_TOOLKIT_CACHE``, else ``$XDG_CACHE_HOME/rsa-toolkit``, else ``~/.cache/rsa-toolkit``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rsa-toolkit"


def cache_key(teacher: Teacher, layer: str, probe: ProbeSet) -> str:
    payload = {
        "format": CACHE_FORMAT, "weights": teacher.weights_sha256, "source": teacher.source, "layer": layer,
        "probe": probe.content_hash, "preprocessing": teacher.preprocessing.describe(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UserInputError(f"--device '{device}': {exc}; expected cpu, cuda, cuda:N or mps.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"--device '{device}': no CUDA device is available here; use --device cpu.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserInputError(f"--device '{device}': MPS is not available here; use --device cpu.")
    return dev


def extract_features(teacher: Teacher, probe: ProbeSet, *, layers: Sequence[str] | None = None,
                     batch_size: int = 32, device: str | torch.device = "cpu",
                     cache_dir: str | os.PathLike[str] | None = None, recompute: bool = False,
                     progress: bool = False) -> dict[str, np.ndarray]:
    """Features of ``teacher`` on ``probe`` for ``layers`` (default: its default layer), as read-only memory maps.

    Layers already in the cache are read, the others computed together in one pass over the probe set.
    ``recompute`` ignores (and replaces) cached entries.
    """
    wanted = teacher.check_layers(layers)
    if batch_size < 1:
        raise UserInputError(f"batch size must be at least 1, got {batch_size}.")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    paths = {layer: _entry_path(root, cache_key(teacher, layer, probe)) for layer in wanted}
    missing = [layer for layer in wanted if recompute or not paths[layer].exists()]
    if missing:
        _compute(teacher, probe, missing, {k: paths[k] for k in missing}, batch_size, resolve_device(device),
                 progress)
    return {layer: np.load(paths[layer], mmap_mode="r") for layer in wanted}


def zoo_features(teachers: Sequence[Teacher], probe: ProbeSet, *, layer: str | None = None,
                 batch_size: int = 32, device: str | torch.device = "cpu",
                 cache_dir: str | os.PathLike[str] | None = None, recompute: bool = False,
                 progress: bool = False) -> FeatureSet:
    """Every teacher's features at ``layer`` (default: each teacher's default layer) as a :class:`FeatureSet`,
    ready for :func:`rsa_toolkit.similarity_matrix`, with the provenance of each teacher's weights."""
    for teacher in teachers:  # check every layer name before the first (possibly long) extraction
        teacher.check_layers([layer] if layer else None)
    arrays, files = [], []
    for teacher in teachers:
        wanted = [layer] if layer else None
        (name, array), = extract_features(teacher, probe, layers=wanted, batch_size=batch_size, device=device,
                                          cache_dir=cache_dir, recompute=recompute, progress=progress).items()
        arrays.append(array)
        files.append(Path(array.filename))
    details = {
        "teachers": {t.name: {"weights_sha256": t.weights_sha256, "source": t.source,
                              "layer": layer or t.default_layer, "preprocessing": t.preprocessing.describe()}
                     for t in teachers},
        "probe": {"source": probe.source, "sha256": probe.content_hash, "n_images": len(probe)},
    }
    return FeatureSet([t.name for t in teachers], arrays, layer, [], list(probe.ids), files, details)


def save_features_dir(feature_sets: Sequence[FeatureSet], directory: str | os.PathLike[str]) -> Path:
    """Write a features directory (the layout :func:`rsa_toolkit.load_features_dir` reads) from extracted features.

    One set: ``<teacher>.npy``; several (one per layer): ``<layer>/<teacher>.npy``; plus ``image_ids.txt`` and
    ``provenance.json``. Built in a temporary directory and renamed into place, so it appears whole or not at all;
    ``directory`` must not exist yet (or be empty).
    """
    import shutil
    import tempfile

    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserInputError(f"--out '{target}' already exists and is not empty; choose a new directory.")
    if not target.parent.is_dir():
        raise UserInputError(f"--out '{target}': directory '{target.parent}' does not exist; create it first.")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for fs in feature_sets:
            layer_dir = staging / fs.layer if len(feature_sets) > 1 else staging
            layer_dir.mkdir(exist_ok=True)
            for name, source in zip(fs.names, fs.files):
                shutil.copyfile(source, layer_dir / f"{name}.npy")  # the cache entry is already a .npy file
        (staging / "image_ids.txt").write_text("".join(f"{i}\n" for i in feature_sets[0].image_ids or []))
        record = provenance(layers={fs.layer or "default": fs.details for fs in feature_sets})
        (staging / "provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True))
        os.chmod(staging, 0o777 & ~current_umask())
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def cached_metadata(features_path: str | os.PathLike[str]) -> dict[str, object]:
    """The sidecar record of a cache entry (teacher, layer, image ids, provenance)."""
    return json.loads(Path(features_path).with_suffix(".json").read_text())


def _entry_path(root: Path, key: str) -> Path:
    return root / "features" / key[:2] / f"{key}.npy"


def _compute(teacher: Teacher, probe: ProbeSet, layers: list[str], paths: dict[str, Path], batch_size: int,
             device: torch.device, progress: bool) -> None:
    from tqdm.auto import tqdm

    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    model = teacher.build().to(device).eval()
    n = len(probe)
    with contextlib.ExitStack() as stage:  # every layer's file appears together, or none does
        tmp = {layer: stage.enter_context(atomic_path(paths[layer])) for layer in layers}
        files = {layer: stage.enter_context(tmp[layer].open("wb")) for layer in layers}
        written = dict.fromkeys(layers, 0)
        batches = _prefetched(probe.batches(batch_size, teacher.preprocessing))
        bar = tqdm(total=n, desc=f"{teacher.name}", unit="img", disable=not progress, leave=False)
        with torch.inference_mode():
            for _, batch in batches:
                outputs = teacher.run(model, batch.to(device), layers)
                for layer, out in outputs.items():
                    rows = out.detach().to("cpu", torch.float32).contiguous().numpy()
                    if written[layer] == 0:  # the header needs the full shape, known from the first batch
                        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                  "fortran_order": False, "shape": (n, *rows.shape[1:])}
                        np.lib.format.write_array_header_1_0(files[layer], header)
                    files[layer].write(rows.tobytes())
                    written[layer] += len(rows)
                bar.update(len(batch))
        bar.close()
        for layer in layers:
            files[layer].close()
            if written[layer] != n:
                raise RuntimeError(f"{teacher.name}/{layer}: wrote {written[layer]} rows for {n} images")
            _write_sidecar(paths[layer], teacher, layer, probe)


def _prefetched(items: Iterator[_T]) -> Iterator[_T]:
    """``items`` in order, the next one produced in a background thread while the caller uses the current one, so
    image decoding and preprocessing overlap the forward pass (which releases the GIL). One item ahead at most;
    an exception is re-raised in order; closing early waits for the item in flight. ``items`` never yields None."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rsa-toolkit-prefetch") as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _write_sidecar(path: Path, teacher: Teacher, layer: str, probe: ProbeSet) -> None:
    record = {
        "teacher": teacher.name, "layer": layer, "source": teacher.source, "image_ids": list(probe.ids),
        **provenance(weights_sha256=teacher.weights_sha256, probe_sha256=probe.content_hash,
                     probe_source=probe.source, preprocessing=teacher.preprocessing.describe()),
    }
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
