"""Saving a similarity result: the CSV round trip is exact, every format is written (and the graph files on request),
the NPZ holds what it promises, a failure half-way leaves nothing behind, and bad output paths are refused early."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from rsa_toolkit.viz import outputs
from rsa_toolkit.files import atomic_path, check_output_path
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.viz.outputs import (OUTPUT_FORMATS, read_matrix_csv, save_similarity, similarity_output_paths,
                                 write_matrix_csv)
from rsa_toolkit.rsa.similarity import SimilarityResult, similarity_matrix

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _features(n_teachers: int = 5, n_images: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_images, 10))
    return {f"t{i}": base + (0.3 + 0.3 * i) * rng.normal(size=base.shape) for i in range(n_teachers)}


@pytest.fixture(scope="module")
def result() -> SimilarityResult:
    return similarity_matrix(_features(), n_bootstrap=4, seed=0)


@pytest.fixture(scope="module")
def plain_result() -> SimilarityResult:
    return similarity_matrix(_features())


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- CSV


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(4, 4)) * np.array([1e-17, 1.0, 1e12, -3.3])
    matrix[0, 0] = 1 / 3
    matrix[1, 1] = -0.0
    names = ["depth_zbuffer", "a,comma", 'quote"d', "ünïcode"]
    write_matrix_csv(matrix, names, tmp_path / "m.csv")
    back, back_names = read_matrix_csv(tmp_path / "m.csv")
    assert back_names == names
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, matrix)  # repr floats: bit-exact
    assert back.tobytes() == matrix.tobytes()


def test_csv_layout(tmp_path: Path) -> None:
    write_matrix_csv(np.array([[1.0, 0.25], [0.25, 1.0]]), ["a", "b"], tmp_path / "m.csv")
    assert (tmp_path / "m.csv").read_text() == ",a,b\na,1.0,0.25\nb,0.25,1.0\n"


def test_csv_float32_input_written_as_float64_repr(tmp_path: Path) -> None:
    m32 = np.array([[1.0, 0.1], [0.1, 1.0]], dtype=np.float32)
    write_matrix_csv(m32, ["a", "b"], tmp_path / "m.csv")
    back, _ = read_matrix_csv(tmp_path / "m.csv")
    np.testing.assert_array_equal(back, m32.astype(np.float64))


def test_csv_blank_lines_and_crlf_are_tolerated(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_bytes(b",a,b\r\na,1.0,0.5\r\n\r\nb,0.5,1.0\r\n\r\n")
    matrix, names = read_matrix_csv(tmp_path / "m.csv")
    assert names == ["a", "b"]
    np.testing.assert_array_equal(matrix, [[1.0, 0.5], [0.5, 1.0]])


@pytest.mark.parametrize(("content", "message"), [
    (",a,b\na,1.0,0.5\nb,0.5,1.0,0.3\n", r"must be square with the same names in the first row and the first column"),
    (",a,b\na,1.0\nb,0.5,1.0\n", r"must be square"),
    (",a,b,c\na,1.0,0.5,0.1\nb,0.5,1.0,0.2\n", r"must be square"),
    (",a,b\nb,1.0,0.5\na,0.5,1.0\n", r"must be square with the same names"),
    (",a,b\na,1.0,0.5\nc,0.5,1.0\n", r"must be square with the same names"),
    (",a,b\na,1.0,high\nb,0.5,1.0\n", r"has a non-numeric cell \(could not convert string to float: 'high'\)"),
    (",a,b\na,1.0,\nb,0.5,1.0\n", r"has a non-numeric cell"),
    (",a\na,1.0\n", r"needs a header row and at least two rows of values"),
    ("", r"needs a header row"),
])
def test_read_matrix_csv_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(content)
    with pytest.raises(UserInputError, match=rf"matrix CSV '.*m\.csv' {message}"):
        read_matrix_csv(path)


def test_read_matrix_csv_missing_or_binary(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"could not read matrix CSV '.*nope\.csv'"):
        read_matrix_csv(tmp_path / "nope.csv")
    with pytest.raises(UserInputError, match=r"could not read matrix CSV"):
        read_matrix_csv(tmp_path)  # a directory
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(UserInputError, match=r"could not read matrix CSV '.*bin\.csv'"):
        read_matrix_csv(tmp_path / "bin.csv")


# --------------------------------------------------------------------------- save_similarity


def test_save_similarity_writes_every_format(tmp_path: Path, result: SimilarityResult) -> None:
    prov = {"seed": 0, "options": {"method": "correlation"}}
    written = save_similarity(result, tmp_path / "sim.png", provenance=prov, save_rdms=True)
    assert [p.name for p in written] == ["sim.png", "sim.html", "sim.csv", "sim.npz", "sim.json"]
    assert _listing(tmp_path) == ["sim.csv", "sim.html", "sim.json", "sim.npz", "sim.png"]  # no temp files left over
    assert (tmp_path / "sim.png").read_bytes()[:8] == PNG_MAGIC
    html = (tmp_path / "sim.html").read_text()
    assert html.lstrip().lower().startswith("<html") or "<html" in html[:500].lower()
    assert all(name in html for name in result.names)
    matrix, names = read_matrix_csv(tmp_path / "sim.csv")
    assert names == result.names
    np.testing.assert_array_equal(matrix, result.matrix)
    with np.load(tmp_path / "sim.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["similarity"], result.matrix)
        assert npz["names"].tolist() == result.names
        np.testing.assert_array_equal(npz["rdms"], result.rdms)
        assert int(npz["n_images"]) == 12
        assert str(npz["rdm_kind"]) == "dissimilarity"
        record = json.loads(str(npz["provenance"]))
        assert {k: record[k] for k in prov} == prov
        assert record["names"] == result.names and record["n_images"] == result.n_images
        assert json.loads((tmp_path / "sim.json").read_text()) == record
        np.testing.assert_array_equal(npz["ci_low"], result.bootstrap.ci_low)
        np.testing.assert_array_equal(npz["ci_high"], result.bootstrap.ci_high)
        np.testing.assert_array_equal(npz["bootstrap_samples"], result.bootstrap.samples)
        assert npz["row_stability"].shape == (5,)
        assert float(npz["confidence"]) == 0.95


def test_save_similarity_any_extension_writes_the_same_set(tmp_path: Path, plain_result: SimilarityResult) -> None:
    written = save_similarity(plain_result, tmp_path / "out.csv")
    assert sorted(p.name for p in written) == ["out.csv", "out.html", "out.json", "out.npz", "out.png"]
    with np.load(tmp_path / "out.npz") as npz:
        assert "ci_low" not in npz.files and "bootstrap_samples" not in npz.files
        assert sorted(npz.files) == ["n_images", "names", "provenance", "rdm_kind", "similarity"]  # no RDMs
        assert set(json.loads(str(npz["provenance"]))) == {"names", "n_images", "method", "normalization",
                                                           "comparison", "layer"}


def test_save_similarity_rdms_only_when_asked(tmp_path: Path, plain_result: SimilarityResult) -> None:
    save_similarity(plain_result, tmp_path / "default.npz")
    save_similarity(plain_result, tmp_path / "with.npz", save_rdms=True)
    with np.load(tmp_path / "default.npz") as npz:
        assert "rdms" not in npz.files
        np.testing.assert_array_equal(npz["similarity"], plain_result.matrix)
    with np.load(tmp_path / "with.npz") as npz:
        np.testing.assert_array_equal(npz["rdms"], plain_result.rdms)
    assert (tmp_path / "default.npz").stat().st_size < (tmp_path / "with.npz").stat().st_size
    dropped = similarity_matrix(_features(), keep_rdms=False)
    with pytest.raises(UserInputError, match=r"save_rdms: the result holds no RDMs .* keep_rdms=True"):
        save_similarity(dropped, tmp_path / "none.npz", save_rdms=True)
    assert not any(p.name.startswith("none") for p in tmp_path.iterdir())


def test_save_similarity_with_graph(tmp_path: Path, plain_result: SimilarityResult) -> None:
    written = save_similarity(plain_result, tmp_path / "sim.png", graph=True)
    assert sorted(p.name for p in written) == ["sim.csv", "sim.graph.html", "sim.graph.png", "sim.graphml",
                                               "sim.html", "sim.json", "sim.npz", "sim.png"]
    assert _listing(tmp_path) == sorted(p.name for p in written)
    assert (tmp_path / "sim.graph.png").read_bytes()[:8] == PNG_MAGIC
    assert "graphml" in (tmp_path / "sim.graphml").read_text()[:500]


def test_save_similarity_layer_names_and_permissions(tmp_path: Path) -> None:
    layered = similarity_matrix(_features(n_teachers=3), layer="block4")
    written = save_similarity(layered, tmp_path / "sim.png")
    assert sorted(p.name for p in written) == ["sim.block4.csv", "sim.block4.html", "sim.block4.json", "sim.block4.npz",
                                               "sim.block4.png"]
    mask = os.umask(0)
    os.umask(mask)
    for path in written:  # the usual permissions, not mkstemp's 0600
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("failing", ["write_matrix_csv", "_write_npz"])
def test_failure_midway_leaves_no_file(tmp_path: Path, plain_result: SimilarityResult,
                                       monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(outputs, failing, boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_similarity(plain_result, tmp_path / "sim.png", graph=failing == "_write_npz")
    assert _listing(tmp_path) == []  # neither final nor temporary files


def test_failure_midway_keeps_previous_outputs_intact(tmp_path: Path, plain_result: SimilarityResult,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sim.csv").write_text("previous run\n")
    monkeypatch.setattr(outputs, "_write_npz", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        save_similarity(plain_result, tmp_path / "sim.png")
    assert _listing(tmp_path) == ["sim.csv"]
    assert (tmp_path / "sim.csv").read_text() == "previous run\n"


def test_atomic_path_cleans_up_on_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        with atomic_path(tmp_path / "x.npy") as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".npy"
            tmp.write_bytes(b"partial")
            raise KeyError("fail")
    assert _listing(tmp_path) == []
    with atomic_path(tmp_path / "x.npy") as tmp:
        tmp.write_bytes(b"done")
    assert _listing(tmp_path) == ["x.npy"]


# --------------------------------------------------------------------------- output paths


def test_similarity_output_paths(tmp_path: Path) -> None:
    paths = similarity_output_paths(tmp_path / "res.html")
    assert paths == {ext[1:]: tmp_path / f"res{ext}" for ext in (*OUTPUT_FORMATS, ".json")}
    paths = similarity_output_paths(tmp_path / "res.NPZ", layer="encoder_output", graph=True)
    assert paths["png"] == tmp_path / "res.encoder_output.png"
    assert paths["graphml"] == tmp_path / "res.encoder_output.graphml"
    assert set(paths) == {"png", "html", "csv", "npz", "json", "graph_png", "graph_html", "graphml"}
    assert _listing(tmp_path) == []  # computing paths writes nothing


@pytest.mark.parametrize("name", ["sim.pdf", "sim", "sim.png.bak", "sim.jpeg"])
def test_output_paths_reject_unknown_extensions(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserInputError, match=r"out='.*': expected a file name ending in \.png, \.html, \.csv, "
                                             r"\.npz"):
        similarity_output_paths(tmp_path / name)


def test_output_paths_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"output path '.*sim\.png': directory '.*missing' does not exist; "
                                             r"create it first\."):
        similarity_output_paths(tmp_path / "missing" / "sim.png")


def test_output_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "sim.png").mkdir()
    with pytest.raises(UserInputError, match=r"output path '.*sim\.png' is a directory; expected a file name\."):
        similarity_output_paths(tmp_path / "sim.png")


def test_output_paths_not_writable(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that can write to a 0o500 directory (root)")
        with pytest.raises(UserInputError, match=r"directory '.*locked' is not writable; choose another place\."):
            similarity_output_paths(locked / "sim.png")
    finally:
        locked.chmod(0o700)


def test_output_paths_not_writable_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same check when the tests run as root (who may write anywhere): the directory reports no write access.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked
                        else real_access(path, mode, **kw))
    with pytest.raises(UserInputError, match=r"directory '.*locked' is not writable; choose another place\."):
        similarity_output_paths(locked / "sim.png")


def test_check_output_path_relative_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_output_path("sim.png") == Path("sim.png")
