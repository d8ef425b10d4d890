"""Issue 15, items 3-4 of evaluate: every transferability measure as a source x target matrix scored against the
truth (Python and CLI), the ``--protocol dds`` 17 x 17 table, unknown measures, and per-target intervals of rho
(the truth's seed noise from per-seed losses; a bootstrap of the probe images)."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from rsa_toolkit.analysis.evaluation import (DDS17_TASKS, check_measures, evaluate_measures, evaluate_similarity,
                                             measure_names, rho_intervals)
from rsa_toolkit.analysis.ground_truth import load_ground_truth, read_ground_truth_csv, truth_samples_from_losses
from rsa_toolkit.analysis.transferability import TRANSFERABILITY_MEASURES, transferability_score
from rsa_toolkit.analysis.transferability.matrix import measure_matrix, target_kind_for, teacher_targets
from rsa_toolkit.analysis.transferability.parc import pca_scores
from rsa_toolkit.cli.main import main
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.store import load_features_dir
from rsa_toolkit.rsa.similarity import similarity_matrix
from rsa_toolkit.viz.outputs import write_matrix_csv

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT.parent / "shared" / "reference" / "taskonomy" / "taskonomy_task_name_mapping.csv"


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "demo-features"
    assert main(["demo-features", str(directory), "--images", "24", "--quiet"]) == 0
    return directory


@pytest.fixture(scope="module")
def demo_features(demo_dir: Path) -> dict[str, np.ndarray]:
    return load_features_dir(demo_dir).as_dict()


@pytest.fixture()
def sim_csv(demo_features: dict[str, np.ndarray], tmp_path: Path) -> Path:
    result = similarity_matrix(demo_features)
    write_matrix_csv(result.matrix, result.names, tmp_path / "sim.csv")
    return tmp_path / "sim.csv"


# --------------------------------------------------------------------------- the DDS 17 x 17 protocol


def test_dds17_is_the_affinity_targets_and_the_reference_mapping() -> None:
    assert list(DDS17_TASKS) == [t for t in DDS17_TASKS]  # a fixed order
    assert set(DDS17_TASKS) == set(load_ground_truth("taskonomy-affinity").targets)
    if MAPPING.is_file():  # the project's reference folder, beside the checkout
        with open(MAPPING) as fh:
            rows = [r for r in csv.DictReader(fh) if r["in_dds17"] == "1"]
        assert [r["visualpriors_name"] for r in sorted(rows, key=lambda r: int(r["dds17_index"]))] == \
            list(DDS17_TASKS)


def test_protocol_dds_gives_17_sources_and_17_targets(demo_features: dict[str, np.ndarray]) -> None:
    result = similarity_matrix(demo_features)
    truth = load_ground_truth("taskonomy-affinity")
    everything = evaluate_similarity(result.matrix, result.names, truth)
    assert len(everything.sources) == 19 and len(everything.per_target) == 17 and everything.protocol == "all"
    dds = evaluate_similarity(result.matrix, result.names, truth, protocol="dds")
    assert dds.protocol == "dds"
    assert len(dds.sources) == 17 and len(dds.per_target) == 17 and set(dds.sources) == set(DDS17_TASKS)
    assert set(dds.excluded_by_protocol) == {"colorization", "inpainting", "class_scene"}
    assert dds.not_in_similarity == () and dds.not_truth_targets == ()
    # the same as restricting the matrix by hand
    keep = [result.names.index(t) for t in DDS17_TASKS]
    by_hand = evaluate_similarity(result.matrix[np.ix_(keep, keep)], list(DDS17_TASKS), truth)
    assert dds.mean_spearman_with_diagonal == pytest.approx(by_hand.mean_spearman_with_diagonal, abs=1e-12)
    assert dds.mean_spearman_with_diagonal != pytest.approx(everything.mean_spearman_with_diagonal)
    with pytest.raises(UserInputError, match="Unknown protocol 'ddss'. Did you mean 'dds'"):
        evaluate_similarity(result.matrix, result.names, truth, protocol="ddss")


def test_cli_protocol_label_and_counts(capsys: pytest.CaptureFixture[str], sim_csv: Path) -> None:
    code, out, err = run(capsys, "evaluate", "--matrix", sim_csv, "--truth", "taskonomy-affinity", "--protocol", "dds")
    assert code == 0, err
    assert "similarity: " in out and "; 17 targets, 17 sources in common" in out
    left_out = re.search(r"^protocol dds: the DDS paper's 17 tasks as sources and targets; left out: (.*)$", out, re.M)
    assert left_out and set(left_out.group(1).split(", ")) == {"colorization", "inpainting", "class_scene"}
    assert re.search(r"^mean Spearman, diagonal included \(protocol dds, 17 sources x 17 targets\): -?\d\.\d{4} "
                     r"over 17 targets$", out, re.M)
    assert "DDS protocol" not in out
    code, out, err = run(capsys, "evaluate", "--matrix", sim_csv, "--truth", "taskonomy-affinity")
    assert code == 0, err
    assert "mean Spearman, diagonal included (protocol all, 19 sources x 17 targets)" in out
    code, out, err = run(capsys, "evaluate", "--matrix", sim_csv, "--truth", "taskonomy-affinity", "--protocol", "dds",
                         "--json")
    record = json.loads(out)
    assert record["protocol"] == "dds"
    e = record["evaluations"][0]
    assert len(e["sources"]) == 17 and len(e["per_target"]) == 17 and e["protocol"] == "dds"


# --------------------------------------------------------------------------- every measure as a matrix


def test_measure_names_come_from_the_registry() -> None:
    assert measure_names() == ["rsa", "dds-zscore-cosine", *TRANSFERABILITY_MEASURES.names()]
    assert check_measures(["rsa", "logme", "rsa"]) == ["rsa", "logme"]
    with pytest.raises(UserInputError, match="Unknown measure 'cka_linaer'. Did you mean 'cka_linear'"):
        check_measures(["cka_linaer"])


def test_every_measure_from_python(demo_features: dict[str, np.ndarray]) -> None:
    truth = load_ground_truth("taskonomy-affinity")
    results = evaluate_measures(demo_features, truth, measures=measure_names(), protocol="dds")
    assert [r.measure for r in results] == measure_names()
    for r in results:
        assert r.matrix.shape == (20, 20) and np.isfinite(r.matrix).all(), r.measure
        e, = r.evaluations
        assert e.protocol == "dds" and len(e.per_target) == 17 and len(e.sources) == 17
        assert -1 <= e.mean_spearman_with_diagonal <= 1 or math.isnan(e.mean_spearman_with_diagonal)
        assert r.intervals == (None,)
    rsa = results[0]
    assert np.array_equal(rsa.matrix, similarity_matrix(demo_features).matrix)


def test_measure_matrix_entries_are_the_registry_scores(demo_features: dict[str, np.ndarray]) -> None:
    names = list(demo_features)[:4]
    feats = {n: demo_features[n] for n in names}
    flat = {n: a.reshape(len(a), -1).astype(np.float64) for n, a in feats.items()}  # as measure_matrix reads them
    # features kind: the target teacher's features as they are
    m = measure_matrix(feats, "cka_linear")
    assert m[1, 2] == pytest.approx(transferability_score(flat[names[1]], flat[names[2]], measure="cka_linear",
                                                          target_kind="features"))
    assert target_kind_for("logme") == "regression" and target_kind_for("parc") == "features"
    assert target_kind_for("h_score") == "classification"
    # regression kind: source reduced to 32 PCs (here N - 1 = 23), target's first 8 PCs
    m = measure_matrix(feats, "logme")
    source = pca_scores(flat[names[0]], 23)
    target = teacher_targets(flat[names[3]])["regression"]
    assert target.shape == (24, 8)
    assert m[0, 3] == pytest.approx(transferability_score(source, target, measure="logme", target_kind="regression"))
    # classification kind: k-means classes of the target's PCs (24 images -> at most 12 classes, here 10)
    labels = teacher_targets(flat[names[2]])["classification"]
    assert labels.shape == (24,) and len(np.unique(labels)) == 10
    m = measure_matrix(feats, "h_score")
    assert m[1, 2] == pytest.approx(transferability_score(pca_scores(flat[names[1]], 23), labels, measure="h_score"))


def test_cli_every_measure_json(capsys: pytest.CaptureFixture[str], demo_dir: Path) -> None:
    code, out, err = run(capsys, "evaluate", "--features", demo_dir, "--truth", "taskonomy-affinity", "--measures",
                         *measure_names(), "--protocol", "dds", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["protocol"] == "dds" and [m["measure"] for m in record["measures"]] == measure_names()
    for m in record["measures"]:
        e, = m["evaluations"]
        assert len(e["per_target"]) == 17 and len(e["sources"]) == 17, m["measure"]
    logme = next(m for m in record["measures"] if m["measure"] == "logme")
    assert "target: the target teacher's first 8 principal components" in logme["similarity"]


def test_cli_measures_table_has_a_summary(capsys: pytest.CaptureFixture[str], demo_dir: Path) -> None:
    code, out, err = run(capsys, "evaluate", "--features", demo_dir, "--truth", "taskonomy-affinity", "--measures",
                         "rsa", "cka_linear", "logme")
    assert code == 0, err
    assert "measure: cka_linear" in out and "measure: logme" in out
    assert "summary against taskonomy-affinity (protocol all: every source and target in common):" in out
    assert re.search(r"^cka_linear\s+-?\d\.\d{4}", out, re.M)


@pytest.mark.parametrize(("extra", "match"), [
    (["--measures", "cka_linaer"], r"Unknown measure 'cka_linaer'. Did you mean 'cka_linear'"),
    (["--measures", "rsa", "logme", "--matrix", "SIM"], r"--measures logme: these are computed from features"),
    (["--protocol", "ddss"], r"invalid choice: 'ddss'"),
    (["--ci", "-1"], r"--ci"),
])
def test_cli_bad_measures(capsys: pytest.CaptureFixture[str], sim_csv: Path, demo_dir: Path, extra: list[str],
                          match: str) -> None:
    source = [] if "--matrix" in extra else ["--features", str(demo_dir)]
    argv = ["evaluate", *source, "--truth", "taskonomy-affinity", *[str(sim_csv) if a == "SIM" else a for a in extra]]
    with pytest.raises(SystemExit) if "--protocol" in extra else _nothing():
        code, out, err = run(capsys, *argv)
        assert code == 2, err
        assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("rsa-toolkit: error: "), err
        assert re.search(match, err), err
        assert out == ""
    if "--protocol" in extra:
        assert re.search(match, capsys.readouterr().err)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


# --------------------------------------------------------------------------- intervals of rho


NAMES = ["normal", "depth_zbuffer", "curvature", "reshading", "edge_texture"]


def write_losses(directory: Path, *, seeds: int = 3, splits: int = 2, m: int = 40, noise: float = 0.1,
                 seed: int = 0) -> tuple[Path, np.ndarray]:
    """A transfer run's files: losses.npz ("<source>/<target>" -> (seeds, splits, M)) and its transfer.csv."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 1.0, size=(len(NAMES), len(NAMES)))
    arrays, gain = {}, np.empty_like(base)
    for j, t in enumerate(NAMES):
        pixels = 1.0 + noise * rng.normal(size=(seeds, splits, m))
        arrays[f"pixels/{t}"] = pixels
        for i, s in enumerate(NAMES):
            arrays[f"{s}/{t}"] = base[i, j] * (1.0 + noise * rng.normal(size=(seeds, splits, m)))
            gain[i, j] = 1.0 - arrays[f"{s}/{t}"].mean() / pixels.mean()
    np.savez(directory / "losses.npz", test_seeds=np.arange(m), **arrays)
    (directory / "transfer.csv").write_text(
        "," + ",".join(NAMES) + "\n" + "".join(f"{s}," + ",".join(repr(float(v)) for v in row) + "\n"
                                              for s, row in zip(NAMES, gain)))
    return directory / "transfer.csv", gain


def test_truth_samples_from_losses(tmp_path: Path) -> None:
    path, gain = write_losses(tmp_path)
    truth = read_ground_truth_csv(path, name=str(path))
    samples = truth_samples_from_losses(truth, n_resamples=50, seed=1)
    assert len(samples) == 50 and all(s.values.shape == (5, 5) for s in samples)
    stack = np.stack([s.values for s in samples])
    assert np.allclose(stack.mean(axis=0), gain, atol=0.05) and (stack.std(axis=0) > 0).all()
    again = truth_samples_from_losses(truth, n_resamples=50, seed=1)
    assert all(np.array_equal(a.values, b.values) for a, b in zip(samples, again))  # seeded
    # without noise every resample is the truth itself, so the interval collapses to the point value
    quiet, _ = write_losses(tmp_path, noise=0.0)
    quiet_truth = read_ground_truth_csv(quiet, name=str(quiet))
    sim = np.random.default_rng(2).random((5, 5))
    intervals = rho_intervals(sim, NAMES, quiet_truth,
                              truth_samples=truth_samples_from_losses(quiet_truth, n_resamples=10))
    point = evaluate_similarity(sim, NAMES, quiet_truth)
    for t in point.per_target:
        low, high = intervals[t.target]["spearman_with_diagonal"]
        assert low == pytest.approx(t.spearman_with_diagonal) and high == pytest.approx(t.spearman_with_diagonal)
    # a truth with no losses beside it has no samples
    assert truth_samples_from_losses(load_ground_truth("taskonomy-affinity"), n_resamples=5) is None
    # nor has another table of the same run (the AHP affinities): the losses resample the loss gain only
    ahp = tmp_path / "ahp.csv"
    ahp.write_text(path.read_text())
    assert truth_samples_from_losses(read_ground_truth_csv(ahp, name=str(ahp)), n_resamples=5) is None


def test_cli_ci_from_the_truths_losses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path, _ = write_losses(tmp_path)
    sim = np.random.default_rng(3).random((5, 5))
    write_matrix_csv((sim + sim.T) / 2, NAMES, tmp_path / "sim.csv")
    code, out, err = run(capsys, "evaluate", "--matrix", tmp_path / "sim.csv", "--truth", path, "--ci", "20")
    assert code == 0, err
    assert "rho+diag CI" in out and "rho intervals: 20 resamples of the truth's readout seeds" in out
    code, out, err = run(capsys, "evaluate", "--matrix", tmp_path / "sim.csv", "--truth", "taskonomy-affinity",
                         "--ci", "20")
    assert code == 2 and "has no per-seed losses.npz" in err


def test_image_bootstrap_intervals(demo_features: dict[str, np.ndarray]) -> None:
    truth = load_ground_truth("taskonomy-affinity")
    results = evaluate_measures(demo_features, truth, measures=["rsa", "cka_linear"], n_resamples=8, seed=0)
    for r in results:
        (intervals,), (method,) = r.intervals, r.ci_method
        assert method.startswith("8 bootstrap resamples of the 24 probe images; the truth has no per-seed losses")
        assert set(intervals) == {t.target for t in r.evaluations[0].per_target}
        for per in intervals.values():
            low, high = per["spearman_with_diagonal"]
            assert low <= high


def test_cli_measures_html(capsys: pytest.CaptureFixture[str], demo_dir: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "eval.html"
    code, out, err = run(capsys, "evaluate", "--features", demo_dir, "--truth", "taskonomy-affinity", "--measures",
                         "rsa", "parc", "--protocol", "dds", "--out", out_path)
    assert code == 0, err
    html = out_path.read_text()
    assert "parc vs taskonomy-affinity (protocol dds): mean rho" in html
    assert "rsa vs taskonomy-affinity (protocol dds): mean rho" in html


def test_cli_ci_on_features_says_what_it_includes(capsys: pytest.CaptureFixture[str], demo_dir: Path) -> None:
    code, out, err = run(capsys, "evaluate", "--features", demo_dir, "--truth", "taskonomy-affinity", "--ci", "5",
                         "--json")
    assert code == 0, err
    e = json.loads(out)["evaluations"][0]
    assert e["ci_method"].startswith("5 bootstrap resamples of the 24 probe images; the truth has no per-seed")
    assert set(e["rho_intervals"]) == {t["target"] for t in e["per_target"]}
