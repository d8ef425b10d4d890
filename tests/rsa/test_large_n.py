"""Large probe sets: the out-of-core similarity matrix equals the in-memory one exactly; the memory plan picks the
mode and the number of teachers at once from an honest footprint; chunked ranking equals scipy; the CLI's
--max-memory and --scratch (issue 8, part 3)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from rsa_toolkit.rsa import average_ranks
from rsa_toolkit.rsa import compare
from rsa_toolkit.rsa import memory
from rsa_toolkit.cli.main import main
from rsa_toolkit.rsa.average_ranks import doubled_ranks
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.store import load_features_dir
from rsa_toolkit.rsa.memory import parse_size, plan_memory
from rsa_toolkit.rsa.out_of_core import release_pages
from rsa_toolkit.rsa.similarity import similarity_matrix

GiB = 1 << 30


def _teachers(n: int = 40, d: int = 6, t: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Teachers with graded similarity; features rounded to one decimal, so RDM entries tie."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, d))
    return {f"teacher_{i}": np.round(base + (0.3 + 0.3 * i) * rng.normal(size=base.shape), 1) for i in range(t)}


# --------------------------------------------------------------------------- out of core == in memory


@pytest.mark.parametrize("comparison", ["spearman", "pearson", "cosine"])
@pytest.mark.parametrize("method", ["correlation", "sqeuclidean", "linear"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_out_of_core_equals_in_memory(tmp_path: Path, comparison: str, method: str, dtype: str) -> None:
    features = _teachers()
    expected = similarity_matrix(features, method=method, comparison=comparison, dtype=dtype, n_jobs=1)
    got = similarity_matrix(features, method=method, comparison=comparison, dtype=dtype, n_jobs=1, out_of_core=True,
                            scratch=tmp_path, keep_rdms=True)
    assert got.memory.out_of_core and not expected.memory.out_of_core
    np.testing.assert_array_equal(got.matrix, expected.matrix)
    assert isinstance(got.rdms, np.memmap) and not got.rdms.flags.writeable
    np.testing.assert_array_equal(got.rdms, expected.rdms)
    assert list(tmp_path.iterdir()) == []  # the scratch files are gone; the mapped RDMs stay readable


def test_out_of_core_with_two_jobs_and_without_rdms(tmp_path: Path) -> None:
    features = _teachers(t=5)
    expected = similarity_matrix(features, n_jobs=2)
    got = similarity_matrix(features, n_jobs=2, out_of_core=True, scratch=tmp_path)
    np.testing.assert_array_equal(got.matrix, expected.matrix)
    assert got.rdms is None and not got.memory.keep_rdms  # out of core, RDMs are dropped unless asked for
    assert got.memory.n_jobs == 2


def test_memory_mapped_features_and_chunked_gram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Features read from .npy maps, several Gram chunks and rank passes: still identical."""
    monkeypatch.setattr(compare, "_GRAM_CHUNK", 100)
    monkeypatch.setattr(average_ranks, "_RANK_CHUNK", 37)
    for name, x in _teachers(t=3).items():
        np.save(tmp_path / f"{name}.npy", x.astype(np.float32))
    features = {p.stem: np.load(p, mmap_mode="r") for p in sorted(tmp_path.glob("*.npy"))}
    expected = similarity_matrix(features, n_jobs=1)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    got = similarity_matrix(features, n_jobs=1, out_of_core=True, scratch=scratch)
    np.testing.assert_array_equal(got.matrix, expected.matrix)


def test_max_memory_below_in_memory_need_switches_to_out_of_core(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    features = _teachers()
    monkeypatch.setattr(memory, "resident_memory", lambda: 0)  # the budget is max_memory itself
    plan = plan_memory(4, 40, 6, n_jobs=1)
    between = (plan.in_memory_needed + plan.out_of_core_needed) // 2
    assert plan.out_of_core_needed < between < plan.in_memory_needed
    got = similarity_matrix(features, n_jobs=1, max_memory=between, scratch=tmp_path)
    assert got.memory.out_of_core and got.memory.budget == between
    np.testing.assert_array_equal(got.matrix, similarity_matrix(features, n_jobs=1).matrix)


@pytest.mark.parametrize(("options", "message"), [
    (dict(n_bootstrap=5), r"the bootstrap needs every RDM .* has no out-of-core mode; run without it"),
    (dict(comparison="kendall_tau_b"), r"comparison 'kendall_tau_b' compares whole RDMs in memory"),
    (dict(comparison="cka"), r"comparison 'cka' compares whole RDMs in memory"),
])
def test_out_of_core_refuses_what_it_cannot_do(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        similarity_matrix(_teachers(), out_of_core=True, scratch=tmp_path, **options)


def test_scratch_must_be_a_writable_directory(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"scratch='.*missing': no such directory"):
        similarity_matrix(_teachers(), out_of_core=True, scratch=tmp_path / "missing")


# --------------------------------------------------------------------------- the plan


def test_plan_for_the_issue_target_fits_8_gib_out_of_core() -> None:
    """20,000 images x 20 teachers x 2,048 features: 32+ GB in memory; out of core within 8 GiB."""
    for dtype in ("float64", "float32"):
        plan = plan_memory(20, 20_000, 2048, dtype=dtype, n_jobs=2, budget=8 * GiB)
        assert plan.out_of_core and plan.needed <= 8 * GiB and plan.n_jobs >= 1
        assert plan.in_memory_needed > 32e9
        m = 20_000 * 19_999 // 2
        assert plan.disk == 20 * 4 * m  # int32 ranks only: the RDMs are not kept
        # one teacher's working set: its RDM, the int64 argsort and the int32 ranks
        assert plan.out_of_core_needed >= m * (np.dtype(dtype).itemsize + 8 + 4)


def test_plan_limits_teachers_at_once_by_the_budget() -> None:
    one = plan_memory(20, 5000, 2048, n_jobs=1, budget=None)
    assert not one.out_of_core and one.budget is None  # no budget known: in memory, as asked
    per_job = plan_memory(20, 5000, 2048, n_jobs=2).needed - one.needed
    assert per_job >= 8 * 5000 * 4999 // 2  # the argsort's int64 indices
    limited = plan_memory(20, 5000, 2048, n_jobs=2, budget=one.needed + per_job // 2)
    assert not limited.out_of_core and limited.n_jobs == 1 and limited.keep_rdms


def test_plan_forced_modes_and_budget_too_small() -> None:
    assert plan_memory(5, 100, 10, out_of_core=False, budget=None).keep_rdms
    forced = plan_memory(5, 100, 10, out_of_core=True, budget=None, keep_rdms=True)
    assert forced.out_of_core and forced.keep_rdms and forced.disk == 5 * (8 + 4) * 4950
    with pytest.raises(UserInputError, match=r"need about .* even out of core with one teacher at a time, more than "
                                             r"the memory budget \(1M\); raise max_memory"):
        plan_memory(5, 20_000, 2048, budget=1 << 20)


def test_memory_budget_is_max_memory_minus_what_the_process_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "resident_memory", lambda: 1 * GiB)
    assert memory.memory_budget("8G") == 7 * GiB
    with pytest.raises(UserInputError, match=r"max_memory 512M is below what this process already holds \(1G\)"):
        memory.memory_budget("512M")
    monkeypatch.setattr(memory, "available_memory", lambda: 16 * GiB)
    assert memory.memory_budget(None) == 12 * GiB


@pytest.mark.parametrize(("text", "size"), [("8G", 8 * GiB), ("512M", 512 << 20), ("1.5G", 3 * GiB // 2),
                                            ("8GB", 8 * GiB), ("8gib", 8 * GiB), ("64k", 65536), ("1000", 1000),
                                            (" 2T ", 2 << 40), (123, 123)])
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["8X", "", "lots", "-1G", "0", "0.0001", True, 0, "8 G B"])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(UserInputError, match=r"max_memory must be a size such as 8G, 512M or 2000000000 \(bytes; "
                                             r"K, M, G, T are powers of 1024\), got "):
        parse_size(bad)


# --------------------------------------------------------------------------- pages and ranks


def _rss_file() -> int:
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("needs Linux /proc")
    return next(int(line.split()[1]) * 1024 for line in status.read_text().splitlines()
                if line.startswith("RssFile:"))


def test_release_pages_leaves_the_resident_set_and_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.arange(8 << 20, dtype=np.float64))  # 64 MB
    written = np.lib.format.open_memmap(tmp_path / "w.npy", mode="w+", dtype=np.int32, shape=(1 << 20,))
    written[:] = 7
    release_pages(written[: 1 << 19])  # a slice: its pages only
    release_pages(written)  # dirty pages of a shared map: dropped from the process, kept in the file
    assert (written == 7).all()
    x = np.load(path, mmap_mode="r")
    before = _rss_file()
    assert x.sum() == (8 << 20) * ((8 << 20) - 1) / 2
    touched = _rss_file()
    release_pages(x)
    assert touched - before > 32e6 and touched - _rss_file() > 32e6
    release_pages(np.ones(10))  # in-memory arrays: nothing to do


def _reference_doubled_ranks(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """2 x scipy's average ranks, an entry of weight w counted as w repeats (all tied, so they share one rank)."""
    if weights is None:
        return (2 * rankdata(values)).astype(np.int64)
    return (2 * rankdata(np.repeat(values, weights))[np.cumsum(weights) - 1]).astype(np.int64)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_chunked_ranks_equal_scipy_with_long_tie_groups(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(average_ranks, "_RANK_CHUNK", chunk)
    values = np.array([3.0] * 9 + [1.0] * 4 + [2.0, 5.0, 0.5] + [4.0] * 6)
    np.random.default_rng(0).shuffle(values)
    np.testing.assert_array_equal(doubled_ranks(values), 2 * rankdata(values))
    weights = np.random.default_rng(1).integers(1, 4, len(values))
    np.testing.assert_array_equal(doubled_ranks(values, weights), _reference_doubled_ranks(values, weights))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(0, 6), min_size=1, max_size=60), chunk=st.integers(1, 9),
       weighted=st.booleans(), seed=st.integers(0, 2**16))
def test_chunked_ranks_property(values: list[int], chunk: int, weighted: bool, seed: int) -> None:
    """Any chunk size gives the unchunked ranks (integers with many ties, weights from 1 to 3)."""
    v = np.array(values, dtype=np.float64)
    w = np.random.default_rng(seed).integers(1, 4, len(v)) if weighted else None
    expected = _reference_doubled_ranks(v, w)
    original = average_ranks._RANK_CHUNK
    average_ranks._RANK_CHUNK = chunk  # not monkeypatch: hypothesis reruns the body without re-entering fixtures
    try:
        np.testing.assert_array_equal(doubled_ranks(v, w), expected)
    finally:
        average_ranks._RANK_CHUNK = original


# --------------------------------------------------------------------------- command line


def _features_dir(root: Path) -> Path:
    folder = root / "feats"
    folder.mkdir()
    for name, x in _teachers(t=4).items():
        np.save(folder / f"{name}.npy", x.astype(np.float32))
    return folder


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[object], match: str) -> None:
    assert main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(r"^rsa-toolkit: error: " + match, err), err


@pytest.mark.parametrize("command", ["matrix", "pick-aux", "evaluate"])
def test_cli_bad_max_memory_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  command: str) -> None:
    extra = {"matrix": ["--out", tmp_path / "sim.png"], "pick-aux": ["--targets", "teacher_0"],
             "evaluate": ["--truth", "taskonomy-affinity"]}[command]
    _one_line_error(capsys, [command, "--features", _features_dir(tmp_path), *extra, "--max-memory", "8X"],
                    r"--max-memory must be a size such as 8G, 512M or 2000000000 .*got '8X'\.$")
    assert not (tmp_path / "sim.png").exists()


def test_cli_bad_max_memory_through_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rsa_toolkit", "matrix", "--features", str(_features_dir(tmp_path)),
                           "--out", "sim.png", "--max-memory", "lots"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr == "rsa-toolkit: error: --max-memory must be a size such as 8G, 512M or 2000000000 (bytes; " \
                          "K, M, G, T are powers of 1024), got 'lots'.\n"
    assert not (tmp_path / "sim.png").exists()


def test_cli_matrix_out_of_core(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    features = _features_dir(tmp_path)
    monkeypatch.setattr(memory, "resident_memory", lambda: 0)
    plan = plan_memory(4, 40, 6, keep_rdms=False)  # without --save-rdms, matrix does not keep them
    budget = (plan.in_memory_needed + plan.out_of_core_needed) // 2
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    argv = ["matrix", "--features", features, "--out", tmp_path / "sim.npz", "--max-memory", budget,
            "--scratch", scratch, "--quiet"]
    assert main([str(a) for a in argv]) == 0
    assert capsys.readouterr().out == ""
    with np.load(tmp_path / "sim.npz") as npz:
        assert "rdms" not in npz.files  # out of core, the RDMs are not kept
        expected = similarity_matrix(load_features_dir(features).as_dict()).matrix
        np.testing.assert_array_equal(npz["similarity"], expected)
    assert list(scratch.iterdir()) == []
    assert main([str(a) for a in argv[:-1]]) == 0
    assert "(out of core; RDMs not kept)" in capsys.readouterr().out
    assert main([str(a) for a in argv] + ["--save-rdms"]) == 0  # out of core too, the RDMs when asked for
    with np.load(tmp_path / "sim.npz") as npz:
        np.testing.assert_array_equal(npz["rdms"], similarity_matrix(load_features_dir(features).as_dict()).rdms)
    assert list(scratch.iterdir()) == []
    _one_line_error(capsys, ["matrix", "--features", features, "--out", tmp_path / "sim.png", "--max-memory", budget,
                             "--scratch", tmp_path / "nowhere"], r"--scratch '.*nowhere': no such directory")
    _one_line_error(capsys, ["pick-aux", "--features", features, "--targets", "teacher_0", "--max-memory", budget],
                    r"the bootstrap needs every RDM of the 40 images in memory \(about .*, over the budget of .*\), "
                    r"and has no out-of-core mode; run without it \(n_bootstrap=0, --bootstrap 0\)")
