"""Feature extraction with an on-disk cache: every (teacher, layer, probe set, preprocessing, input kind) is computed
once. By default each teacher sees its own input kind (``teacher_inputs="own"``: grey for colorization, noisy for
denoising, masked for inpainting, see :mod:`rsa_toolkit.images.teacher_inputs`); ``teacher_inputs="clean"`` shows
every teacher the clean images.

Cache entries live in ``<cache>/features/<key[:2]>/<key>.npy`` (float32, (N, ...), rows in probe-set order) with a
``<key>.json`` sidecar (teacher, layer, image ids, provenance, and the entry's shape, dtype, size and blake2b), see
:mod:`rsa_toolkit.features.cache`: a changed input recomputes, an unchanged one never does, and a damaged entry is a
miss (recomputed, with a :class:`~rsa_toolkit.features.cache.FeatureCacheWarning`). Features are streamed to disk
batch by batch (the array file is written sequentially, never held in memory), and an entry appears only when
complete. Several layers of one teacher are computed in one forward pass per batch (hooks on every layer), each
layer cached as its own entry.

Under ``torchrun`` (a process group of several ranks, see :mod:`rsa_toolkit.distributed`) extraction is collective:
every rank calls the same functions with the same arguments, each computes a contiguous shard of whole batches into
a part file beside the entry, and rank 0 joins the parts into the entry a single process would write, byte for byte
(:mod:`rsa_toolkit.features.shards`). The cache must then be on a file system every rank sees.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from rsa_toolkit import distributed
from rsa_toolkit.devices import resolve_device
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.progress import progress as progress_bar
from rsa_toolkit.files import atomic_path, check_name, current_umask, safe_child, write_faults
from rsa_toolkit.features.cache import (CACHE_ENV, FeatureCacheWarning, cache_entry_path, cache_key, check_entry,
                                        default_cache_dir, entry_fingerprint, remove_stale_cache_temporaries,
                                        sidecar_path)
from rsa_toolkit.features.shards import concatenate_npy, part_path, shard_rows, write_npy_header
from rsa_toolkit.features.store import FeatureSet
from rsa_toolkit.images.probe import ProbeSet
from rsa_toolkit.images.teacher_inputs import DEFAULT_TEACHER_INPUTS, INPUT_KINDS, check_teacher_inputs
from rsa_toolkit.provenance import provenance
from rsa_toolkit.zoo.teachers import Teacher
from rsa_toolkit.validation import check_int

__all__ = ["CACHE_ENV", "default_cache_dir", "cache_key", "cache_entry_path", "extract_features", "zoo_features",
           "zoo_feature_sets", "save_features_dir", "check_features_destination", "FeatureCacheWarning"]

_T = TypeVar("_T")

def extract_features(teacher: Teacher, probe: ProbeSet, *, layers: Sequence[str] | None = None,
                     batch_size: int = 32, device: str | torch.device = "cpu",
                     cache_dir: str | os.PathLike[str] | None = None, recompute: bool = False,
                     progress: bool = False, teacher_inputs: str = DEFAULT_TEACHER_INPUTS) -> dict[str, np.ndarray]:
    """Features of ``teacher`` on ``probe`` for ``layers`` (default: its default layer), as read-only memory maps.

    ``teacher_inputs``: ``"own"`` (the default) shows the teacher its own input kind (grey for colorization, noisy
    for denoising, masked for inpainting: :mod:`rsa_toolkit.images.teacher_inputs`), ``"clean"`` the clean images;
    the cache keeps the two apart.

    Layers already in the cache (and matching their sidecars) are read, the others computed together in one pass
    over the probe set: one forward per batch for all of them. A damaged entry is computed again with a
    :class:`FeatureCacheWarning`. ``recompute`` ignores (and replaces) cached entries. In a process group every rank must call this (collective:
    each computes its shard of the probe images on its own device) and every rank gets the same arrays; inside
    :func:`rsa_toolkit.distributed.main_first` it runs whole on each rank in turn.
    """
    wanted = teacher.check_layers(layers)
    check_int(batch_size, name="batch size", minimum=1, expected="at least 1")
    kind = teacher.input_kind(teacher_inputs)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    paths = {layer: cache_entry_path(root, cache_key(teacher, layer, probe, teacher_inputs=teacher_inputs))
             for layer in wanted}
    shared = distributed.in_step()  # every rank is in this call, with the same arguments
    missing: list[str] = []
    if not shared or distributed.is_main():
        remove_stale_cache_temporaries(root)
        missing = [layer for layer in wanted if recompute or _unusable(paths[layer], teacher, layer, len(probe))]
    if shared:  # rank 0's view of the cache decides, so every rank takes the same path through the collectives
        missing = distributed.broadcast_object(missing)
    if missing:
        compute = _compute_sharded if shared else _compute
        compute(teacher, probe, {k: paths[k] for k in missing}, batch_size,
                resolve_device(device, local=True), progress, kind)
    return {layer: np.load(paths[layer], mmap_mode="r") for layer in wanted}


def _unusable(entry: Path, teacher: Teacher, layer: str, rows: int) -> bool:
    """True when ``entry`` must be computed: absent, or damaged (then with a warning naming the file)."""
    if not entry.exists():  # never computed, or an extraction killed before its rename: a plain miss
        return True
    why = check_entry(entry, rows)
    if why is None:
        return False
    warnings.warn(f"feature cache entry '{entry}' (teacher '{teacher.name}', layer '{layer}') cannot be used "
                  f"({why}); computing it again.", FeatureCacheWarning, stacklevel=3)
    return True


def zoo_features(teachers: Sequence[Teacher], probe: ProbeSet, *, layer: str | None = None,
                 batch_size: int = 32, device: str | torch.device = "cpu",
                 cache_dir: str | os.PathLike[str] | None = None, recompute: bool = False,
                 progress: bool = False, teacher_inputs: str = DEFAULT_TEACHER_INPUTS) -> FeatureSet:
    """Every teacher's features at ``layer`` (default: each teacher's default layer) as a :class:`FeatureSet`,
    ready for :func:`rsa_toolkit.similarity_matrix`, with the provenance of each teacher's weights and of what it
    saw (``teacher_inputs``, as in :func:`extract_features`). Collective in a process group, like
    :func:`extract_features`."""
    return zoo_feature_sets(teachers, probe, layers=[layer], batch_size=batch_size, device=device,
                            cache_dir=cache_dir, recompute=recompute, progress=progress,
                            teacher_inputs=teacher_inputs)[0]


def zoo_feature_sets(teachers: Sequence[Teacher], probe: ProbeSet, *, layers: Sequence[str | None],
                     batch_size: int = 32, device: str | torch.device = "cpu",
                     cache_dir: str | os.PathLike[str] | None = None, recompute: bool = False,
                     progress: bool = False, teacher_inputs: str = DEFAULT_TEACHER_INPUTS) -> list[FeatureSet]:
    """One :class:`FeatureSet` per entry of ``layers`` (None: each teacher's default layer), the same as
    ``[zoo_features(..., layer=l) for l in layers]`` but each teacher runs once, one forward pass per batch for all
    its layers, every layer cached as its own entry. Collective in a process group, like :func:`extract_features`.
    The provenance (``details``) records ``teacher_inputs`` and each teacher's input kind."""
    check_teacher_inputs(teacher_inputs)
    for teacher in teachers:  # check every layer name before the first (possibly long) extraction
        teacher.check_layers([layer for layer in layers if layer])
    per_teacher = []
    for teacher in teachers:
        wanted = list(dict.fromkeys(layer or teacher.default_layer for layer in layers))
        per_teacher.append(extract_features(teacher, probe, layers=wanted, batch_size=batch_size, device=device,
                                            cache_dir=cache_dir, recompute=recompute, progress=progress,
                                            teacher_inputs=teacher_inputs))
    sets = []
    for layer in layers:
        arrays = [found[layer or t.default_layer] for t, found in zip(teachers, per_teacher)]
        details = {
            "teachers": {t.name: {"weights_sha256": t.weights_sha256, "source": t.source,
                                  "definition": t.definition, "layer": layer or t.default_layer,
                                  "preprocessing": t.preprocessing.describe(),
                                  "input": t.input_kind(teacher_inputs)} for t in teachers},
            "probe": {"source": probe.source, "sha256": probe.content_hash, "n_images": len(probe)},
            "teacher_inputs": teacher_inputs,
        }
        sets.append(FeatureSet([t.name for t in teachers], arrays, layer, [], list(probe.ids),
                               [Path(a.filename) for a in arrays], details))
    return sets


def check_features_destination(directory: str | os.PathLike[str]) -> Path:
    """``directory`` as a new features directory: it must not exist yet (or be empty) and its parent must; checked
    before any extraction, so a wrong ``--out`` fails first."""
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserInputError(f"directory='{target}' already exists and is not empty; choose a new directory.",
                             parameter="directory")
    if not target.parent.is_dir():
        raise UserInputError(f"directory='{target}': directory '{target.parent}' does not exist; create it first.",
                             parameter="directory")
    return target


def save_features_dir(feature_sets: Sequence[FeatureSet], directory: str | os.PathLike[str]) -> Path:
    """Write a features directory (the layout :func:`rsa_toolkit.load_features_dir` reads) from extracted features.

    One set: ``<teacher>.npy``; several (one per layer): ``<layer>/<teacher>.npy``; plus ``image_ids.txt`` and
    ``provenance.json``. Built in a temporary directory and renamed into place, so it appears whole or not at all;
    ``directory`` must not exist yet (or be empty).
    """
    target = check_features_destination(directory)
    if len(feature_sets) > 1:  # each becomes a subdirectory named after its layer: checked before anything is made
        for fs in feature_sets:
            if fs.layer is None:
                raise UserInputError("save_features_dir: several feature sets need a layer name each (None given); "
                                     "extract them with layers=[...] named.", parameter="feature_sets")
            check_name(fs.layer, what="layer name")
    with write_faults(target):
        _write_features_dir(feature_sets, target)
    return target


def _write_features_dir(feature_sets: Sequence[FeatureSet], target: Path) -> None:
    import shutil
    import tempfile

    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for fs in feature_sets:
            layer_dir = safe_child(staging, fs.layer, what="layer name") if len(feature_sets) > 1 else staging
            layer_dir.mkdir(exist_ok=True)
            for name, source in zip(fs.names, fs.files):  # the cache entry is already a .npy file
                shutil.copyfile(source, safe_child(layer_dir, name, suffix=".npy", what="teacher name"))
        (staging / "image_ids.txt").write_text("".join(f"{i}\n" for i in feature_sets[0].image_ids or []))
        record = provenance(layers={fs.layer or "default": fs.details for fs in feature_sets})
        (staging / "provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True))
        os.chmod(staging, 0o777 & ~current_umask())
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _compute(teacher: Teacher, probe: ProbeSet, paths: dict[str, Path], batch_size: int, device: torch.device,
             progress: bool, kind: str) -> None:
    """The entries ``paths`` (layer -> entry) in one pass over the probe set in this process, the teacher seeing
    input kind ``kind``."""
    with _staged(paths) as tmp:
        _write_rows(teacher, probe, tmp, 0, len(probe), batch_size, device, progress, kind)
        _write_sidecars(paths, tmp, teacher, probe, kind)


def _compute_sharded(teacher: Teacher, probe: ProbeSet, paths: dict[str, Path], batch_size: int,
                     device: torch.device, progress: bool, kind: str) -> None:
    """The entries ``paths`` computed by every rank of the process group: each writes the rows of its shard to part
    files (atomically), rank 0 concatenates the parts in rank order into the entries, the others wait for them.

    Part files rather than gathering the arrays through the process group: rank 0 then never holds more than one
    batch, however large N x features, and the process group (gloo or nccl) only synchronises."""
    n, ranks = len(probe), distributed.world_size()
    start, stop = shard_rows(n, batch_size)
    mine = {layer: part_path(path, distributed.rank()) for layer, path in paths.items()}
    try:
        if stop > start:
            with _staged(mine) as tmp:
                _write_rows(teacher, probe, tmp, start, stop, batch_size, device, progress and distributed.is_main(),
                            kind)
        distributed.barrier()  # every part is complete
        if distributed.is_main():
            shards = [shard_rows(n, batch_size, ranks, r) for r in range(ranks)]  # empty shards wrote no part
            parts = {layer: [part_path(path, r) for r, (a, b) in enumerate(shards) if a < b]
                     for layer, path in paths.items()}
            absent = [part for group in parts.values() for part in group if not part.exists()]
            if absent:  # every rank renamed its parts into place before the barrier: rank 0 cannot see them
                raise UserInputError(f"distributed extraction: rank 0 cannot see '{absent[0]}', written by another "
                                     "rank; the feature cache must be on a file system every node sees "
                                     "(cache_dir= on shared storage).", parameter="cache_dir")
            with _staged(paths) as tmp:
                for layer in paths:
                    concatenate_npy(parts[layer], tmp[layer])
                _write_sidecars(paths, tmp, teacher, probe, kind)
        distributed.barrier()  # the entries exist before any rank reads them
    finally:
        for part in mine.values():  # after rank 0 read it, or after a failure
            part.unlink(missing_ok=True)


@contextlib.contextmanager
def _staged(paths: dict[str, Path]) -> Iterator[dict[str, Path]]:
    """Temporary files for ``paths``, renamed into place together when the block succeeds and deleted otherwise:
    every layer's file appears, or none does."""
    where = next(iter(paths.values())).parent
    with write_faults(where, fix="choose another --cache-dir"), contextlib.ExitStack() as stage:
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        yield {layer: stage.enter_context(atomic_path(path)) for layer, path in paths.items()}


def _write_rows(teacher: Teacher, probe: ProbeSet, files: dict[str, Path], start: int, stop: int, batch_size: int,
                device: torch.device, progress: bool, kind: str) -> None:
    """Run ``teacher`` over the probe images ``start:stop``, as input kind ``kind``, and stream each layer's rows to
    a .npy file in ``files`` (layer -> path): shape (stop - start, ...), float32, written batch by batch."""
    model = teacher.build().to(device).eval()
    n = stop - start
    with contextlib.ExitStack() as stage:
        out = {layer: stage.enter_context(path.open("wb")) for layer, path in files.items()}
        written = dict.fromkeys(files, 0)
        batches = _prefetched(probe.batches(batch_size, teacher.preprocessing, start=start, stop=stop,
                                            input_kind=kind))
        bar = stage.enter_context(progress_bar(total=n, desc=f"extracting features: {teacher.name}", unit="img",
                                               enabled=progress))
        with torch.inference_mode():
            for _, batch in batches:
                for layer, tensor in teacher.run(model, batch.to(device), list(files)).items():
                    rows = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
                    if written[layer] == 0:  # the header needs the full shape, known from the first batch
                        write_npy_header(out[layer], (n, *rows.shape[1:]))
                    out[layer].write(rows.tobytes())
                    written[layer] += len(rows)
                bar.update(len(batch))
    for layer, count in written.items():
        if count != n:
            raise RuntimeError(f"{teacher.name}/{layer}: wrote {count} rows for {n} images")


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


def _write_sidecars(paths: dict[str, Path], written: dict[str, Path], teacher: Teacher, probe: ProbeSet,
                    kind: str) -> None:
    """Each entry's sidecar, with the fingerprint of the complete array file ``written[layer]`` (renamed onto
    ``paths[layer]`` after the sidecars are in place: an entry without its sidecar never looks valid)."""
    for layer, path in paths.items():
        record = {
            "teacher": teacher.name, "layer": layer, "source": teacher.source, "definition": teacher.definition,
            "image_ids": list(probe.ids), "entry": entry_fingerprint(written[layer]),
            **provenance(weights_sha256=teacher.weights_sha256, probe_sha256=probe.content_hash,
                         probe_source=probe.source, preprocessing=teacher.preprocessing.describe(),
                         input=INPUT_KINDS.get(kind).describe()),
        }
        with atomic_path(sidecar_path(path)) as tmp:
            tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
