"""Saving a similarity matrix: PNG for papers, self-contained HTML for exploring, CSV for tables, NPZ for arrays.

All files of one result are written to temporary names first and renamed together at the end, so a failure leaves
no half-written set behind.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from rsa_toolkit.files import check_output_path, current_umask, remove_stale_temporaries, write_faults
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.similarity import SimilarityResult

__all__ = ["OUTPUT_FORMATS", "similarity_output_paths", "save_similarity", "OutputSet", "write_matrix_csv",
           "read_matrix_csv", "read_similarity_csv", "check_similarity_matrix"]

OUTPUT_FORMATS = (".png", ".html", ".csv", ".npz")


def similarity_output_paths(out: str | os.PathLike[str], *, layer: str | None = None,
                            graph: bool = False) -> dict[str, Path]:
    """The files written for ``--out``: its stem with each format's extension (plus ``.<layer>`` per layer)."""
    out = check_output_path(out)
    if out.suffix.lower() not in OUTPUT_FORMATS:
        raise UserInputError(f"out='{out}': expected a file name ending in {', '.join(OUTPUT_FORMATS)}; "
                             f"all four are written beside each other.", parameter="out")
    stem = out.with_suffix("").name + (f".{layer}" if layer else "")
    paths = {ext[1:]: out.with_name(stem + ext) for ext in OUTPUT_FORMATS}
    paths["json"] = out.with_name(stem + ".json")  # provenance, for the CSV (which has no room for it)
    if graph:
        paths |= {"graph_png": out.with_name(stem + ".graph.png"), "graph_html": out.with_name(stem + ".graph.html"),
                  "graphml": out.with_name(stem + ".graphml")}
    return paths


def save_similarity(result: SimilarityResult, out: str | os.PathLike[str], *,
                    provenance: dict[str, object] | None = None, graph: bool = False, seed: int = 0,
                    save_rdms: bool = False, stage: OutputSet | contextlib.ExitStack | None = None) -> list[Path]:
    """Write PNG, HTML, CSV, NPZ and a provenance JSON (and, with ``graph``, the task graph as PNG, HTML and GraphML);
    return the paths. The NPZ and the HTML (``layout.meta``) carry the provenance too.

    The NPZ holds the matrix, the names, ``n_images``, ``rdm_kind``, the provenance and any bootstrap arrays; the
    RDMs (T x N(N-1)/2 values, 80 MB for 20 teachers x 1,000 images) only with ``save_rdms``, which needs a result
    that kept them (``similarity_matrix(..., keep_rdms=True)``; the default in memory).

    The files appear together when this returns; with ``stage`` (an :class:`OutputSet`, or an ExitStack), only when
    the caller closes it without an error, so several results (one per layer) appear all together or not at all.
    """
    from rsa_toolkit.analysis.graph import task_graph, write_graphml
    from rsa_toolkit.viz.graph_figures import graph_figure, graph_png_figure
    from rsa_toolkit.viz.plots import save_html, save_png, similarity_heatmap, similarity_png_figure

    paths = similarity_output_paths(out, layer=result.layer, graph=graph)
    if save_rdms and result.rdms is None:
        raise UserInputError("save_rdms: the result holds no RDMs (out of core, or computed with keep_rdms=False); "
                             "compute it with keep_rdms=True to save them.")
    boot = result.bootstrap
    title = f"Task similarity ({result.comparison} of {result.method} RDMs" + (
        f", layer {result.layer})" if result.layer else ")")
    ci = dict(ci_low=boot.ci_low, ci_high=boot.ci_high) if boot else {}
    with contextlib.ExitStack() as own:
        stack = own if stage is None or isinstance(stage, OutputSet) else stage
        # Every temporary file first (a directory that takes no file fails here, before any work), then the
        # writes, each naming its final file when the disk refuses it; the renames come when the stage closes.
        files = stage if isinstance(stage, OutputSet) else stack.enter_context(OutputSet())
        tmp = {key: files.path(p) for key, p in paths.items()}
        record = _record(result, provenance or {})
        with write_faults(paths["png"]):
            save_png(similarity_png_figure(result.matrix, result.names, title=title), tmp["png"])
        heatmap = similarity_heatmap(result.matrix, result.names, title=title, **ci)
        heatmap.update_layout(meta={"provenance": record})
        with write_faults(paths["html"]):
            save_html(heatmap, tmp["html"])
        with write_faults(paths["csv"]):
            write_matrix_csv(result.matrix, result.names, tmp["csv"])
        with write_faults(paths["json"]):
            tmp["json"].write_text(json.dumps(record, indent=1, sort_keys=True))
        with write_faults(paths["npz"]):
            _write_npz(result, tmp["npz"], record, save_rdms=save_rdms)
        if graph:
            g = task_graph(result.matrix, result.names)
            with write_faults(paths["graph_png"]):
                save_png(graph_png_figure(g, seed=seed), tmp["graph_png"])
            with write_faults(paths["graph_html"]):
                save_html(graph_figure(g, seed=seed), tmp["graph_html"])
            with write_faults(paths["graphml"]):
                write_graphml(g, tmp["graphml"])
    return list(paths.values())


_NO_BACKUP = Path("")  # a replaced file whose previous content could not be kept aside (no hard links)


class OutputSet(contextlib.AbstractContextManager):
    """Files written as one set: :meth:`path` gives each a temporary file beside it (a destination that takes no
    file fails there, before any work); when the block ends without an error, every temporary file is renamed onto
    its target, and if one rename fails the targets already replaced get their previous content back (or are
    removed when they had none), so the directory holds the old set or the new one, never a mix. On an error in the
    block every temporary file is removed and the old set stays. Faults of the destination (full, over quota,
    read-only, forbidden) become one :class:`UserInputError` naming the target (:func:`rsa_toolkit.files.write_faults`).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []  # (temporary file, target)

    def path(self, target: str | os.PathLike[str]) -> Path:
        """A new temporary file for ``target`` (same directory and suffix), renamed onto it when the set commits."""
        target = Path(target)
        directory = target.parent if str(target.parent) else Path(".")
        with write_faults(target):
            remove_stale_temporaries(target)  # what killed runs left for this output
            fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=directory)
        os.close(fd)
        self._pending.append((Path(name), target))
        return Path(name)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            for tmp, _ in self._pending:
                tmp.unlink(missing_ok=True)
            self._pending.clear()

    def _commit(self) -> None:
        mode = 0o666 & ~current_umask()  # mkstemp makes 0600 files; outputs get the usual permissions
        done: list[tuple[Path, Path | None]] = []  # (target, backup of its previous content or None)
        try:
            for tmp, target in self._pending:
                with write_faults(target):
                    os.chmod(tmp, mode)
                    backup = None
                    if target.exists():
                        backup = target.with_name(f".{target.name}.previous")
                        backup.unlink(missing_ok=True)
                        try:
                            os.link(target, backup)
                        except OSError as exc:  # no hard links here: the previous file cannot be kept aside
                            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                                raise
                            backup = _NO_BACKUP
                    try:
                        os.replace(tmp, target)
                    except BaseException:
                        if backup is not None and backup is not _NO_BACKUP:
                            backup.unlink(missing_ok=True)
                        raise
                    done.append((target, backup))
        except BaseException:
            for target, backup in reversed(done):  # put the previous set back
                if backup is None:
                    target.unlink(missing_ok=True)
                elif backup is not _NO_BACKUP:
                    os.replace(backup, target)
            raise
        for _, backup in done:
            if backup is not None and backup is not _NO_BACKUP:
                backup.unlink(missing_ok=True)


def write_matrix_csv(matrix: np.ndarray, names: list[str], path: str | os.PathLike[str]) -> None:
    """T x T CSV whose first row and first column are the names; values with full float precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *names])
    for name, row in zip(names, np.asarray(matrix, dtype=np.float64)):
        writer.writerow([name, *(repr(float(v)) for v in row)])
    Path(path).write_text(buffer.getvalue())


def read_matrix_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str]]:
    """Read a CSV written by :func:`write_matrix_csv` (or any square table with names on both axes). A
    task-similarity matrix is checked further by :func:`read_similarity_csv`."""
    path = Path(path)
    try:
        rows = [r for r in csv.reader(path.read_text().splitlines()) if r]  # blank lines are not rows
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"could not read matrix CSV '{path}': {str(exc).rstrip('.')}.") from None
    if len(rows) < 3:
        raise UserInputError(f"matrix CSV '{path}' needs a header row and at least two rows of values.")
    names = rows[0][1:]
    body = rows[1:]
    if [r[0] for r in body] != names or any(len(r) != len(names) + 1 for r in body):
        raise UserInputError(f"matrix CSV '{path}' must be square with the same names in the first row and the "
                             f"first column, in the same order.")
    try:
        matrix = np.array([[float(v) for v in r[1:]] for r in body])
    except ValueError as exc:
        raise UserInputError(f"matrix CSV '{path}' has a non-numeric cell ({exc}).") from None
    return matrix, names


def read_similarity_csv(path: str | os.PathLike[str], *, symmetric: bool = True) -> tuple[np.ndarray, list[str]]:
    """A task-similarity CSV (``--matrix``): :func:`read_matrix_csv`, then :func:`check_similarity_matrix`
    (``symmetric=False`` for a directional matrix, as ``evaluate`` scores S[s, t] per target)."""
    matrix, names = read_matrix_csv(path)
    check_similarity_matrix(matrix, names, what=f"matrix CSV '{path}'", symmetric=symmetric)
    return matrix, names


#: relative tolerance of the symmetry check: S and its transpose may differ by rounding, never by more
SYMMETRY_RTOL = 1e-9


def check_similarity_matrix(matrix: np.ndarray, names: list[str], *, what: str = "similarity matrix",
                            symmetric: bool = True) -> None:
    """A task-similarity matrix must be finite and (with ``symmetric``) symmetric within :data:`SYMMETRY_RTOL` of
    its largest magnitude; otherwise one :class:`UserInputError` that says what is wrong and where (row, column)."""
    bad = np.argwhere(~np.isfinite(matrix))
    if len(bad):
        i, j = bad[0]
        raise UserInputError(f"{what} has {len(bad)} non-finite cell(s) (NaN or infinite), the first at row "
                             f"'{names[i]}', column '{names[j]}' ({float(matrix[i, j])}); a similarity matrix must be "
                             f"finite: recompute it with `rsa-toolkit matrix`.")
    if not symmetric:
        return
    scale = max(1.0, float(np.abs(matrix).max(initial=0.0)))
    gap = np.abs(matrix - matrix.T)
    if (gap > SYMMETRY_RTOL * scale).any():
        i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
        raise UserInputError(f"{what} is not symmetric: row '{names[i]}', column '{names[j]}' holds "
                             f"{float(matrix[i, j])!r} but row '{names[j]}', column '{names[i]}' holds "
                             f"{float(matrix[j, i])!r} "
                             f"(tolerance {SYMMETRY_RTOL:g} relative); a task-similarity matrix is symmetric: "
                             f"recompute it with `rsa-toolkit matrix`.")


def _record(result: SimilarityResult, provenance: dict[str, object]) -> dict[str, object]:
    return {"names": result.names, "n_images": result.n_images, "method": result.method,
            "normalization": result.normalization, "comparison": result.comparison, "layer": result.layer,
            **provenance}


def _write_npz(result: SimilarityResult, path: Path, provenance: dict[str, object], *, save_rdms: bool) -> None:
    arrays: dict[str, np.ndarray] = {
        "similarity": result.matrix,
        "names": np.array(result.names),
        **({"rdms": result.rdms} if save_rdms else {}),  # only when asked for: they are most of the file
        "n_images": np.array(result.n_images),
        "rdm_kind": np.array(result.kind),
        "provenance": np.array(json.dumps(provenance, sort_keys=True)),
    }
    if result.bootstrap is not None:
        b = result.bootstrap
        arrays |= {"bootstrap_samples": b.samples, "ci_low": b.ci_low, "ci_high": b.ci_high,
                   "row_stability": b.row_stability, "confidence": np.array(b.confidence)}
    with path.open("wb") as fh:
        np.savez(fh, **arrays)  # uncompressed: RDMs of large N compress slowly and little
