"""The feature cache's keys and entries, and how an entry proves itself.

An entry is ``<cache>/features/<key[:2]>/<key>.npy`` (float32, (N, ...), rows in probe-set order) with a sidecar
``<key>.json``: the teacher, layer, image ids, provenance, and under ``"entry"`` the array's shape, dtype, byte size
and blake2b hash. The key is the sha256 of the weights hash, the teacher's definition hash (the source of its
network's code, :attr:`rsa_toolkit.zoo.teachers.Teacher.definition`) and source, the layer, the probe set's content
hash, the preprocessing, the input kind the teacher sees (grey, noisy, masked; nothing for the clean image:
:mod:`rsa_toolkit.images.teacher_inputs`) and the cache format: everything is known without building or loading the
network, so a fully cached run builds none.

An entry that does not match its sidecar (overwritten, truncated, emptied, garbage, another number of rows) or whose
sidecar is missing or unreadable is a cache miss: :func:`check_entry` says why, the caller warns with
:class:`FeatureCacheWarning` naming the file and computes it again. Temporary files left by a killed extraction (hidden
``.<key>.*`` files) are removed the first time a process uses the cache directory, once they are older than the
run and untouched for :data:`STALE_AFTER_S` seconds (a live extraction elsewhere keeps touching its own).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from rsa_toolkit.errors import FeatureCacheWarning
from rsa_toolkit.files import STALE_AFTER_S, remove_files_untouched_since
from rsa_toolkit.images.probe import ProbeSet
from rsa_toolkit.images.teacher_inputs import DEFAULT_TEACHER_INPUTS, INPUT_KINDS
from rsa_toolkit.zoo.teachers import Teacher

__all__ = ["CACHE_ENV", "CACHE_FORMAT", "FeatureCacheWarning", "default_cache_dir", "cache_key", "cache_entry_path",
           "sidecar_path", "entry_fingerprint", "check_entry", "remove_stale_cache_temporaries", "STALE_AFTER_S"]

CACHE_ENV = "RSA_TOOLKIT_CACHE"
CACHE_FORMAT = 2  # 2: the key covers the teacher's definition; sidecars carry the entry's fingerprint
_RUN_STARTED = time.time()
_CLEANED: set[str] = set()
_VERIFIED: dict[str, tuple[object, ...]] = {}  # entry -> the stat of entry and sidecar when last verified


def default_cache_dir() -> Path:
    """``$RSA_TOOLKIT_CACHE``, else ``$XDG_CACHE_HOME/rsa-toolkit``, else ``~/.cache/rsa-toolkit``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rsa-toolkit"


def cache_key(teacher: Teacher, layer: str, probe: ProbeSet, *, teacher_inputs: str = DEFAULT_TEACHER_INPUTS) -> str:
    """The sha256 naming the entry of ``teacher`` at ``layer`` on ``probe`` when it sees its input kind under
    ``teacher_inputs`` (as :func:`rsa_toolkit.features.extract.extract_features` with the same option); never builds
    the network. A teacher that sees the clean image (every teacher under "clean", most under "own") has the same key
    under both choices, the key of the entries written before teacher inputs existed."""
    payload = {
        "format": CACHE_FORMAT, "weights": teacher.weights_sha256, "definition": teacher.definition,
        "source": teacher.source, "layer": layer, "probe": probe.content_hash,
        "preprocessing": teacher.preprocessing.describe(),
    }
    kind = teacher.input_kind(teacher_inputs)
    if kind != "clean":
        payload["input"] = INPUT_KINDS.get(kind).describe()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_entry_path(root: Path, key: str) -> Path:
    return Path(root) / "features" / key[:2] / f"{key}.npy"


def sidecar_path(entry: Path) -> Path:
    return entry.with_suffix(".json")


def entry_fingerprint(path: Path) -> dict[str, object]:
    """Shape, dtype, byte size and blake2b of the ``.npy`` file ``path`` (raises if it is not one)."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return {"shape": list(array.shape), "dtype": str(array.dtype), "bytes": path.stat().st_size,
            "blake2b": digest.hexdigest()}


def _stat(path: Path) -> tuple[object, ...]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def check_entry(entry: Path, rows: int) -> str | None:
    """Why the cache entry ``entry`` (of ``rows`` probe images) cannot be used, or None when it matches its sidecar.
    A file that did not change since it was last verified in this process is not hashed again."""
    sidecar = sidecar_path(entry)
    try:
        stamp = (*_stat(entry), *_stat(sidecar))
        if _VERIFIED.get(str(entry)) == stamp:
            return None
        expected = json.loads(sidecar.read_text()).get("entry")
        if not isinstance(expected, dict):
            return f"its sidecar '{sidecar.name}' has no fingerprint"
        size = entry.stat().st_size
        if size != expected.get("bytes"):
            return f"{size} bytes, its sidecar says {expected.get('bytes')}"
        found = entry_fingerprint(entry)
    except FileNotFoundError as exc:
        return f"'{Path(exc.filename or sidecar).name}' is missing"
    except (OSError, ValueError, EOFError, AttributeError, TypeError) as exc:  # unreadable, not .npy, bad sidecar
        return f"unreadable: {' '.join(str(exc).split())[:120]}"
    if not found["shape"] or found["shape"][0] != rows:
        return f"shape {tuple(found['shape'])}, expected {rows} rows"
    for field in ("shape", "dtype", "blake2b"):
        if found[field] != expected.get(field):
            return f"its {field} does not match its sidecar"
    _VERIFIED[str(entry)] = stamp
    return None


def remove_stale_cache_temporaries(root: Path, *, now: float | None = None) -> list[Path]:
    """Remove the temporary files of killed extractions under ``root/features`` (hidden files beside the entries)
    that are older than this run and untouched for :data:`STALE_AFTER_S`; once per process and cache directory.
    Returns what was removed."""
    directory = Path(root) / "features"
    if str(directory) in _CLEANED or not directory.is_dir():
        return []
    _CLEANED.add(str(directory))
    limit = min(_RUN_STARTED, now if now is not None else time.time()) - STALE_AFTER_S
    hidden = (path for sub in directory.iterdir() if sub.is_dir() for path in sub.iterdir()
              if path.name.startswith("."))
    return remove_files_untouched_since(hidden, limit)
