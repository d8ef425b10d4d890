"""Scoring a similarity matrix against transfer ground truth: the arithmetic on a hand-computed case, the shipped
Taskonomy tables (names and published values), perfect and reversed matrices, missing tasks and cells, ties,
invariances (hypothesis), and ``rsa-toolkit evaluate`` with its outputs and every bad input (exit 2, one line)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rsa_toolkit.cli.main import main
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.evaluation import evaluate_similarity
from rsa_toolkit.features.store import load_features_dir
from rsa_toolkit.analysis.ground_truth import (
    DATA_ENV,
    GROUND_TRUTHS,
    GroundTruth,
    data_dir,
    load_ground_truth,
    read_ground_truth_csv,
)
from rsa_toolkit.viz.outputs import write_matrix_csv
from rsa_toolkit.rsa.similarity import similarity_matrix
from rsa_toolkit.tasks import list_tasks

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "taskonomy"

# --------------------------------------------------------------------------- the hand-computed 4 x 4 case

NAMES = ["A", "B", "C", "D"]
#               A    B    C    D      (symmetric, 1 on the diagonal, as an RSA matrix)
SIM = np.array([[1.0, 0.8, 0.3, 0.1],
                [0.8, 1.0, 0.5, 0.2],
                [0.3, 0.5, 1.0, 0.7],
                [0.1, 0.2, 0.7, 1.0]])
#   rows = sources, columns = targets
TRUTH = np.array([[0.9, 0.6, 0.2, 0.3],
                  [0.7, 0.8, 0.1, 0.4],
                  [0.1, 0.5, 0.9, 0.2],
                  [0.4, 0.3, 0.6, 0.95]])
# Spearman from ranks, rho = 1 - 6 sum d^2 / (n (n^2 - 1)):
#   target A, all 4 sources: S ranks (4,3,2,1), G ranks (4,3,1,2): sum d^2 = 2 -> 1 - 12/60 = 0.8
#             without A:     S ranks (3,2,1),   G ranks (3,1,2):   sum d^2 = 2 -> 1 - 12/24 = 0.5
#   target B: S (3,4,2,1) = G (3,4,2,1) -> 1; without B: (3,2,1) = (3,2,1) -> 1
#   target C: S (1,2,4,3), G (2,1,4,3): 2 -> 0.8; without C: S (1,2,3), G (2,1,3): 2 -> 0.5
#   target D: S (1,2,3,4), G (2,3,1,4): 6 -> 1 - 36/60 = 0.4; without D: S (1,2,3), G (2,3,1): 6 -> 1 - 36/24 = -0.5
EXPECTED_WITH = {"A": 0.8, "B": 1.0, "C": 0.8, "D": 0.4}
EXPECTED_WITHOUT = {"A": 0.5, "B": 1.0, "C": 0.5, "D": -0.5}
# Weighted tau, weights 1/(r+1) by decreasing rank r = 0, 1, 2, a swap weighing w_i + w_j (sum over the 3 pairs
# 11/3), averaged over the ranking by S and by G. Target D without D: S = (.1, .2, .7), G = (.3, .4, .2):
#   by S (C, B, A): CB discordant 3/2, CA discordant 4/3, BA concordant 5/6 -> (5/6 - 17/6) / (11/3) = -6/11
#   by G (B, A, C): BA concordant 3/2, BC discordant 4/3, AC discordant 5/6 -> (9/6 - 13/6) / (11/3) = -2/11
#   average -4/11. Targets A and C: one discordant pair of weight 5/6 in both rankings -> 6/11. Target B: 1.
EXPECTED_TAU = {"A": 6 / 11, "B": 1.0, "C": 6 / 11, "D": -4 / 11}
# Best true source without the diagonal vs the most similar: A: B vs B, B: A vs A, C: D vs D, D: B vs C (miss).
EXPECTED_TOP1 = {"A": True, "B": True, "C": True, "D": False}


def truth(values: np.ndarray = TRUTH, sources: list[str] = NAMES, targets: list[str] = NAMES) -> GroundTruth:
    return GroundTruth(values=np.asarray(values, dtype=float), sources=list(sources), targets=list(targets),
                       name="hand")


def by_target(evaluation, field: str) -> dict[str, object]:
    return {t.target: getattr(t, field) for t in evaluation.per_target}


def test_hand_computed_per_target_scores() -> None:
    e = evaluate_similarity(SIM, NAMES, truth())
    assert by_target(e, "spearman_with_diagonal") == pytest.approx(EXPECTED_WITH, abs=1e-12)
    assert by_target(e, "spearman_without_diagonal") == pytest.approx(EXPECTED_WITHOUT, abs=1e-12)
    assert by_target(e, "weighted_tau") == pytest.approx(EXPECTED_TAU, abs=1e-12)
    assert by_target(e, "top1_hit") == EXPECTED_TOP1
    assert by_target(e, "top3_hit") == dict.fromkeys(NAMES, True)  # 3 candidates: top-3 cannot miss
    assert by_target(e, "best_sources") == {"A": ("B",), "B": ("A",), "C": ("D",), "D": ("B",)}
    assert by_target(e, "most_similar")["D"] == ("C", "B", "A")


def test_hand_computed_means_and_rates() -> None:
    e = evaluate_similarity(SIM, NAMES, truth())
    assert e.mean_spearman_with_diagonal == pytest.approx(0.75, abs=1e-12)  # (0.8 + 1 + 0.8 + 0.4) / 4
    assert e.mean_spearman_without_diagonal == pytest.approx(0.375, abs=1e-12)  # (0.5 + 1 + 0.5 - 0.5) / 4
    assert e.mean_weighted_tau == pytest.approx(19 / 44, abs=1e-12)  # (6/11 + 1 + 6/11 - 4/11) / 4
    assert e.top1_hit_rate == 0.75 and e.top3_hit_rate == 1.0
    assert e.top1_chance == pytest.approx(1 / 3) and e.top3_chance == 1.0  # one best of 3 candidates
    assert e.unscored_targets == () and e.not_truth_targets == () and e.not_in_similarity == ()


def test_scores_match_scipy_on_a_random_case() -> None:
    rng = np.random.default_rng(3)
    names = [f"t{i}" for i in range(9)]
    sim, gt = rng.random((9, 9)), rng.random((9, 9))
    e = evaluate_similarity(sim, names, truth(gt, names, names))
    for j, t in enumerate(e.per_target):
        others = [i for i in range(9) if i != j]
        assert t.spearman_with_diagonal == pytest.approx(stats.spearmanr(sim[:, j], gt[:, j]).statistic)
        assert t.spearman_without_diagonal == pytest.approx(stats.spearmanr(sim[others, j], gt[others, j]).statistic)
        assert t.weighted_tau == pytest.approx(stats.weightedtau(sim[others, j], gt[others, j]).statistic)
        assert t.top1_hit == (others[np.argmax(sim[others, j])] == others[np.argmax(gt[others, j])])


# --------------------------------------------------------------------------- perfect, reversed, missing, ties


def taskonomy_square(name: str = "taskonomy-affinity") -> tuple[np.ndarray, list[str], GroundTruth]:
    """The ground truth's block on the tasks that are both sources and targets: G[s, t] as a 'similarity'."""
    gt = load_ground_truth(name)
    common = [t for t in gt.targets if t in gt.sources]
    block = gt.values[np.ix_([gt.sources.index(t) for t in common], [gt.targets.index(t) for t in common])]
    return block, common, gt


def test_matrix_equal_to_the_ground_truth_scores_one_and_reversed_minus_one() -> None:
    block, names, gt = taskonomy_square()
    assert len(names) == 17
    perfect = evaluate_similarity(block, names, gt)
    assert perfect.mean_spearman_with_diagonal == pytest.approx(1.0)
    assert perfect.mean_spearman_without_diagonal == pytest.approx(1.0)
    assert perfect.mean_weighted_tau == pytest.approx(1.0)
    assert perfect.top1_hit_rate == 1.0 and perfect.top3_hit_rate == 1.0
    reversed_ = evaluate_similarity(-block, names, gt)
    assert all(t.spearman_with_diagonal == pytest.approx(-1.0) for t in reversed_.per_target)
    assert reversed_.mean_spearman_without_diagonal == pytest.approx(-1.0)
    assert reversed_.mean_weighted_tau == pytest.approx(-1.0)
    assert reversed_.top1_hit_rate == 0.0 and reversed_.top3_hit_rate == 0.0


def test_a_symmetric_matrix_ranking_sources_like_the_truth_scores_one() -> None:
    # An RSA matrix is symmetric while transfer is not; here the truth is symmetric and the similarity is a monotone
    # function of it, so every column ranks the sources in the same order on both sides.
    g = np.array([[9, 5, 1, 2], [5, 9, 3, 4], [1, 3, 9, 6], [2, 4, 6, 9]], dtype=float)
    e = evaluate_similarity(np.exp(g / 9), NAMES, truth(g))
    assert e.mean_spearman_with_diagonal == pytest.approx(1.0)
    assert e.mean_spearman_without_diagonal == pytest.approx(1.0)
    assert e.top1_hit_rate == 1.0


def test_missing_tasks_are_reported_and_aliases_match() -> None:
    # the similarity has an alias (rgb2depth), a non-task teacher, and lacks most tasks
    names = ["rgb2depth", "normals", "curvature", "reshade", "my_net", "colorization"]
    rng = np.random.default_rng(0)
    sim = rng.random((6, 6))
    gt = load_ground_truth("taskonomy-affinity")
    e = evaluate_similarity(sim, names, gt)
    assert [t.target for t in e.per_target] == ["depth_zbuffer", "normal", "curvature", "reshading"]
    assert e.sources == ("depth_zbuffer", "normal", "curvature", "reshading", "colorization")
    assert e.not_truth_targets == ("my_net", "colorization")  # colorization is a source only in Taskonomy
    assert e.not_truth_sources == ("my_net",)
    assert set(e.not_in_similarity) == set(gt.sources) - {"depth_zbuffer", "normal", "curvature", "reshading",
                                                          "colorization"}
    depth = e.per_target[0]
    assert depth.sources == ("colorization", "curvature", "normal", "reshading")
    column = gt.values[:, gt.targets.index("depth_zbuffer")]
    rows = [gt.sources.index(s) for s in depth.sources]
    expected = stats.spearmanr(sim[[5, 2, 1, 3], 0], column[rows]).statistic
    assert depth.spearman_without_diagonal == pytest.approx(expected)


def test_missing_cells_are_skipped_and_too_few_sources_give_nan() -> None:
    gt = TRUTH.copy()
    gt[1, 0] = np.nan  # target A loses source B: 2 others left -> the without-diagonal variant is undefined
    e = evaluate_similarity(SIM, NAMES, truth(gt))
    a = e.per_target[0]
    assert a.sources == ("C", "D") and math.isnan(a.spearman_without_diagonal) and a.top1_hit is None
    # with the diagonal, 3 sources remain: S (1.0, .3, .1) ranks (3,2,1), G (.9, .1, .4) ranks (3,1,2) -> 0.5
    assert a.spearman_with_diagonal == pytest.approx(0.5)
    assert e.unscored_targets == ("A",)
    assert e.n_scored("spearman_without_diagonal") == 3 and e.n_scored("spearman_with_diagonal") == 4
    assert e.mean_spearman_without_diagonal == pytest.approx((1.0 + 0.5 - 0.5) / 3)
    assert e.top1_hit_rate == pytest.approx(2 / 3)


def test_constant_values_give_nan_not_a_warning() -> None:
    gt = TRUTH.copy()
    gt[:, 1] = 0.5  # target B: every source transfers equally
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning would be an error here
        e = evaluate_similarity(SIM, NAMES, truth(gt))
    b = e.per_target[1]
    assert math.isnan(b.spearman_with_diagonal) and math.isnan(b.weighted_tau)
    assert b.best_sources == ("A", "C", "D") and b.top1_hit is True  # every source is a best one
    assert "B" in e.unscored_targets


def test_ties_are_deterministic() -> None:
    sim = SIM.copy()
    sim[2, 3] = sim[3, 2] = sim[1, 3] = sim[3, 1] = 0.7  # target D: B and C tie as most similar
    e = evaluate_similarity(sim, NAMES, truth())
    assert e.per_target[3].most_similar == ("B", "C", "A")  # ties broken by name
    assert e.per_target[3].top1_hit is True
    gt = TRUTH.copy()
    gt[2, 0] = gt[1, 0]  # target A: B and C are equally good true sources; B is also the most similar
    tied = evaluate_similarity(SIM, NAMES, truth(gt))
    assert tied.per_target[0].best_sources == ("B", "C")
    # a random ranking hits one of 2 best among 3 sources with 1 - C(1, 1)/C(3, 1) = 2/3; the other targets 1/3
    assert tied.top1_chance == pytest.approx((2 / 3 + 3 * (1 / 3)) / 4)


def test_non_square_ground_truth() -> None:
    # 2 targets (C, D) and 4 sources: only C and D are scored, A and B are reported as not targets
    e = evaluate_similarity(SIM, NAMES, truth(TRUTH[:, 2:], NAMES, ["C", "D"]))
    assert [t.target for t in e.per_target] == ["C", "D"]
    assert by_target(e, "spearman_with_diagonal") == pytest.approx({"C": 0.8, "D": 0.4})
    assert e.not_truth_targets == ("A", "B") and e.not_truth_sources == ()


@pytest.mark.parametrize(("sim", "names", "gt", "match"), [
    (SIM, ["w", "x", "y", "z"], truth(), "share no task"),
    (SIM, NAMES, truth(TRUTH[:, :1], ["p", "q", "r", "s"], ["A"]), "share no source"),
    (SIM[:3], NAMES, truth(), r"similarity must be \(4, 4\)"),
    (np.where(np.eye(4) > 0, np.nan, SIM), NAMES, truth(), "NaN or infinite"),
    (SIM, ["depth", "rgb2depth", "C", "D"], truth(), "'depth' and 'rgb2depth' both denote 'depth_zbuffer'"),
    (SIM, NAMES, truth(TRUTH[:3]), r"ground truth 'hand': values must be \(4, 4\)"),
])
def test_bad_inputs_raise(sim: np.ndarray, names: list[str], gt: GroundTruth, match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        evaluate_similarity(sim, names, gt)


def test_lower_is_better_ground_truth_is_negated() -> None:
    loss = GroundTruth(values=-TRUTH, sources=NAMES, targets=NAMES, name="loss", higher_is_better=False)
    e = evaluate_similarity(SIM, NAMES, loss)
    assert by_target(e, "spearman_with_diagonal") == pytest.approx(EXPECTED_WITH, abs=1e-12)
    assert by_target(e, "best_sources") == {"A": ("B",), "B": ("A",), "C": ("D",), "D": ("B",)}


def test_inputs_not_mutated() -> None:
    sim, gt = SIM.copy(), truth(TRUTH.copy())
    evaluate_similarity(sim, NAMES, gt)
    assert np.array_equal(sim, SIM) and np.array_equal(gt.values, TRUTH)


# --------------------------------------------------------------------------- invariances


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    t = draw(st.integers(4, 8))
    ints = st.integers(-20, 20)  # small integers: ties happen, and x**3 + 5x is exact in float64
    sim = np.array(draw(st.lists(ints, min_size=t * t, max_size=t * t)), dtype=float).reshape(t, t)
    gt = np.array(draw(st.lists(ints, min_size=t * t, max_size=t * t)), dtype=float).reshape(t, t)
    return sim, gt


SCORE_FIELDS = ("spearman_with_diagonal", "spearman_without_diagonal", "weighted_tau", "top1_hit", "top3_hit")


def scores(sim: np.ndarray, gt: np.ndarray) -> list[tuple]:
    names = [f"t{i}" for i in range(len(sim))]
    e = evaluate_similarity(sim, names, truth(gt, names, names))
    return [tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in (getattr(t, f) for f in SCORE_FIELDS))
            for t in e.per_target]


@given(cases())
@settings(max_examples=40, deadline=None)
def test_scores_invariant_to_a_monotone_transform_of_the_similarity(case: tuple[np.ndarray, np.ndarray]) -> None:
    sim, gt = case
    assert scores(sim**3 + 5 * sim, gt) == scores(sim, gt)


@given(cases())
@settings(max_examples=40, deadline=None)
def test_negating_the_similarity_negates_the_spearman(case: tuple[np.ndarray, np.ndarray]) -> None:
    sim, gt = case
    names = [f"t{i}" for i in range(len(sim))]
    a = evaluate_similarity(sim, names, truth(gt, names, names))
    b = evaluate_similarity(-sim, names, truth(gt, names, names))
    for x, y in zip(a.per_target, b.per_target):
        for field in ("spearman_with_diagonal", "spearman_without_diagonal"):
            u, v = getattr(x, field), getattr(y, field)
            assert (math.isnan(u) and math.isnan(v)) or u == pytest.approx(-v, abs=1e-12)
            assert math.isnan(u) or -1 - 1e-12 <= u <= 1 + 1e-12


@given(cases(), st.data())
@settings(max_examples=25, deadline=None)
def test_scores_do_not_depend_on_the_order_of_the_tasks(case: tuple[np.ndarray, np.ndarray],
                                                        data: st.DataObject) -> None:
    sim, gt = case
    names = [f"t{i}" for i in range(len(sim))]
    perm = data.draw(st.permutations(range(len(sim))))
    a = evaluate_similarity(sim, names, truth(gt, names, names))
    b = evaluate_similarity(sim[np.ix_(perm, perm)], [names[i] for i in perm], truth(gt, names, names))
    key = lambda e: {t.target: tuple(str(getattr(t, f)) for f in SCORE_FIELDS) for t in e.per_target}  # noqa: E731
    assert key(a) == key(b)


# --------------------------------------------------------------------------- the shipped ground truth


SINGLE_IMAGE = [t.name for t in list_tasks()]


def test_taskonomy_tables_have_canonical_names_in_registry_order() -> None:
    affinity = load_ground_truth("taskonomy-affinity")
    assert affinity.values.shape == (19, 17) and affinity.higher_is_better
    assert affinity.sources == [t for t in SINGLE_IMAGE if t != "class_scene"]  # no class_places row in the pickle
    assert affinity.targets == [t for t in SINGLE_IMAGE if t not in ("class_scene", "colorization", "inpainting")]
    winrate = load_ground_truth("taskonomy-winrate")
    assert winrate.values.shape == (20, 18)
    assert winrate.sources == SINGLE_IMAGE
    assert winrate.targets == [t for t in SINGLE_IMAGE if t not in ("colorization", "inpainting")]
    assert not np.isnan(affinity.values).any() and not np.isnan(winrate.values).any()  # the pickles are complete


# (table, pickle source key -> pickle target key, value) straight from ../shared/reference/taskonomy, and where the
# value must land under our canonical names
PUBLISHED = [
    ("taskonomy-affinity", "rgb2depth -> rgb2sfnorm", 0.008321187699060314, "depth_zbuffer", "normal"),
    ("taskonomy-affinity", "segmentsemantic_rb -> class_1000", 0.024686631498608665, "segment_semantic",
     "class_object"),
    ("taskonomy-affinity", "vanishing_point_well_defined -> segmentsemantic_rb", 0.0070250319573711365,
     "vanishing_point", "segment_semantic"),
    ("taskonomy-affinity", "rgb2sfnorm -> rgb2depth", 0.029981226170340863, "normal", "depth_zbuffer"),
    ("taskonomy-winrate", "impainting_whole -> vanishing_point_well_defined", 0.5850773957910603, "inpainting",
     "vanishing_point"),
    ("taskonomy-winrate", "class_places -> class_places", 0.9196819543673658, "class_scene", "class_scene"),
    ("taskonomy-winrate", "rgb2mist -> rgb2depth", 0.872320811246831, "depth_euclidean", "depth_zbuffer"),
]


@pytest.mark.parametrize(("name", "pickle_keys", "value", "source", "target"), PUBLISHED)
def test_published_values_land_under_the_right_names(name: str, pickle_keys: str, value: float, source: str,
                                                     target: str) -> None:
    gt = load_ground_truth(name)
    assert gt.values[gt.sources.index(source), gt.targets.index(target)] == value


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the Taskonomy reference tables are not beside this checkout")
def test_the_script_regenerates_the_shipped_tables(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_taskonomy_ground_truth.py"),
                             str(REFERENCE), "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    shipped = sorted(p.name for p in (ROOT / "data" / "taskonomy").glob("*.csv"))
    assert shipped == sorted(p.name for p in tmp_path.glob("*.csv")) and len(shipped) == 2
    for name in shipped:
        assert (tmp_path / name).read_bytes() == (ROOT / "data" / "taskonomy" / name).read_bytes(), name
    assert "dropped sources: class_selected, ego_motion, fix_pose, jigsaw, non_fixated_pose, point_match, random, " \
           "self" in result.stdout


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the Taskonomy reference tables are not beside this checkout")
@pytest.mark.parametrize(("name", "table"), [("taskonomy-affinity", "taskonomy_all_affinities_17x17_dds_order.csv"),
                                             ("taskonomy-winrate", "taskonomy_wins_vs_pixels_16k_17x17_dds_order.csv")])
def test_the_dds_17x17_blocks_are_inside_the_shipped_tables(name: str, table: str) -> None:
    # An independent route to the names: the DDS tables use the pickle keys, resolved here by the task aliases.
    ours, dds = load_ground_truth(name), read_ground_truth_csv(REFERENCE / table)
    assert dds.sources == dds.targets and len(dds.sources) == 17
    block = ours.values[np.ix_([ours.sources.index(s) for s in dds.sources],
                               [ours.targets.index(t) for t in dds.targets])]
    assert np.array_equal(block, dds.values)


def test_data_dir_override_and_missing_mini_transfer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_dir() == ROOT / "data"
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_dir() == tmp_path
    with pytest.raises(UserInputError, match=r"ground truth 'mini-transfer': '.*transfer\.csv' is missing; create it "
                                             r"with `rsa-toolkit mini transfer`"):
        load_ground_truth("mini-transfer")
    with pytest.raises(UserInputError, match="'taskonomy-affinity': .* is missing; .*RSA_TOOLKIT_DATA"):
        load_ground_truth("taskonomy-affinity")
    (tmp_path / "mini_transfer").mkdir()
    (tmp_path / "mini_transfer" / "transfer.csv").write_text(",depth,normal\ndepth,0.9,0.5\nnormal,0.4,\n")
    gt = load_ground_truth("mini-transfer")
    assert gt.name == "mini-transfer" and gt.sources == gt.targets == ["depth_zbuffer", "normal"]
    assert gt.values[0].tolist() == [0.9, 0.5] and gt.values[1, 0] == 0.4 and math.isnan(gt.values[1, 1])


def test_user_csv_resolves_aliases_and_keeps_other_names(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("source\\target,rgb2depth,my_net\nnormals,0.5,\nmy_net,0.25,1\n\n")
    gt = load_ground_truth(str(path))
    assert gt.sources == ["normal", "my_net"] and gt.targets == ["depth_zbuffer", "my_net"]
    assert gt.name == str(path) and gt.values[1].tolist() == [0.25, 1.0] and math.isnan(gt.values[0, 1])


@pytest.mark.parametrize(("text", "match"), [
    (",a,b\nx,1\n", "row 'x' has 1 values, the header names 2 targets"),
    (",a,b\nx,1,high\n", r"cell \(source 'x', target 'b'\) is 'high', not a finite number"),
    (",a,b\nx,1,inf\n", "'inf', not a finite number"),
    (",a,b\nx,,\n", "holds no values"),
    (",depth,rgb2depth\nx,1,2\n", "targets 'depth' and 'rgb2depth' both denote 'depth_zbuffer'"),
    (",a\n,1\n", "a source name is empty"),
    (",a,b\n", "needs a header row"),
])
def test_bad_ground_truth_csv(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "gt.csv"
    path.write_text(text)
    with pytest.raises(UserInputError, match=match):
        read_ground_truth_csv(path)


def test_unknown_ground_truth_name_lists_the_valid_ones() -> None:
    with pytest.raises(UserInputError, match=r"Unknown ground truth 'taskonomy-afinity'\. Did you mean "
                                             r"'taskonomy-affinity'.*Available: taskonomy-affinity, taskonomy-winrate, "
                                             r"mini-transfer, or the path of a CSV file\."):
        load_ground_truth("taskonomy-afinity")
    assert GROUND_TRUTHS.names() == ["taskonomy-affinity", "taskonomy-winrate", "mini-transfer"]


# --------------------------------------------------------------------------- the command line


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, match: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.endswith("\n"), repr(err)
    assert err.startswith("rsa-toolkit: error: "), err
    assert re.search(match, err), (match, err)


@pytest.fixture()
def self_csv(tmp_path: Path) -> Path:
    """The Taskonomy affinity block (17 x 17) saved as a similarity CSV."""
    block, names, _ = taskonomy_square()
    write_matrix_csv(block, names, tmp_path / "self.csv")
    return tmp_path / "self.csv"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "demo-features"
    assert main(["demo-features", str(directory), "--images", "24", "--quiet"]) == 0
    return directory


def test_cli_table(capsys: pytest.CaptureFixture[str], self_csv: Path) -> None:
    code, out, err = run(capsys, "evaluate", "--matrix", self_csv, "--truth", "taskonomy-affinity")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("ground truth: taskonomy-affinity — Taskonomy first-order")
    assert re.search(r"^depth_zbuffer\s+16\s+1\.0000\s+1\.0000\s+1\.0000\s+yes\s+yes\s+depth_euclidean\s+"
                     r"depth_euclidean, reshading, keypoints3d$", out, re.M)
    # the label names the protocol actually run (it said "DDS protocol" whatever was scored)
    assert "mean Spearman, diagonal included (protocol all, 17 sources x 17 targets): 1.0000 over 17 targets" in out
    assert "top-1 hit rate: 1.00 (17/17 targets; a random ranking: 0.06)" in out
    assert "ground-truth tasks missing from the similarity matrix: colorization, inpainting" in out


def test_cli_json_with_several_truths(capsys: pytest.CaptureFixture[str], self_csv: Path) -> None:
    code, out, _ = run(capsys, "evaluate", "--matrix", self_csv, "--truth", "taskonomy-affinity", "--truth",
                       "taskonomy-winrate", "--json")
    assert code == 0
    record = json.loads(out)
    assert record["similarity"] == str(self_csv) and len(record["teachers"]) == 17
    affinity, winrate = record["evaluations"]
    assert affinity["ground_truth"] == "taskonomy-affinity" and winrate["ground_truth"] == "taskonomy-winrate"
    assert affinity["mean_spearman_with_diagonal"] == pytest.approx(1.0)
    assert 0.5 < winrate["mean_spearman_with_diagonal"] < 1.0
    assert winrate["not_in_similarity"] == ["colorization", "inpainting", "class_scene"]
    assert affinity["n_scored"]["spearman_with_diagonal"] == 17
    first = affinity["per_target"][0]
    assert set(first) == {"target", "sources", "spearman_with_diagonal", "spearman_without_diagonal",
                          "weighted_tau", "best_sources", "most_similar", "top1_hit", "top3_hit"}


def test_cli_json_nan_is_null(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_matrix_csv(SIM, NAMES, tmp_path / "sim.csv")
    gt = TRUTH.copy()
    gt[1, 0] = np.nan
    (tmp_path / "gt.csv").write_text(",A,B,C,D\n" + "".join(
        f"{s}," + ",".join("" if math.isnan(v) else repr(float(v)) for v in row) + "\n" for s, row in zip(NAMES, gt)))
    code, out, _ = run(capsys, "evaluate", "--matrix", tmp_path / "sim.csv", "--truth", tmp_path / "gt.csv", "--json")
    assert code == 0
    a = json.loads(out)["evaluations"][0]["per_target"][0]
    assert a["spearman_without_diagonal"] is None and a["top1_hit"] is None
    assert a["spearman_with_diagonal"] == pytest.approx(0.5)


def test_cli_html(capsys: pytest.CaptureFixture[str], self_csv: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "eval.html"
    code, out, _ = run(capsys, "evaluate", "--matrix", self_csv, "--truth", "taskonomy-affinity", "--truth",
                       "taskonomy-winrate", "--out", out_path)
    assert code == 0 and f"wrote {out_path}" in out
    html = out_path.read_text()
    assert "<html>" in html[:100] and "plotly.js v" in html  # plotly.js inlined: works offline
    assert not re.search(r"<script[^>]*src=", html)
    assert "diagonal included" in html and "taskonomy-winrate (protocol all): mean rho" in html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.html", "self.csv"]  # no temporary file left


def test_cli_features_on_the_fly_equals_the_saved_matrix(capsys: pytest.CaptureFixture[str], demo_dir: Path,
                                                          tmp_path: Path) -> None:
    result = similarity_matrix(load_features_dir(demo_dir).as_dict())
    write_matrix_csv(result.matrix, result.names, tmp_path / "sim.csv")
    code, saved, _ = run(capsys, "evaluate", "--matrix", tmp_path / "sim.csv", "--truth", "taskonomy-affinity",
                         "--json")
    assert code == 0
    code, direct, err = run(capsys, "evaluate", "--features", demo_dir, "--truth", "taskonomy-affinity", "--json")
    assert code == 0, err
    saved, direct = json.loads(saved), json.loads(direct)
    assert direct["similarity"].startswith("spearman of correlation RDMs, 20 teachers x 24 images")
    assert direct["evaluations"] == saved["evaluations"]
    assert saved["evaluations"][0]["not_truth_targets"] == ["class_scene", "colorization", "inpainting"]


DDS17 = ["autoencoding", "curvature", "denoising", "edge_texture", "edge_occlusion", "keypoints2d", "keypoints3d",
         "reshading", "depth_zbuffer", "depth_euclidean", "normal", "room_layout", "segment_unsup25d",
         "segment_unsup2d", "vanishing_point", "segment_semantic", "class_object"]


def test_cli_tasks_restricts_the_matrix(capsys: pytest.CaptureFixture[str], demo_dir: Path, tmp_path: Path) -> None:
    result = similarity_matrix(load_features_dir(demo_dir).as_dict())
    write_matrix_csv(result.matrix, result.names, tmp_path / "sim.csv")
    code, out, err = run(capsys, "evaluate", "--matrix", tmp_path / "sim.csv", "--truth", "taskonomy-affinity",
                         "--json", "--tasks", *DDS17[:-1], "class_1000")  # an alias works too
    assert code == 0, err
    record = json.loads(out)
    assert sorted(record["teachers"]) == sorted(DDS17)
    assert record["similarity"].endswith("restricted to 17 teachers by --tasks")
    evaluation = record["evaluations"][0]
    assert evaluation["sources"] == record["teachers"] and evaluation["not_truth_targets"] == []
    keep = [result.names.index(n) for n in record["teachers"]]
    expected = evaluate_similarity(result.matrix[np.ix_(keep, keep)], record["teachers"],
                                   load_ground_truth("taskonomy-affinity"))
    assert evaluation["mean_spearman_with_diagonal"] == pytest.approx(expected.mean_spearman_with_diagonal)
    # from features, only the kept teachers are compared, and the result is the same sub-matrix
    code, out, err = run(capsys, "evaluate", "--features", demo_dir, "--truth", "taskonomy-affinity", "--json",
                         "--tasks", *DDS17)
    assert code == 0, err
    direct = json.loads(out)
    assert direct["similarity"].startswith("spearman of correlation RDMs, 17 teachers x 24 images")
    a, b = direct["evaluations"][0], record["evaluations"][0]
    for field in ("spearman_with_diagonal", "spearman_without_diagonal", "weighted_tau"):  # same up to BLAS rounding
        assert [t[field] for t in a["per_target"]] == pytest.approx([t[field] for t in b["per_target"]], abs=1e-9)
    code, _, err = run(capsys, "evaluate", "--features", demo_dir, "--truth", "taskonomy-affinity", "--tasks",
                       "depth", "nromal")
    assert_user_error(code, err, "--tasks: 'nromal' is not among the teachers. Did you mean 'normal'")


def test_cli_through_a_subprocess(self_csv: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "rsa_toolkit", "evaluate", "--matrix", str(self_csv), "--truth",
                             "taskonomy-affinity", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["evaluations"][0]["top1_hit_rate"] == 1.0


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("make_args", "match"), [
    (lambda d, m: ["--matrix", write(d / "x.csv", ",p,q,r\np,1,0,0\nq,0,1,0\nr,0,0,1\n"), "--truth",
                   "taskonomy-affinity"],
     "share no task: the matrix has p, q, r"),
    (lambda d, m: ["--matrix", write(d / "x.csv", ",normal,depth\nnormal,1,0.5\n"), "--truth", "taskonomy-affinity"],
     "needs a header row and at least two rows"),
    (lambda d, m: ["--matrix", write(d / "x.csv", ",normal,depth,curvature\nnormal,1,0.5,0.2\ndepth,0.5,1,0.1\n"
                                                  "curvature,0.2,0.1\n"), "--truth", "taskonomy-affinity"],
     "must be square"),
    (lambda d, m: ["--matrix", write(d / "x.csv", ",normal,depth,curvature\nnormal,1,0.5,0.2\ndepth,0.5,1,0.1\n"
                                                  "reshading,0.2,0.1,1\n"), "--truth", "taskonomy-affinity"],
     "same names in the first row and the first column"),
    (lambda d, m: ["--matrix", write(d / "x.csv", ",normal,depth,curvature\nnormal,1,0.5,x\ndepth,0.5,1,0.1\n"
                                                  "curvature,0.2,0.1,1\n"), "--truth", "taskonomy-affinity"],
     "non-numeric cell"),
    (lambda d, m: ["--matrix", m, "--truth", write(d / "gt.csv", ",normal,depth\nnormal,1,?\n")],
     r"cell \(source 'normal', target 'depth_zbuffer'\) is '\?'"),
    (lambda d, m: ["--matrix", m, "--truth", "taskonomy_affinity"],
     "Unknown ground truth 'taskonomy_affinity'. Did you mean 'taskonomy-affinity'.*Available: taskonomy-affinity, "
     "taskonomy-winrate, mini-transfer"),
    (lambda d, m: ["--matrix", d / "missing.csv", "--truth", "taskonomy-affinity"], "could not read matrix CSV"),
    (lambda d, m: ["--matrix", m, "--truth", d / "missing.csv"], "ground truth '.*missing.csv': no such file"),
    (lambda d, m: ["--matrix", m, "--truth", "taskonomy-affinity", "--out", d / "eval.png"], "ending in .html"),
    (lambda d, m: ["--matrix", m, "--truth", "taskonomy-affinity", "--out", d / "nodir" / "eval.html"],
     "does not exist"),
    (lambda d, m: ["--matrix", m, "--features", d, "--truth", "taskonomy-affinity"], "either --matrix CSV or"),
    (lambda d, m: ["--matrix", m, "--truth", "taskonomy-affinity", "--layer", "all"], "scores one matrix"),
])
def test_cli_bad_input(capsys: pytest.CaptureFixture[str], self_csv: Path, make_args, match: str) -> None:
    directory = self_csv.parent
    argv = [str(a) for a in make_args(directory, self_csv)]
    if "--out" not in argv:  # every failure must also leave no --out file behind
        argv += ["--out", str(directory / "eval.html")]
    before = sorted(p.name for p in directory.rglob("*"))
    code, out, err = run(capsys, "evaluate", *argv)
    assert_user_error(code, err, match)
    assert out == ""
    assert sorted(p.name for p in directory.rglob("*")) == before


def test_cli_requires_a_truth(capsys: pytest.CaptureFixture[str], self_csv: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--matrix", str(self_csv)])
    assert exc.value.code == 2 and "--truth" in capsys.readouterr().err
