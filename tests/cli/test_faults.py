"""Faults of the rsa-toolkit commands (issue 17, items 4 and 5): every OS fault met while writing an output, and every
input the issue lists, ends in one ``rsa-toolkit: error:`` line naming the file and exit code 2, with nothing
half-written: no temporary file, no partial set of outputs, nothing outside the output directory.

Write faults are injected as OSError at the writer of each output kind (tests run as root, where a chmod'ed
directory stays writable); an unwritable directory is simulated by patching ``os.access``.
"""

from __future__ import annotations

import errno
import os
import pathlib
import re
from pathlib import Path

import numpy as np
import pytest

from rsa_toolkit.cli.main import main
from rsa_toolkit.console import scrub_unsafe_advice
from rsa_toolkit.viz.outputs import write_matrix_csv

N = 12
TEACHERS = ["class_object", "curvature", "depth_zbuffer", "edge_texture", "normal"]
OUTPUT_SET = ["sim.png", "sim.html", "sim.csv", "sim.npz", "sim.json"]
GRAPH_SET = ["sim.graph.png", "sim.graph.html", "sim.graphml"]
REASONS = {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system",
           errno.EACCES: "Permission denied", errno.EDQUOT: "Disk quota exceeded"}
UNSAFE_ADVICE = re.compile(r"weights_only\W{0,3}(=|set to)\W{0,3}False|allow_pickle|pickle\.load|safe_globals|"
                           r"BytesIO|0x[0-9a-f]{6,}", re.IGNORECASE)


# --------------------------------------------------------------------------- helpers


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: object, match: str) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    line = err.rstrip("\n")
    assert line.startswith("rsa-toolkit: error: "), line
    assert re.search(match, line), (match, line)
    assert not UNSAFE_ADVICE.search(line), line  # never torch's or numpy's advice to unpickle
    return line


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_nothing_half_written(root: Path, before: dict[str, bytes]) -> None:
    """The tree under ``root`` is byte for byte what it was: no temporary file, no new or changed output."""
    after = files(root)
    assert not [name for name in after if Path(name).name.startswith(".")], after.keys()
    assert after.keys() == before.keys(), sorted(set(after) ^ set(before))
    assert all(after[k] == before[k] for k in before), [k for k in before if after[k] != before[k]]


def fault(code: int, path: object = None) -> OSError:
    return OSError(code, os.strerror(code), None if path is None else str(path))


def _features(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(N, 4, 2, 2))
    return {name: (base + (0.3 + 0.35 * i) * rng.normal(size=base.shape)).astype(np.float32)
            for i, name in enumerate(TEACHERS)}


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """tmp_path with feats/ (five small teachers), out/ (empty) and sim.csv (their similarity matrix)."""
    feats = tmp_path / "feats"
    feats.mkdir()
    for name, array in _features().items():
        np.save(feats / f"{name}.npy", array)
    (tmp_path / "out").mkdir()
    from rsa_toolkit.rsa.similarity import similarity_matrix

    result = similarity_matrix(_features())
    write_matrix_csv(result.matrix, result.names, tmp_path / "sim.csv")
    return tmp_path


def _inject(monkeypatch: pytest.MonkeyPatch, kind: str, code: int) -> None:
    """Make the writer of one output kind of `matrix` fail with ``code``, as the disk would, naming the file it
    writes (a temporary file beside the output)."""
    from rsa_toolkit.analysis import graph
    from rsa_toolkit.viz import outputs, plots

    def failing(real, graph_file: bool | None = None, index: int = 1):
        def writer(*args, **kwargs):
            path = Path(args[index])
            if graph_file is None or path.name.startswith(".sim.graph.") == graph_file:
                with open(path, "wb") as fh:  # a partial file, as a full disk leaves it
                    fh.write(b"partial")
                raise fault(code, path)
            return real(*args, **kwargs)
        return writer

    if kind in ("png", "graph_png"):
        monkeypatch.setattr(plots, "save_png", failing(plots.save_png, kind == "graph_png"))
    elif kind in ("html", "graph_html"):
        monkeypatch.setattr(plots, "save_html", failing(plots.save_html, kind == "graph_html"))
    elif kind == "csv":
        monkeypatch.setattr(outputs, "write_matrix_csv", failing(outputs.write_matrix_csv, index=2))
    elif kind == "npz":
        def npz(result, path, *args, **kwargs):
            return failing(None)(result, path)
        monkeypatch.setattr(outputs, "_write_npz", npz)
    elif kind == "graphml":
        monkeypatch.setattr(graph, "write_graphml", failing(graph.write_graphml))
    elif kind == "json":
        real_write_text = pathlib.Path.write_text

        def write_text(self: Path, *args, **kwargs):
            if self.suffix == ".json":
                real_write_text(self, "{\"partial")
                raise fault(code, self)
            return real_write_text(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    else:  # pragma: no cover
        raise AssertionError(kind)


KIND_FILE = {"png": "sim.png", "html": "sim.html", "csv": "sim.csv", "json": "sim.json", "npz": "sim.npz",
             "graph_png": "sim.graph.png", "graph_html": "sim.graph.html", "graphml": "sim.graphml"}


# --------------------------------------------------------------------------- write faults of matrix


class TestMatrixWriteFaults:
    @pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["ENOSPC", "EROFS"])
    @pytest.mark.parametrize("kind", list(KIND_FILE))
    def test_each_output_kind(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, work: Path,
                              kind: str, code: int) -> None:
        before = files(work)
        _inject(monkeypatch, kind, code)
        out = work / "out" / "sim.png"
        one_line_error(capsys, "matrix", "--features", work / "feats", "--out", out, "--graph", "-q",
                       match=rf"^rsa-toolkit: error: cannot write '{re.escape(str(work / 'out' / KIND_FILE[kind]))}'"
                             rf": {REASONS[code]}; .*choose another --out\.$")
        assert_nothing_half_written(work, before)

    @pytest.mark.parametrize("code", [errno.EACCES, errno.EDQUOT], ids=["EACCES", "EDQUOT"])
    def test_other_write_faults(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                work: Path, code: int) -> None:
        before = files(work)
        _inject(monkeypatch, "csv", code)
        one_line_error(capsys, "matrix", "--features", work / "feats", "--out", work / "out" / "sim.png", "-q",
                       match=rf"cannot write '.*sim\.csv': {REASONS[code]}")
        assert_nothing_half_written(work, before)

    def test_a_fault_keeps_the_previous_set(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                            work: Path) -> None:
        out = work / "out" / "sim.png"
        assert run(capsys, "matrix", "--features", work / "feats", "--out", out, "-q")[0] == 0
        before = files(work)
        assert sorted(before) == sorted(["sim.csv", *(f"feats/{t}.npy" for t in TEACHERS),
                                         *(f"out/{f}" for f in OUTPUT_SET)])
        _inject(monkeypatch, "npz", errno.ENOSPC)
        one_line_error(capsys, "matrix", "--features", work / "feats", "--out", out, "--seed", "3", "-q",
                       match=r"cannot write '.*sim\.npz': No space left on device; free space or choose another")
        assert_nothing_half_written(work, before)  # the old set, whole

    def test_temporary_file_refused(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                    work: Path) -> None:
        import tempfile

        real = tempfile.mkstemp

        def mkstemp(*args, **kwargs):
            if str(kwargs.get("dir", "")).endswith("out"):
                raise fault(errno.EROFS, Path(kwargs["dir"]) / "tmp")
            return real(*args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        before = files(work)
        one_line_error(capsys, "matrix", "--features", work / "feats", "--out", work / "out" / "sim.png", "-q",
                       match=r"cannot write '.*out/sim\.\w+': Read-only file system; choose another --out\.$")
        assert_nothing_half_written(work, before)

    @pytest.mark.parametrize("old_set", [False, True], ids=["fresh", "old-set"])
    def test_rename_refused_rolls_back(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       work: Path, old_set: bool) -> None:
        out = work / "out" / "sim.png"
        if old_set:
            assert run(capsys, "matrix", "--features", work / "feats", "--out", out, "-q")[0] == 0
        before = files(work)
        real = os.replace

        def replace(src, dst):
            if Path(dst).name == "sim.json":  # the last of the set: the others are renamed already
                raise fault(errno.EROFS, src)
            return real(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        one_line_error(capsys, "matrix", "--features", work / "feats", "--out", out, "--seed", "5", "-q",
                       match=r"cannot write '.*out/sim\.json': Read-only file system; choose another --out\.$")
        assert_nothing_half_written(work, before)  # no temporary file, no backup, the old set (or none) whole

    def test_layer_all_fault_in_a_later_layer_writes_no_layer(self, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch, work: Path) -> None:
        from rsa_toolkit.viz import outputs

        layered = work / "layered"
        for layer in ("l1", "l2"):
            (layered / layer).mkdir(parents=True)
            for name, array in _features(seed=len(layer) + int(layer[1])).items():
                np.save(layered / layer / f"{name}.npy", array)
        real = outputs.write_matrix_csv

        def write_csv(matrix, names, path):
            if Path(path).name.startswith(".sim.l2."):
                raise fault(errno.ENOSPC, path)
            return real(matrix, names, path)

        monkeypatch.setattr(outputs, "write_matrix_csv", write_csv)
        before = files(work)
        one_line_error(capsys, "matrix", "--features", layered, "--layer", "all", "--out", work / "out" / "sim.png",
                       "-q", match=r"cannot write '.*out/sim\.l2\.csv': No space left on device")
        assert_nothing_half_written(work, before)  # not even layer l1's files

    def test_unwritable_out_fails_before_any_work(self, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, work: Path) -> None:
        import rsa_toolkit.cli.matrix as matrix_cli

        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p).endswith("out") else
                            real_access(p, mode, **kw))
        monkeypatch.setattr(matrix_cli, "feature_sets", lambda *a, **k: pytest.fail("features read"))
        before = files(work)
        one_line_error(capsys, "matrix", "--features", work / "feats", "--out", work / "out" / "sim.png", "-q",
                       match=r"output path '.*sim\.png': directory '.*out' is not writable; choose another place\.$")
        assert_nothing_half_written(work, before)


# --------------------------------------------------------------------------- write faults of rdm and evaluate


class TestOtherCommandsWriteFaults:
    @pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["ENOSPC", "EROFS"])
    def test_rdm_npy(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, work: Path,
                     code: int) -> None:
        real = np.save

        def save(path, *args, **kwargs):
            if Path(path).name.startswith(".rdm."):
                Path(path).write_bytes(b"partial")
                raise fault(code, path)
            return real(path, *args, **kwargs)

        monkeypatch.setattr(np, "save", save)
        before = files(work)
        one_line_error(capsys, "rdm", "--features", work / "feats" / "normal.npy", "--out", work / "out" / "rdm.npy",
                       match=rf"cannot write '.*out/rdm\.npy': {REASONS[code]}")
        assert_nothing_half_written(work, before)

    def test_rdm_png(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, work: Path) -> None:
        import matplotlib.figure

        def savefig(self, path, *args, **kwargs):
            Path(path).write_bytes(b"\x89PNG partial")
            raise fault(errno.ENOSPC, path)

        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
        before = files(work)
        one_line_error(capsys, "rdm", "--features", work / "feats" / "normal.npy", "--out", work / "out" / "rdm.png",
                       match=r"cannot write '.*out/rdm\.png': No space left on device; free space or choose another")
        assert_nothing_half_written(work, before)

    @pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["ENOSPC", "EROFS"])
    def test_evaluate_html(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, work: Path,
                           code: int) -> None:
        import plotly.graph_objects as go

        def write_html(self, path, *args, **kwargs):
            Path(path).write_text("<html>partial")
            raise fault(code, path)

        monkeypatch.setattr(go.Figure, "write_html", write_html)
        before = files(work)
        one_line_error(capsys, "evaluate", "--matrix", work / "sim.csv", "--truth", "taskonomy-affinity", "--out",
                       work / "out" / "eval.html", "-q",
                       match=rf"cannot write '.*out/eval\.html': {REASONS[code]}")
        assert_nothing_half_written(work, before)

    def test_evaluate_unwritable_out_before_any_work(self, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, work: Path) -> None:
        import rsa_toolkit.cli.evaluate as evaluate_cli

        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p).endswith("out") else
                            real_access(p, mode, **kw))
        monkeypatch.setattr(evaluate_cli, "evaluate_measures", lambda *a, **k: pytest.fail("measures computed"))
        before = files(work)
        one_line_error(capsys, "evaluate", "--features", work / "feats", "--truth", "taskonomy-affinity", "--out",
                       work / "out" / "eval.html", match=r"--out path '.*eval\.html': directory '.*out' is not "
                                                         r"writable")
        assert_nothing_half_written(work, before)

    @pytest.mark.parametrize("command", ["matrix", "pick-aux"])
    def test_unwritable_cache_dir_before_extraction(self, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch, work: Path,
                                                    command: str) -> None:
        import rsa_toolkit.cli._sources as sources

        (work / "cache").mkdir()
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p).endswith("cache") else
                            real_access(p, mode, **kw))
        monkeypatch.setattr(sources, "build_teachers", lambda *a, **k: pytest.fail("zoo built"))
        extra = ["--out", work / "out" / "sim.png"] if command == "matrix" else ["--targets", "depth"]
        before = files(work)
        one_line_error(capsys, command, "--zoo", "mini", "--cache-dir", work / "cache", *extra, "-q",
                       match=r"--cache-dir '.*cache': directory '.*cache' is not writable; choose another "
                             r"--cache-dir\.$")
        assert_nothing_half_written(work, before)


# --------------------------------------------------------------------------- honest messages for bad inputs


class _Payload:
    """A Python object in a checkpoint: what torch.load(weights_only=True) refuses."""


def _probe_dir(root: Path, n: int = 3) -> Path:
    from PIL import Image

    images = root / "probe"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, size=(16, 16, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    return images


class TestHonestMessages:
    def test_checkpoint_refused_for_safety(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        torch = pytest.importorskip("torch")
        weights = work / "weights"
        weights.mkdir()
        torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": _Payload()}, weights / "normal_encoder.pth")
        images = _probe_dir(work)
        line = one_line_error(capsys, "matrix", "--weights-dir", weights, "--tasks", "normal", "--images", images,
                              "--out", work / "out" / "sim.png", "--cache-dir", work / "cache", "-q",
                              match=r"Checkpoint '.*normal_encoder\.pth' was refused for safety: it contains Python "
                                    r"objects beyond tensors \(weights_only=True\); it holds .*_Payload\.")
        assert "truncated" not in line and "weights_only=False" not in line
        assert not list((work / "out").iterdir())

    def test_truncated_checkpoint(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        torch = pytest.importorskip("torch")
        weights = work / "weights"
        weights.mkdir()
        torch.save({"state_dict": {"w": torch.zeros(64)}}, weights / "whole.pth")
        data = (weights / "whole.pth").read_bytes()
        (weights / "normal_encoder.pth").write_bytes(data[: len(data) // 2])
        (weights / "whole.pth").unlink()
        line = one_line_error(capsys, "matrix", "--weights-dir", weights, "--tasks", "normal", "--images",
                              _probe_dir(work), "--out", work / "out" / "sim.png", "--cache-dir", work / "cache",
                              "-q", match=r"Checkpoint '.*normal_encoder\.pth' \([\d,]+ bytes\) cannot be read: it "
                                          r"is truncated or corrupted")
        assert "refused for safety" not in line
        assert not list((work / "out").iterdir())

    def test_zero_byte_jpeg_in_probe_folder(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        images = _probe_dir(work)
        (images / "broken.jpg").write_bytes(b"")
        one_line_error(capsys, "matrix", "--zoo", "mini", "--images", images, "--out", work / "out" / "sim.png",
                       "--cache-dir", work / "cache", "-q",
                       match=r"Cannot read image '.*broken\.jpg': it is not a readable image: the file is empty "
                             r"\(0 bytes\)")
        assert not list((work / "out").iterdir())

    def test_text_file_named_png_in_probe_folder(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        images = _probe_dir(work)
        (images / "notes.png").write_text("not an image\n")
        one_line_error(capsys, "matrix", "--zoo", "mini", "--images", images, "--out", work / "out" / "sim.png",
                       "--cache-dir", work / "cache", "-q",
                       match=r"Cannot read image '.*notes\.png': it is not a readable image: its content is no "
                             r"image format")

    def test_text_file_named_npy_in_features_dir(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        (work / "feats" / "reshading.npy").write_text("hello\n")
        before = files(work)
        one_line_error(capsys, "matrix", "--features", work / "feats", "--out", work / "out" / "sim.png", "-q",
                       match=r"could not read features file '.*reshading\.npy': it is not a NumPy array file")
        assert_nothing_half_written(work, before)

    def test_text_file_named_npy_for_rdm(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        (work / "bad.npy").write_text("hello\n")
        before = files(work)
        one_line_error(capsys, "rdm", "--features", work / "bad.npy", "--out", work / "out" / "rdm.npy",
                       match=r"could not read '.*bad\.npy': it is not a NumPy array file")
        assert_nothing_half_written(work, before)

    @pytest.mark.parametrize("command", ["matrix", "rdm"])
    def test_device_cuda_without_gpu(self, capsys: pytest.CaptureFixture[str], work: Path, command: str) -> None:
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
        argv = (["matrix", "--features", work / "feats", "--out", work / "out" / "sim.png"] if command == "matrix"
                else ["rdm", "--features", work / "feats" / "normal.npy", "--out", work / "out" / "rdm.npy"])
        line = one_line_error(capsys, *argv, "--device", "cuda", "-q",
                              match=r"--device 'cuda': no CUDA device is available here \(CUDA is not available "
                                    r"to this PyTorch\); use --device cpu\.$")
        assert "None" not in line
        assert not list((work / "out").iterdir())

    @pytest.mark.parametrize("argv", [
        ["matrix", "--features", "{feats}", "--out", "{out}/sim.png"],
        ["pick-aux", "--matrix", "{csv}", "--targets", "depth"],
        ["evaluate", "--matrix", "{csv}", "--truth", "taskonomy-affinity"],
        ["compare", "{feats}/normal.npy", "{feats}/depth_zbuffer.npy"],
    ], ids=["matrix", "pick-aux", "evaluate", "compare"])
    def test_malformed_device(self, capsys: pytest.CaptureFixture[str], work: Path, argv: list[str]) -> None:
        pytest.importorskip("torch")
        argv = [a.format(feats=work / "feats", out=work / "out", csv=work / "sim.csv") for a in argv]
        one_line_error(capsys, *argv, "--device", "gpu7",
                       match=r"--device 'gpu7': .*expected cpu, cuda, cuda:N or mps\.$")
        assert not list((work / "out").iterdir())

    @pytest.mark.parametrize(("scratch", "match"), [
        ("/nonexistent", r"--scratch '/nonexistent': no such directory"),
        ("{root}/sim.csv", r"--scratch '.*sim\.csv' is not a directory"),
    ], ids=["missing", "file"])
    def test_scratch_checked_even_in_memory(self, capsys: pytest.CaptureFixture[str], work: Path, scratch: str,
                                            match: str) -> None:
        one_line_error(capsys, "matrix", "--features", work / "feats", "--out", work / "out" / "sim.png",
                       "--scratch", scratch.format(root=work), "-q", match=match)
        assert not list((work / "out").iterdir())

    def test_scratch_not_writable(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  work: Path) -> None:
        (work / "scratch").mkdir()
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p).endswith("scratch") else
                            real_access(p, mode, **kw))
        one_line_error(capsys, "pick-aux", "--features", work / "feats", "--targets", "depth", "--scratch",
                       work / "scratch", "-q", match=r"--scratch '.*scratch': directory is not writable")

    def test_target_typo_gets_a_suggestion(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        one_line_error(capsys, "pick-aux", "--matrix", work / "sim.csv", "--targets", "dpeth",
                       match=r"Unknown target 'dpeth': .*Did you mean 'depth'")

    def test_truth_csv_matching_nothing(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        truth = work / "truth.csv"
        truth.write_text(",alpha,beta\ngamma,1,2\ndelta,3,4\n")
        one_line_error(capsys, "evaluate", "--matrix", work / "sim.csv", "--truth", truth,
                       match=rf"the similarity matrix and ground truth '{re.escape(str(truth))}' share no task: the "
                             r"matrix has class_object, .*; the ground truth has sources gamma, delta and targets "
                             r"alpha, beta\.")

    def test_truth_csv_with_two_common_sources(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        truth = work / "truth.csv"
        truth.write_text(",normal,depth\ncurvature,1,2\nedge_texture,3,4\nomega,5,6\n")
        one_line_error(capsys, "evaluate", "--matrix", work / "sim.csv", "--truth", truth, "--json",
                       match=rf"ground truth '{re.escape(str(truth))}' shares only 2 source\(s\) \(curvature, "
                             r"edge_texture\) with the similarity matrix .*at least 3 are needed.*sources curvature, "
                             r"edge_texture, omega and targets normal, depth")

    @pytest.mark.parametrize(("edit", "match"), [
        ("asymmetric", (r"is not symmetric: row 'curvature', column 'normal' holds 0\.5 but row 'normal', column "
                       r"'curvature' holds")),
        ("nan", (r"has 1 non-finite cell\(s\) \(NaN or infinite\), the first at row 'depth_zbuffer', column "
                r"'edge_texture' \(nan\)")),
        ("inf", r"has 2 non-finite cell\(s\) .* the first at row 'class_object', column 'normal' \(inf\)"),
    ])
    @pytest.mark.parametrize("command", ["pick-aux", "evaluate"])
    def test_bad_matrix_csv(self, capsys: pytest.CaptureFixture[str], work: Path, edit: str, match: str,
                            command: str) -> None:
        from rsa_toolkit.viz.outputs import read_matrix_csv

        matrix, names = read_matrix_csv(work / "sim.csv")
        if edit == "asymmetric":
            matrix[1, 4] = 0.5
        elif edit == "nan":
            matrix[2, 3] = np.nan
        else:
            matrix[0, 4] = matrix[4, 0] = np.inf
        write_matrix_csv(matrix, names, work / "bad.csv")
        extra = ["--targets", "depth"] if command == "pick-aux" else ["--truth", "taskonomy-affinity"]
        if command == "evaluate" and edit == "asymmetric":  # evaluate scores directional matrices too
            assert run(capsys, command, "--matrix", work / "bad.csv", *extra, "--json")[0] == 0
            return
        one_line_error(capsys, command, "--matrix", work / "bad.csv", *extra,
                       match=rf"matrix CSV '.*bad\.csv' {match}")

    def test_symmetry_tolerance_is_relative(self, capsys: pytest.CaptureFixture[str], work: Path) -> None:
        from rsa_toolkit.viz.outputs import read_matrix_csv

        matrix, names = read_matrix_csv(work / "sim.csv")
        matrix[1, 4] += 1e-12  # rounding, not asymmetry
        write_matrix_csv(matrix, names, work / "round.csv")
        assert run(capsys, "pick-aux", "--matrix", work / "round.csv", "--targets", "depth", "--json")[0] == 0


class TestScrubUnsafeAdvice:
    def test_torch_advice_dropped(self) -> None:
        text = ("Checkpoint 'x.pth' cannot be read (UnpicklingError: Weights only load failed. Re-running "
                "`torch.load` with `weights_only` set to `False` will likely succeed, but it can result in arbitrary "
                "code execution. Do it only if you got the file from a trusted source.). Obtain it again.")
        assert scrub_unsafe_advice(text) == ("Checkpoint 'x.pth' cannot be read (UnpicklingError: Weights only load "
                                             "failed). Obtain it again.")

    def test_numpy_advice_rewritten(self) -> None:
        text = ("could not read 'x.npy': This file contains pickled (object) data. If you trust the file you can "
                "load it unsafely using the `allow_pickle=` keyword argument or `pickle.load()`.")
        scrubbed = scrub_unsafe_advice(text)
        assert scrubbed.startswith("could not read 'x.npy': it is not a NumPy array file")
        assert not UNSAFE_ADVICE.search(scrubbed)

    def test_our_words_stay(self) -> None:
        text = "cannot write 'out/sim.png': No space left on device; free space or choose another --out."
        assert scrub_unsafe_advice(text) == text
