"""The ``rsa-toolkit`` command line, in-process (``main(argv)`` with captured output) and through a subprocess.

Every command is checked against the library function it wraps; every bad input of the issue exits 2 with one
``rsa-toolkit: error:`` line on stderr, no traceback and no output file (DESIGN.md §9-10).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rsa_toolkit.cli import matrix as matrix_cli
from rsa_toolkit.cli.main import main
from rsa_toolkit.rsa.compare import compare_pair
from rsa_toolkit.features.store import load_features_dir
from rsa_toolkit.viz.outputs import read_matrix_csv
from rsa_toolkit.analysis.ranking import rank_auxiliaries
from rsa_toolkit.rsa.rdm import compute_rdm
from rsa_toolkit.rsa.similarity import similarity_matrix

N = 12
SMALL_TEACHERS = ["class_object", "curvature", "depth_zbuffer", "edge_texture", "normal"]
COMMANDS = ["matrix", "pick-aux", "rdm", "compare", "tasks", "demo-features"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- helpers


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(*argv: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rsa_toolkit", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def assert_user_error(code: int, err: str, match: str | None = None) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1 and "\r" not in err, repr(err)
    line = err.rstrip("\n")
    assert line.startswith("rsa-toolkit: error: "), line
    if match is not None:
        assert re.search(match, line), (match, line)
    return line


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def _small_features(seed: int = 0, n: int = N) -> dict[str, np.ndarray]:
    """Five teachers (named after tasks) over the same n images, with graded similarity to a shared signal."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 4, 2, 2))
    return {name: (base + (0.3 + 0.35 * i) * rng.normal(size=base.shape)).astype(np.float32)
            for i, name in enumerate(SMALL_TEACHERS)}


def _write_dir(directory: Path, arrays: dict[str, np.ndarray]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(directory / f"{name}.npy", array)
    return directory


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dir(tmp_path_factory.mktemp("small") / "features", _small_features())


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "demo-features"
    assert main(["demo-features", str(directory), "--images", str(N), "--quiet"]) == 0
    return directory


@pytest.fixture(scope="module")
def demo_matrix(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``rsa-toolkit matrix`` on the demo features, once; returns the directory holding sim.*."""
    out = tmp_path_factory.mktemp("demo_out")
    assert main(["matrix", "--features", str(demo_dir), "--out", str(out / "sim.png"), "--quiet"]) == 0
    return out


# --------------------------------------------------------------------------- help and version


def test_no_arguments_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 0
    assert out.startswith("usage: rsa-toolkit")
    for command in COMMANDS:
        assert command in out
    assert err == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_help_on_every_command(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out, _ = capsys.readouterr()
    assert out.startswith(f"usage: rsa-toolkit {command}")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("rsa-toolkit ")


def test_matrix_without_teachers_uses_the_mini_zoo(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.delenv("RSA_TOOLKIT_WEIGHTS", raising=False)
    monkeypatch.setenv("RSA_TOOLKIT_MINI_ZOO", str(tmp_path))  # an empty directory: no zoo there
    monkeypatch.chdir(tmp_path)
    assert main(["matrix"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no mini-Taskonomy zoo" in err and "rsa-toolkit mini train" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [["frobnicate"], ["pick-aux", "--features", "x"],
                                  ["matrix", "--features", "x", "--bootstrap", "many"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "rsa-toolkit" in err and "error:" in err and "Traceback" not in err


# --------------------------------------------------------------------------- tasks and demo-features


def test_tasks_lists_twenty(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tasks")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 20
    assert lines[0].split()[0] == "autoencoding"
    assert any(line.startswith("depth_zbuffer") and "rgb2depth" in line for line in lines)


def test_tasks_json_and_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tasks", "--json", "--type", "semantic")
    assert code == 0
    tasks = json.loads(out)
    assert [t["name"] for t in tasks] == ["class_object", "class_scene", "segment_semantic"]
    assert "class_1000" in tasks[0]["aliases"]
    assert set(tasks[0]) == {"name", "type", "output", "aliases"}


def test_tasks_unknown_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tasks", "--type", "4D")
    assert_user_error(code, err, r"Unknown task type '4D'")


def test_demo_features(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "demo-features", tmp_path / "demo", "--images", 5)
    assert code == 0
    assert out.startswith("wrote 20 teachers x 5 images")
    assert "next: rsa-toolkit matrix" in err
    files = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert len(files) == 21 and "image_ids.txt" in files and "normal.npy" in files
    assert np.load(tmp_path / "demo" / "normal.npy").shape == (5, 8, 16, 16)


def test_demo_features_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "demo-features", tmp_path / "d", "--images", 2)
    assert_user_error(code, err, r"n_images must be an integer >= 3, got 2")
    code, _, err = run(capsys, "demo-features", tmp_path / "missing" / "d")
    assert_user_error(code, err, r"cannot create '.*d': its parent directory does not exist")
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "demo-features", tmp_path / "file")
    assert_user_error(code, err, r"exists and is not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# --------------------------------------------------------------------------- matrix


def test_demo_then_matrix_matches_library(demo_dir: Path, demo_matrix: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in demo_matrix.iterdir()) == ["sim.csv", "sim.html", "sim.json", "sim.npz", "sim.png"]
    assert (demo_matrix / "sim.png").read_bytes()[:8] == PNG_MAGIC
    assert "<html" in (demo_matrix / "sim.html").read_text()[:1000].lower()
    matrix, names = read_matrix_csv(demo_matrix / "sim.csv")
    expected = similarity_matrix(load_features_dir(demo_dir).as_dict())
    assert names == expected.names
    assert len(names) == 20
    np.testing.assert_array_equal(matrix, expected.matrix)
    with np.load(demo_matrix / "sim.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["similarity"], expected.matrix)
        assert "rdms" not in npz.files  # only with --save-rdms
        assert npz["names"].tolist() == names
        prov = json.loads(str(npz["provenance"]))
    assert prov["options"]["method"] == "correlation" and prov["options"]["seed"] == 0
    assert prov["image_ids"][:2] == ["synthetic_00000", "synthetic_00001"]
    assert set(prov["features"]) == set(names)  # sha256 of each teacher's features file
    assert "numpy" in prov["packages"]
    assert main(["matrix", "--features", str(demo_dir), "--out", str(tmp_path / "sim.npz"), "--save-rdms",
                 "--quiet"]) == 0
    with np.load(tmp_path / "sim.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["rdms"], expected.rdms)
        np.testing.assert_array_equal(npz["similarity"], expected.matrix)


def test_matrix_prints_summary_and_hint(capsys: pytest.CaptureFixture[str], small_dir: Path, tmp_path: Path) -> None:
    code, out, err = run(capsys, "matrix", "--features", small_dir, "--out", tmp_path / "s.csv")
    assert code == 0
    assert out.startswith("5 teachers x 12 images: wrote ")
    assert "next: rsa-toolkit pick-aux" in err
    assert "\r" not in err  # no progress-bar fragments when stderr is not a terminal
    with np.load(tmp_path / "s.npz") as npz:  # no --bootstrap: no intervals
        assert "ci_low" not in npz.files and "ci_high" not in npz.files


def test_matrix_options_reach_the_library(capsys: pytest.CaptureFixture[str], small_dir: Path,
                                          tmp_path: Path) -> None:
    code, _, err = run(capsys, "matrix", "--features", small_dir, "--out", tmp_path / "s.npz", "--method", "cosine",
                       "--normalization", "zscore", "--comparison", "pearson", "--dtype", "float32", "-q")
    assert code == 0, err
    expected = similarity_matrix(load_features_dir(small_dir).as_dict(), method="cosine", normalization="zscore",
                                 comparison="pearson", dtype="float32")
    matrix, _ = read_matrix_csv(tmp_path / "s.csv")
    np.testing.assert_array_equal(matrix, expected.matrix)


def test_matrix_layer_all(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    features = tmp_path / "features"
    features.mkdir()
    rng = np.random.default_rng(0)
    ids = np.array([f"img{i}" for i in range(N)])
    layers = {"block4": rng.normal(size=(N, 6)), "encoder_output": rng.normal(size=(N, 8, 2, 2))}
    for k, name in enumerate(["a", "b", "c"]):
        np.savez(features / f"{name}.npz", image_ids=ids,
                 **{layer: x + (0.5 + k) * rng.normal(size=x.shape) for layer, x in layers.items()})
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(capsys, "matrix", "--features", features, "--out", out / "sim.png", "--layer", "all", "-q")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"sim.{layer}.{ext}" for layer in layers for ext in ("png", "html", "csv", "npz", "json"))
    for layer in layers:
        matrix, names = read_matrix_csv(out / f"sim.{layer}.csv")
        expected = similarity_matrix(load_features_dir(features, layer=layer).as_dict())
        assert names == ["a", "b", "c"]
        np.testing.assert_array_equal(matrix, expected.matrix)
        with np.load(out / f"sim.{layer}.npz") as npz:
            assert json.loads(str(npz["provenance"]))["layer"] == layer
    # one layer by name: one set, the layer named in the file names
    code, _, err = run(capsys, "matrix", "--features", features, "--out", tmp_path / "one.csv", "--layer", "block4",
                       "-q")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.glob("one*")) == [f"one.block4.{ext}" for ext in ("csv", "html", "json",
                                                                                             "npz", "png")]
    # several layers and no --layer: a user error naming the layers
    code, _, err = run(capsys, "matrix", "--features", features, "--out", tmp_path / "x.png")
    assert_user_error(code, err, r"several layers \(block4, encoder_output\); choose one with --layer")
    code, _, err = run(capsys, "matrix", "--features", features, "--out", tmp_path / "x.png", "--layer", "block9")
    assert_user_error(code, err, r"Unknown layer 'block9'\. Layers every teacher has: block4, encoder_output")
    assert not list(tmp_path.glob("x.*"))


def test_matrix_bootstrap_and_graph(capsys: pytest.CaptureFixture[str], small_dir: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, "matrix", "--features", small_dir, "--out", tmp_path / "sim.png", "--bootstrap", 5,
                       "--graph", "-q")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.csv", "sim.graph.html", "sim.graph.png",
                                                          "sim.graphml", "sim.html", "sim.json", "sim.npz", "sim.png"]
    with np.load(tmp_path / "sim.npz") as npz:
        assert {"ci_low", "ci_high", "bootstrap_samples", "row_stability"} <= set(npz.files)
        assert npz["ci_low"].shape == npz["ci_high"].shape == (5, 5)
        assert npz["bootstrap_samples"].shape == (5, 5, 5)
        assert np.all(npz["ci_low"] <= npz["ci_high"])
        assert json.loads(str(npz["provenance"]))["options"]["bootstrap"] == 5


def test_same_inputs_and_seed_give_identical_files(capsys: pytest.CaptureFixture[str], small_dir: Path,
                                                   tmp_path: Path) -> None:
    for run_dir in ("first", "second", "other_seed"):
        (tmp_path / run_dir).mkdir()
        seed = 7 if run_dir == "other_seed" else 3
        code, _, err = run(capsys, "matrix", "--features", small_dir, "--out", tmp_path / run_dir / "sim.png",
                           "--bootstrap", 5, "--seed", seed, "-q")
        assert code == 0, err
    for ext in ("csv", "npz"):
        assert (tmp_path / "first" / f"sim.{ext}").read_bytes() == (tmp_path / "second" / f"sim.{ext}").read_bytes()
    # the seed matters for the bootstrap, not for the point estimate
    assert (tmp_path / "first" / "sim.csv").read_bytes() == (tmp_path / "other_seed" / "sim.csv").read_bytes()
    with np.load(tmp_path / "first" / "sim.npz") as a, np.load(tmp_path / "other_seed" / "sim.npz") as b:
        assert not np.array_equal(a["bootstrap_samples"], b["bootstrap_samples"])


# --------------------------------------------------------------------------- pick-aux


def _pick_aux_json(capsys: pytest.CaptureFixture[str], *argv: object) -> list[dict[str, object]]:
    code, out, err = run(capsys, "pick-aux", *argv, "--json", "-q")
    assert code == 0, err
    return json.loads(out)


def test_pick_aux_json_matches_library(capsys: pytest.CaptureFixture[str], demo_dir: Path) -> None:
    ranking = _pick_aux_json(capsys, "--features", demo_dir, "--targets", "depth", "normals", "--bootstrap", 0)
    assert isinstance(ranking, list) and len(ranking) == 18
    names = [c["name"] for c in ranking]
    assert "depth_zbuffer" not in names and "normal" not in names  # targets excluded, found through aliases
    scores = [c["score"] for c in ranking]
    assert scores == sorted(scores, reverse=True)  # best first
    assert [c["rank"] for c in ranking] == list(range(1, 19))
    assert set(ranking[0]["per_target"]) == {"depth_zbuffer", "normal"}
    assert ranking[0]["top1_probability"] is None
    result = similarity_matrix(load_features_dir(demo_dir).as_dict())
    expected = rank_auxiliaries(result.matrix, result.names, ["depth_zbuffer", "normal"])
    assert [(c["name"], c["score"]) for c in ranking] == [(c.name, c.score) for c in expected]


def test_pick_aux_from_matrix_csv_same_order(capsys: pytest.CaptureFixture[str], demo_dir: Path,
                                             demo_matrix: Path) -> None:
    from_features = _pick_aux_json(capsys, "--features", demo_dir, "--targets", "edge2d", "reshade",
                                   "--bootstrap", 0)
    from_csv = _pick_aux_json(capsys, "--matrix", demo_matrix / "sim.csv", "--targets", "edge2d", "reshade")
    assert [c["name"] for c in from_csv] == [c["name"] for c in from_features]
    assert [c["score"] for c in from_csv] == [c["score"] for c in from_features]


def test_pick_aux_top_and_aggregate(capsys: pytest.CaptureFixture[str], demo_matrix: Path) -> None:
    full = _pick_aux_json(capsys, "--matrix", demo_matrix / "sim.csv", "--targets", "depth", "--aggregate", "min")
    top = _pick_aux_json(capsys, "--matrix", demo_matrix / "sim.csv", "--targets", "depth", "--aggregate", "min",
                         "--top", 2)
    assert len(top) == 2
    assert top == full[:2]


def test_pick_aux_bootstrap_probabilities(capsys: pytest.CaptureFixture[str], small_dir: Path) -> None:
    ranking = _pick_aux_json(capsys, "--features", small_dir, "--targets", "normal", "--bootstrap", 5)
    assert [c["name"] for c in ranking if c["name"] == "normal"] == []
    probs = [c["top1_probability"] for c in ranking]
    assert sum(probs) == pytest.approx(1.0)
    assert all(p * 5 == pytest.approx(round(p * 5)) for p in probs)  # counts out of 5 resamples


def test_pick_aux_table_and_hint(capsys: pytest.CaptureFixture[str], small_dir: Path) -> None:
    code, out, err = run(capsys, "pick-aux", "--features", small_dir, "--targets", "depth", "--bootstrap", 0,
                         "--top", 2)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["rank", "candidate", "mean", "sim"]
    assert "depth_zbuffer" in lines[0]
    assert len(lines) == 3
    assert lines[1].split()[1] != "depth_zbuffer"
    assert err == ""  # quick work writes no progress lines in a log


def test_pick_aux_teachers_named_by_taskonomy_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    features = _small_features()
    renamed = dict(zip(["class_1000", "curvature", "rgb2depth", "edge2d", "rgb2sfnorm"], features.values()))
    directory = _write_dir(tmp_path / "tf_names", renamed)
    ranking = _pick_aux_json(capsys, "--features", directory, "--targets", "depth", "normal", "--bootstrap", 0)
    assert {c["name"] for c in ranking} == {"class_1000", "curvature", "edge2d"}
    assert set(ranking[0]["per_target"]) == {"rgb2depth", "rgb2sfnorm"}


# --------------------------------------------------------------------------- rdm and compare


def test_rdm_npy_equals_library(capsys: pytest.CaptureFixture[str], small_dir: Path, tmp_path: Path) -> None:
    code, out, err = run(capsys, "rdm", "--features", small_dir / "normal.npy", "--out", tmp_path / "normal.npy")
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path / 'normal.npy'} (12 x 12)")
    expected = compute_rdm(np.load(small_dir / "normal.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "normal.npy"), expected)
    code, _, err = run(capsys, "rdm", "--features", small_dir / "depth_zbuffer.npy", "--out", tmp_path / "d.npy",
                       "--method", "euclidean", "--normalization", "none", "-q")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"),
                                  compute_rdm(np.load(small_dir / "depth_zbuffer.npy"), method="euclidean",
                                              normalization="none"))


def test_rdm_png_and_npz_layer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "t.npz", block4=rng.normal(size=(N, 5)), encoder_output=rng.normal(size=(N, 3)))
    code, _, err = run(capsys, "rdm", "--features", tmp_path / "t.npz", "--layer", "block4", "--out",
                       tmp_path / "r.png", "-q")
    assert code == 0, err
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_MAGIC
    code, _, err = run(capsys, "rdm", "--features", tmp_path / "t.npz", "--out", tmp_path / "r2.npy")
    assert_user_error(code, err, r"holds arrays block4, encoder_output; choose one with --layer")
    assert not (tmp_path / "r2.npy").exists()


def test_compare_prints_compare_pair(capsys: pytest.CaptureFixture[str], small_dir: Path, tmp_path: Path) -> None:
    a, b = compute_rdm(np.load(small_dir / "normal.npy")), compute_rdm(np.load(small_dir / "curvature.npy"))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    for comparison in ("spearman", "pearson", "kendall_tau_b"):
        expected = compare_pair(a, b, method=comparison)
        code, out, err = run(capsys, "compare", tmp_path / "a.npy", tmp_path / "b.npy", "--comparison", comparison,
                             "--json")
        assert code == 0, err
        assert json.loads(out) == {"comparison": comparison, "value": expected}
        code, out, _ = run(capsys, "compare", tmp_path / "a.npy", tmp_path / "b.npy", "--comparison", comparison)
        assert out == f"{comparison}: {expected:.6f}\n"


def test_compare_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.eye(4))
    code, _, err = run(capsys, "compare", tmp_path / "a.npy", tmp_path / "missing.npy")
    assert_user_error(code, err, r"'.*missing\.npy' is not a file")
    code, _, err = run(capsys, "compare", tmp_path / "a.npy", tmp_path / "a.npy", "--comparison", "spearmn")
    assert_user_error(code, err, r"Unknown comparison 'spearmn'\. Did you mean 'spearman'")


# ------------------------------------------------------------------ bad inputs: exit 2, one line, nothing written


def _case_different_n(d: Path) -> list[object]:
    _write_dir(d / "f", {"a": np.ones((10, 4)) + np.arange(4), "b": np.ones((11, 4)) + np.arange(4)})
    return ["matrix", "--features", d / "f", "--out", d / "out" / "sim.png"]


def _rand(n: int = N, f: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, f))


def _with_row(kind: str, row: int = 4) -> Callable[[Path], list[object]]:
    """A matrix case where teacher b's image ``row`` holds one NaN, one inf, or is constant."""
    def case(d: Path) -> list[object]:
        bad = _rand(seed=1)
        if kind == "constant":
            bad[row] = 0.5
        else:
            bad[row, 2] = np.nan if kind == "nan" else np.inf
        _write_dir(d / "f", {"a": _rand(), "b": bad, "c": _rand(seed=3)})
        return ["matrix", "--features", d / "f", "--out", d / "out" / "sim.png"]
    return case


def _good(d: Path) -> Path:
    return _write_dir(d / "f", {name: _rand(seed=i) for i, name in enumerate(SMALL_TEACHERS)})


BAD_INPUTS: dict[str, tuple[Callable[[Path], list[object]], str]] = {
    "different_n": (_case_different_n, r"all teachers must see the same N probe images; got N = a: 10, b: 11"),
    "n_below_3": (lambda d: ["matrix", "--features", _write_dir(d / "f", {"a": _rand(2), "b": _rand(2)}), "--out",
                             d / "out" / "sim.png"], r"a: need at least 3 images .* got N = 2"),
    "zero_features": (lambda d: ["matrix", "--features", _write_dir(d / "f", {"a": np.ones((N, 0)),
                                                                            "b": np.ones((N, 0))}),
                                 "--out", d / "out" / "sim.png"], r"a: features have zero values per image"),
    "nan": (_with_row("nan"), r"b: image row 4 has NaN or infinite features"),
    "inf": (_with_row("inf"), r"b: image row 4 has NaN or infinite features"),
    "constant_row": (_with_row("constant"), r"b: image row 4 has constant features \(zero variance\)"),
    "unknown_method": (lambda d: ["matrix", "--features", _good(d), "--out", d / "out" / "sim.png", "--method",
                                  "corelation"], r"Unknown RDM method 'corelation'\. Did you mean 'correlation'"),
    "unknown_normalization": (lambda d: ["matrix", "--features", _good(d), "--out", d / "out" / "sim.png",
                                         "--normalization", "zscor"],
                              r"Unknown normalization 'zscor'\. Did you mean 'zscore'"),
    "unknown_comparison": (lambda d: ["matrix", "--features", _good(d), "--out", d / "out" / "sim.png",
                                      "--comparison", "spearmn"], r"Unknown comparison 'spearmn'"),
    "unknown_target": (lambda d: ["pick-aux", "--features", _good(d), "--targets", "depth", "nromal"],
                       r"Unknown target 'nromal': not a task name and not a teacher\. Did you mean 'normal'\?"),
    "target_not_a_teacher": (lambda d: ["pick-aux", "--features", _good(d), "--targets", "reshade"],
                             r"Target 'reshade' \(task reshading\) is not among the teachers: class_object"),
    "target_not_a_teacher_csv": (
        lambda d: ["pick-aux", "--matrix", _csv(d), "--targets", "vanishing_point"],
        r"Target 'vanishing_point' \(task vanishing_point\) is not among the teachers"),
    "duplicate_target": (lambda d: ["pick-aux", "--features", _good(d), "--targets", "depth", "rgb2depth"],
                         r"names the same teacher as another target"),
    "one_teacher_matrix": (lambda d: ["matrix", "--features", _write_dir(d / "f", {"a": _rand()}), "--out",
                                      d / "out" / "sim.png"], r"need at least two teachers to compare, got 1"),
    "one_teacher_pick_aux": (lambda d: ["pick-aux", "--features", _write_dir(d / "f", {"normal": _rand()}),
                                        "--targets", "normal"], r"need at least two teachers to compare, got 1"),
    "output_dir_missing": (lambda d: ["matrix", "--features", _good(d), "--out", d / "nowhere" / "sim.png"],
                           r"output path '.*sim\.png': directory '.*nowhere' does not exist"),
    "empty_features_dir": (lambda d: ["matrix", "--features", _mkdir(d / "f"), "--out", d / "out" / "sim.png"],
                           r"features directory '.*f' holds no <teacher>\.npy or <teacher>\.npz files"),
    "missing_features_dir": (lambda d: ["matrix", "--features", d / "nope", "--out", d / "out" / "sim.png"],
                             r"features directory '.*nope' does not exist"),
    "garbage_npy": (lambda d: ["matrix", "--features", _garbage(d), "--out", d / "out" / "sim.png"],
                    r"could not read features file '.*broken\.npy'"),
    "pickled_npy": (lambda d: ["matrix", "--features", _pickled(d), "--out", d / "out" / "sim.png"],
                    r"could not read features file '.*evil\.npy'"),
    "bad_out_extension": (lambda d: ["matrix", "--features", _good(d), "--out", d / "out" / "sim.pdf"],
                          r"--out '.*sim\.pdf': expected a file name ending in \.png, \.html, \.csv, \.npz"),
    "rdm_bad_out_extension": (lambda d: ["rdm", "--features", _good(d) / "normal.npy", "--out",
                                         d / "out" / "rdm.txt"], r"expected a file name ending in \.npy or \.png"),
    "rdm_nan": (lambda d: ["rdm", "--features", _with_row("nan")(d)[2] / "b.npy", "--out", d / "out" / "r.npy"],
                r"b: image row 4 has NaN or infinite features"),
    "rdm_garbage": (lambda d: ["rdm", "--features", _garbage(d) / "broken.npy", "--out", d / "out" / "r.npy"],
                    r"could not read '.*broken\.npy'"),
    "bad_matrix_csv": (lambda d: ["pick-aux", "--matrix", _write_text(d / "m.csv", ",a,b\na,1,x\nb,0.5,1\n"),
                                  "--targets", "a"], r"has a non-numeric cell"),
    "top_zero": (lambda d: ["pick-aux", "--features", _good(d), "--targets", "normal", "--top", 0],
                 r"--top must be at least 1, got 0"),
    "unknown_aggregate": (lambda d: ["pick-aux", "--features", _good(d), "--targets", "normal", "--aggregate",
                                     "median"], r"Unknown aggregate 'median'"),
    "bad_dtype": (lambda d: ["matrix", "--features", _good(d), "--out", d / "out" / "sim.png", "--dtype", "int8"],
                  r"dtype must be float32 or float64"),
    "bad_confidence": (lambda d: ["matrix", "--features", _good(d), "--out", d / "out" / "sim.png", "--bootstrap",
                                  2, "--confidence", 1.5], r"confidence must be in \(0, 1\)"),
}


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _garbage(d: Path) -> Path:
    directory = _write_dir(d / "f", {"good": _rand()})
    (directory / "broken.npy").write_bytes(b"this is not a numpy file \x00\x01\x02")
    return directory


def _pickled(d: Path) -> Path:
    directory = _write_dir(d / "f", {"good": _rand(3)})
    np.save(directory / "evil.npy", np.array([{"x": 1}, None, "y"], dtype=object), allow_pickle=True)
    return directory


def _csv(d: Path) -> Path:
    return _write_text(d / "m.csv", ",depth_zbuffer,normal\ndepth_zbuffer,1.0,0.5\nnormal,0.5,1.0\n")


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("quiet", [False, True], ids=["verbose", "quiet"])
def test_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str,
                                         quiet: bool) -> None:
    build, message = BAD_INPUTS[case]
    (tmp_path / "out").mkdir()
    argv = build(tmp_path)
    before = snapshot(tmp_path)
    code, out, err = run(capsys, *argv, *(["--quiet"] if quiet else []))
    assert_user_error(code, err, message)
    assert out == ""
    assert snapshot(tmp_path) == before  # nothing written, nothing touched
    assert list((tmp_path / "out").iterdir()) == []


def test_output_dir_not_writable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    features = _good(tmp_path)
    locked = _mkdir(tmp_path / "locked")
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that can write to a 0o500 directory (root)")
        code, _, err = run(capsys, "matrix", "--features", features, "--out", locked / "sim.png")
        assert_user_error(code, err, r"directory '.*locked' is not writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_output_dir_not_writable_simulated(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    features = _good(tmp_path)
    locked = _mkdir(tmp_path / "locked")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked
                        else real_access(path, mode, **kw))
    for argv in (["matrix", "--features", features, "--out", locked / "sim.png"],
                 ["rdm", "--features", features / "normal.npy", "--out", locked / "rdm.npy"]):
        code, _, err = run(capsys, *argv)
        assert_user_error(code, err, r"directory '.*locked' is not writable; choose another place")
    assert list(locked.iterdir()) == []


def test_bad_layer_in_layer_all_fails_before_writing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # an output path problem is found for every layer before the first computation
    features = _mkdir(tmp_path / "f")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        np.savez(features / f"{name}.npz", l1=rng.normal(size=(N, 3)), l2=rng.normal(size=(N, 3)))
    code, _, err = run(capsys, "matrix", "--features", features, "--out", tmp_path / "sim.txt", "--layer", "all")
    assert_user_error(code, err, r"expected a file name ending in")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_layer_all_bad_later_layer_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    features = _mkdir(tmp_path / "f")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        l2 = rng.normal(size=(N, 3))
        if name == "b":
            l2[4, 1] = np.nan
        np.savez(features / f"{name}.npz", l1=rng.normal(size=(N, 3)), l2=l2)
    out = _mkdir(tmp_path / "out")
    code, _, err = run(capsys, "matrix", "--features", features, "--out", out / "sim.png", "--layer", "all", "-q")
    assert_user_error(code, err, r"b: image row 4 has NaN or infinite features")
    assert list(out.iterdir()) == []


def test_our_bugs_keep_their_traceback(monkeypatch: pytest.MonkeyPatch, small_dir: Path, tmp_path: Path) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(matrix_cli, "similarity_matrix", broken)
    with pytest.raises(RuntimeError, match="a bug of ours"):
        main(["matrix", "--features", str(small_dir), "--out", str(tmp_path / "sim.png"), "-q"])
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_exits_130(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                      small_dir: Path, tmp_path: Path) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(matrix_cli, "similarity_matrix", interrupted)
    code, _, err = run(capsys, "matrix", "--features", small_dir, "--out", tmp_path / "sim.png", "-q")
    assert code == 130
    assert err == "rsa-toolkit: interrupted\n"
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- through a subprocess


def test_subprocess_matrix(tmp_path: Path) -> None:
    features = _write_dir(tmp_path / "features", _small_features())
    proc = run_subprocess("matrix", "--features", features, "--out", "sim.png", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""
    assert sorted(p.name for p in tmp_path.glob("sim.*")) == ["sim.csv", "sim.html", "sim.json", "sim.npz", "sim.png"]
    matrix, _ = read_matrix_csv(tmp_path / "sim.csv")
    np.testing.assert_array_equal(matrix, similarity_matrix(load_features_dir(features).as_dict()).matrix)


def test_subprocess_bad_input(tmp_path: Path) -> None:
    build, message = BAD_INPUTS["nan"]
    (tmp_path / "out").mkdir()
    argv = build(tmp_path)
    before = snapshot(tmp_path)
    proc = run_subprocess(*argv, cwd=tmp_path)  # not --quiet: no progress-bar fragments on a redirected stderr
    assert_user_error(proc.returncode, proc.stderr, message)
    assert proc.stdout == ""
    assert snapshot(tmp_path) == before


def test_subprocess_broken_pipe_no_traceback(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone, as with `rsa-toolkit tasks | head -0`
    try:
        proc = subprocess.run([sys.executable, "-m", "rsa_toolkit", "tasks"], cwd=tmp_path, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr
    assert "BrokenPipeError" not in proc.stderr
    assert proc.returncode == 0
