"""The memory plan of a similarity matrix: what a run needs, what it may use, and what follows from the two: in
memory or out-of-core (RDMs on disk, :mod:`rsa_toolkit.rsa.out_of_core`), and how many teachers at once.

The model counts the arrays the pipeline allocates, per teacher, with M = N(N-1)/2 upper-triangle entries, D
features per image and b bytes per entry of ``dtype``:

* RDM phase: the features three times in float64 (checked copy, centred, scaled rows) and once in ``dtype``, read
  pages of a memory-mapped feature file (4 D N), and a block of the product; kernels compared as 1 - K also hold the
  N x N kernel and the triangle indices, median and difference (about 5 x 8 M);
* comparison phase: Spearman's argsort indices (8 M) and doubled ranks (4 M); Pearson and cosine only chunks;
  CKA about six float64 N x N matrices;
* kept: the RDM (b M, or b N^2 under CKA) and the prepared vector (Spearman's ranks; CKA's float64 triangle).

In memory, every kept array stays for the whole run and each job (teacher in flight) adds its larger phase. Out of
core, only the jobs' working sets are resident (the RDM being written, then its ranks), plus the streamed Gram
chunks. The bootstrap needs every RDM and, for Spearman, every argsort in memory (8 M per teacher): it has no
out-of-core mode. Kendall's tau and CKA have none either: they compare whole RDMs at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsa_toolkit.rsa.compare import _GRAM_CHUNK, COMPARISONS
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.out_of_core import CHUNK_BYTES, DEFAULT_SHARE, available_memory, format_bytes
from rsa_toolkit.rsa.rdm import _BLOCK_ENTRIES, RDM_METHODS

__all__ = ["MemoryPlan", "plan_memory", "memory_budget", "parse_size", "available_memory"]

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
_OUT_OF_CORE_COMPARISONS = ("spearman", "pearson", "cosine")


@dataclass(frozen=True)
class MemoryPlan:
    """How a similarity matrix will run. Sizes in bytes; ``budget`` None means no limit is known."""

    out_of_core: bool
    n_jobs: int  # teachers processed at once
    keep_rdms: bool  # whether the result holds the RDMs (a read-only memory map when out of core)
    budget: int | None
    needed: int  # peak bytes of the chosen plan
    in_memory_needed: int  # peak bytes of the in-memory mode with one job
    out_of_core_needed: int  # peak bytes of the out-of-core mode with one job
    disk: int  # bytes written to the scratch directory (0 in memory)

    def describe(self) -> str:
        mode = f"out-of-core ({format_bytes(self.disk)} on disk)" if self.out_of_core else "in memory"
        limit = "no limit known" if self.budget is None else f"budget {format_bytes(self.budget)}"
        return f"{mode}, {self.n_jobs} teacher(s) at once, ~{format_bytes(self.needed)} ({limit})"


def plan_memory(n_teachers: int, n_images: int, n_features: int, *, method: str = "correlation",
                comparison: str = "spearman", dtype: type | str = np.float64, n_bootstrap: int = 0,
                n_jobs: int = 1, budget: int | None = None, out_of_core: bool | None = None,
                keep_rdms: bool | None = None) -> MemoryPlan:
    """Choose in-memory or out-of-core and the number of teachers at once (at most ``n_jobs``) so the run fits in
    ``budget`` bytes.

    ``out_of_core`` None decides (in memory when it fits); True or False forces it. ``keep_rdms`` None keeps the RDMs
    in memory mode and drops them out of core, where they would fill the disk (T x M x b bytes).
    """
    comp = COMPARISONS.get(comparison)
    square, kernel = comp.square_input, RDM_METHODS.get(method).kind == "kernel"
    b = np.dtype(dtype).itemsize
    n, t, m = n_images, n_teachers, n_images * (n_images - 1) // 2
    rdm = b * (n * n if square else m)
    if comparison == "spearman":
        prepared = (4 if 2 * m + 1 < np.iinfo(np.int32).max else 8) * m  # doubled ranks
    elif square:
        prepared = 8 * (m + n)  # CKA's float64 triangle and diagonal
    else:
        prepared = 0  # Pearson, cosine and Kendall use the RDM itself
    references_rdm = not square and comparison != "spearman"
    rdm_phase = 8 * 3 * n * n_features + (b + 4) * n * n_features + 2 * b * min(n * n, max(_BLOCK_ENTRIES, n))
    if kernel and not square:
        rdm_phase += b * n * n + 5 * 8 * m
    compare_phase = 6 * 8 * n * n if square else 8 * m * (comparison == "spearman")
    compare_phase += CHUNK_BYTES
    gram = 2 * 8 * t * _GRAM_CHUNK
    pairwise = 8 * 8 * m if comp.pairwise is not None else gram  # scipy's kendalltau on two whole RDMs

    def in_memory(jobs: int, keep: bool) -> int:
        kept = rdm if keep or n_bootstrap or references_rdm else 0
        bootstrap = (8 * m * t * (comparison == "spearman") + 6 * 8 * m) if n_bootstrap else 0
        return t * (kept + prepared) + jobs * (max(rdm_phase, compare_phase) + rdm - kept) + bootstrap + pairwise

    def on_disk(jobs: int) -> int:
        return gram + jobs * (rdm + max(rdm_phase, compare_phase + prepared))

    def fitting(need: Callable[[int], int], jobs: int) -> int:
        while jobs > 1 and budget is not None and need(jobs) > budget:
            jobs -= 1
        return jobs

    memory_fits = budget is None or in_memory(1, keep_rdms is not False) <= budget
    chosen = (not memory_fits) if out_of_core is None else out_of_core
    if chosen:
        _check_out_of_core(comparison, n_bootstrap, in_memory(1, keep_rdms is not False), budget, n)
        keep = bool(keep_rdms)
        jobs = fitting(on_disk, n_jobs)
        needed = on_disk(jobs)
        disk = t * ((rdm if keep or references_rdm else 0) + prepared)
    else:
        keep = keep_rdms is not False
        jobs = fitting(lambda j: in_memory(j, keep), n_jobs)
        needed, disk = in_memory(jobs, keep), 0
    if budget is not None and needed > budget:
        raise UserInputError(
            f"{t} teachers x {n} images need about {format_bytes(needed)} even "
            f"{'out of core' if chosen else 'in memory'} with one teacher at a time, more than the memory budget "
            f"({format_bytes(budget)}); raise max_memory (--max-memory), use dtype float32, or fewer probe images.")
    return MemoryPlan(chosen, jobs, keep, budget, needed, in_memory(1, keep_rdms is not False), on_disk(1), disk)


def _check_out_of_core(comparison: str, n_bootstrap: int, in_memory: int, budget: int | None, n: int) -> None:
    over = "" if budget is None else f" (about {format_bytes(in_memory)}, over the budget of {format_bytes(budget)})"
    if n_bootstrap:
        raise UserInputError(
            f"the bootstrap needs every RDM of the {n} images in memory{over}, and has no out-of-core mode; run "
            f"without it (n_bootstrap=0, --bootstrap 0), raise max_memory (--max-memory), or use fewer probe images.")
    if comparison not in _OUT_OF_CORE_COMPARISONS:
        raise UserInputError(
            f"comparison '{comparison}' compares whole RDMs in memory{over} and has no out-of-core mode; use "
            f"{', '.join(_OUT_OF_CORE_COMPARISONS)} for large probe sets, or raise max_memory (--max-memory).")


def memory_budget(max_memory: int | str | None) -> int | None:
    """Bytes the pipeline may allocate: ``max_memory`` (the process's peak, as a size) minus what the process
    already holds; by default 3/4 of the memory available on the machine; None when that is unknown."""
    if max_memory is None:
        available = available_memory()
        return None if available is None else int(DEFAULT_SHARE * available)
    limit = parse_size(max_memory, name="max_memory")
    held = resident_memory()
    if limit <= held:
        raise UserInputError(f"max_memory {format_bytes(limit)} is below what this process already holds "
                             f"({format_bytes(held)}); give a larger size, such as 8G.")
    return limit - held


def parse_size(value: int | str, *, name: str = "max_memory") -> int:
    """A size in bytes from an integer or a string such as "8G", "512M", "1.5GB" (K, M, G, T: powers of 1024)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        size = int(value)
    else:
        match = _SIZE.fullmatch(str(value).strip())
        size = int(float(match[1]) * _UNITS[match[2].upper()]) if match else 0
    if size < 1:
        raise UserInputError(f"{name} must be a size such as 8G, 512M or 2000000000 (bytes; K, M, G, T are powers "
                             f"of 1024), got {value!r}.", parameter=name)
    return size




def resident_memory() -> int:
    """This process's resident set (Linux VmRSS); 0 where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
