"""Disk-backed arrays for probe sets whose RDMs do not fit in memory: a scratch directory, arrays written there and
mapped back, and the release of mapped pages once they have been used.

The out-of-core similarity matrix (:func:`rsa_toolkit.rsa.similarity.similarity_matrix` with ``out_of_core``) writes each
teacher's prepared vector here (Spearman: doubled ranks, int32; Pearson and cosine: the condensed RDM itself), and
its condensed RDM when the RDMs are kept, a few teachers at a time; then it streams the Gram matrix from them in
chunks. Pages of a memory-mapped file count in the process's resident set once touched, although the kernel could
drop them; :func:`release_pages` drops them explicitly, so the resident set holds what is being computed, not
everything read or written so far. The page cache keeps them, so a later read is cheap.

The scratch directory is removed when the run ends. Files still mapped (a result's ``rdms``) stay readable: on POSIX
systems an unlinked file lives until its last mapping is gone, so its disk space is held until the result is
garbage-collected (on Windows the removal fails quietly and the files stay).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rsa_toolkit.errors import UserInputError

__all__ = ["check_scratch", "scratch_directory", "disk_array", "to_disk", "read_only", "release_pages", "format_bytes", "available_memory",
           "DEFAULT_SHARE", "CHUNK_BYTES"]

# Modes whose mappings are shared with the file: dropping their pages loses nothing. A copy-on-write ("c") mapping
# would lose its private changes.
_SHARED_MODES = ("r", "r+", "w+")


def check_scratch(scratch: str | os.PathLike[str]) -> Path:
    """``scratch`` as an existing, writable directory for out-of-core files (checked whether or not a run goes out of
    core, so a wrong one is found at once)."""
    path = Path(scratch)
    if not path.exists():
        raise UserInputError(f"scratch='{scratch}': no such directory; create it or choose another (default: the "
                             "system temp directory).", parameter="scratch")
    if not path.is_dir():
        raise UserInputError(f"scratch='{scratch}' is not a directory; give a directory for the out-of-core files.",
                             parameter="scratch")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserInputError(f"scratch='{scratch}': directory is not writable; choose another.", parameter="scratch")
    return path


@contextlib.contextmanager
def scratch_directory(scratch: str | os.PathLike[str] | None, *, need: int) -> Iterator[Path]:
    """A fresh directory inside ``scratch`` (default: the system temp directory, ``$TMPDIR``), removed at exit.

    ``need`` bytes must be free there, checked before any work so a long run does not fail near its end.
    """
    parent = check_scratch(scratch) if scratch is not None else Path(tempfile.gettempdir())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserInputError(f"the system temp directory '{parent}' is not writable; give a scratch directory with "
                             f"room for about {format_bytes(need)} (scratch=DIR).", parameter="scratch")
    free = shutil.disk_usage(parent).free
    if free < need:
        raise UserInputError(f"scratch '{parent}' has {format_bytes(free)} free, but the out-of-core files need "
                             f"about {format_bytes(need)}; choose a directory on a larger disk (scratch=DIR) or "
                             f"use dtype float32.", parameter="scratch")
    folder = Path(tempfile.mkdtemp(prefix="rsa-toolkit-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def disk_array(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.memmap:
    """A new ``.npy`` file of ``shape`` mapped for writing (its pages are written as they are filled)."""
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def to_disk(values: np.ndarray, path: Path) -> np.memmap:
    """Write ``values`` to a ``.npy`` file and map it back read-only; the in-memory array can then be freed.

    Written with ordinary file writes, so nothing of it enters the resident set until it is read.
    """
    np.save(path, values, allow_pickle=False)
    return np.load(path, mmap_mode="r")


def read_only(array: np.memmap) -> np.memmap:
    """A read-only mapping of the ``.npy`` file behind ``array`` (flushed first)."""
    array.flush()
    return np.load(array.filename, mmap_mode="r")


def release_pages(x: np.ndarray) -> None:
    """Drop the pages of a memory-mapped array (or of a slice of one) from this process's resident set.

    A no-op for in-memory arrays, copy-on-write mappings and systems without ``madvise``. The data stays in the file
    and in the OS page cache; a later access maps it again.
    """
    if not (isinstance(x, np.memmap) and x.mode in _SHARED_MODES and hasattr(mmap, "MADV_DONTNEED")) or not x.size:
        return
    base = x.base
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or base.closed:
        return
    length = len(base)
    if x.flags.c_contiguous or x.flags.f_contiguous:
        start = x.__array_interface__["data"][0] - np.frombuffer(base, dtype=np.uint8).__array_interface__["data"][0]
        end = start + x.nbytes
    else:
        start, end = 0, length
    # madvise needs a page-aligned start; the partial page at the end is left for the next slice (it may still be
    # in use), except at the end of the mapping.
    low = start - start % mmap.PAGESIZE
    high = length if end >= length else end - end % mmap.PAGESIZE
    if high > low:
        base.madvise(mmap.MADV_DONTNEED, low, high - low)


def format_bytes(n: float) -> str:
    """Bytes as a short size in powers of 1024, as ``--max-memory`` reads them: 512 B, 1.5K, 7.45G."""
    units = ["B", "K", "M", "G", "T"]
    i = 0
    while abs(n) >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.0f} B" if i == 0 else f"{n:.3g}{units[i]}"


DEFAULT_SHARE = 0.75  # of the available memory, when no max_memory is given: room for the rest of the system
CHUNK_BYTES = 64 << 20  # chunks of the ranking and the moments: a generous bound on their temporaries

def available_memory() -> int | None:
    """Memory available to new allocations without swapping (Linux MemAvailable), else the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
