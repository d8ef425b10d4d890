"""Ranking auxiliary teachers: hand-computed scores for each aggregate, targets excluded, deterministic ties, top-1
probabilities from bootstrap samples, target matching through task aliases, and the input errors."""

from __future__ import annotations

import numpy as np
import pytest

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.ranking import AGGREGATES, match_teachers, rank_auxiliaries
from rsa_toolkit.rsa.similarity import similarity_matrix

NAMES = ["alpha", "beta", "gamma", "delta"]
#                  alpha beta  gamma delta
SIM = np.array([[1.0, 0.2, 0.9, 0.1],
                [0.2, 1.0, 0.5, 0.6],
                [0.9, 0.5, 1.0, 0.3],
                [0.1, 0.6, 0.3, 1.0]])
TARGETS = ["gamma", "delta"]


@pytest.mark.parametrize(("aggregate", "expected"), [
    # alpha: (0.9, 0.1), beta: (0.5, 0.6) against (gamma, delta)
    ("mean", [("beta", 0.55), ("alpha", 0.5)]),
    ("min", [("beta", 0.5), ("alpha", 0.1)]),
    ("max", [("alpha", 0.9), ("beta", 0.6)]),
])
def test_aggregates_hand_computed(aggregate: str, expected: list[tuple[str, float]]) -> None:
    ranking = rank_auxiliaries(SIM, NAMES, TARGETS, aggregate=aggregate)
    assert [(c.name, pytest.approx(c.score, abs=1e-12)) for c in ranking] == expected
    assert all(c.top1_probability is None for c in ranking)


def test_default_aggregate_is_mean_and_per_target_values() -> None:
    ranking = rank_auxiliaries(SIM, NAMES, TARGETS)
    assert [c.name for c in ranking] == ["beta", "alpha"]
    assert ranking[0].per_target == {"gamma": 0.5, "delta": 0.6}
    assert ranking[1].per_target == {"gamma": 0.9, "delta": 0.1}
    assert isinstance(ranking[0].score, float)


def test_targets_are_excluded_and_exclude_option() -> None:
    ranking = rank_auxiliaries(SIM, NAMES, ["alpha"])
    assert [(c.name, c.score) for c in ranking] == [("gamma", 0.9), ("beta", 0.2), ("delta", 0.1)]
    assert "alpha" not in {c.name for c in ranking}
    ranking = rank_auxiliaries(SIM, NAMES, ["alpha"], exclude=["gamma"])
    assert [c.name for c in ranking] == ["beta", "delta"]


def test_single_target_ranks_its_column() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(size=(6, 6))
    sim = (a + a.T) / 2
    np.fill_diagonal(sim, 1.0)
    names = [f"t{i}" for i in range(6)]
    ranking = rank_auxiliaries(sim, names, ["t2"])
    expected = sorted((i for i in range(6) if i != 2), key=lambda i: -sim[i, 2])
    assert [c.name for c in ranking] == [names[i] for i in expected]
    np.testing.assert_array_equal([c.score for c in ranking], sim[expected, 2])


def test_ties_break_by_name_regardless_of_position() -> None:
    names = ["zeta", "target", "alpha", "mid"]
    sim = np.array([[1.0, 0.7, 0.0, 0.0],
                    [0.7, 1.0, 0.7, 0.4],
                    [0.0, 0.7, 1.0, 0.0],
                    [0.0, 0.4, 0.0, 1.0]])
    ranking = rank_auxiliaries(sim, names, ["target"])
    assert [c.name for c in ranking] == ["alpha", "zeta", "mid"]
    # the same when the names come in another order
    perm = [2, 3, 0, 1]
    ranking = rank_auxiliaries(sim[np.ix_(perm, perm)], [names[i] for i in perm], ["target"])
    assert [c.name for c in ranking] == ["alpha", "zeta", "mid"]


def test_top1_probability_hand_count() -> None:
    # 5 resamples of the 4x4 matrix; candidates alpha and beta, mean over (gamma, delta):
    #   s0: alpha .5,  beta .55 -> beta
    #   s1: alpha .8,  beta .5  -> alpha
    #   s2: alpha .6,  beta .6  -> tie -> alpha (by name)
    #   s3: alpha .1,  beta .9  -> beta
    #   s4: alpha .7,  beta .65 -> alpha
    pairs = [((0.9, 0.1), (0.5, 0.6)), ((0.8, 0.8), (0.5, 0.5)), ((0.6, 0.6), (0.7, 0.5)),
             ((0.1, 0.1), (0.9, 0.9)), ((0.7, 0.7), (0.6, 0.7))]
    samples = np.repeat(SIM[None], len(pairs), axis=0)
    for b, (alpha, beta) in enumerate(pairs):
        samples[b, 0, 2:] = samples[b, 2:, 0] = alpha
        samples[b, 1, 2:] = samples[b, 2:, 1] = beta
    ranking = rank_auxiliaries(SIM, NAMES, TARGETS, samples=samples)
    probs = {c.name: c.top1_probability for c in ranking}
    assert probs == {"alpha": pytest.approx(3 / 5), "beta": pytest.approx(2 / 5)}
    assert sum(probs.values()) == pytest.approx(1.0)
    # the point ranking still comes from the full matrix, not from the samples
    assert [c.name for c in ranking] == ["beta", "alpha"]


def test_top1_probability_from_bootstrap_sums_to_one() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(15, 10))
    features = {f"t{i}": base + (0.3 + 0.4 * i) * rng.normal(size=base.shape) for i in range(5)}
    result = similarity_matrix(features, n_bootstrap=20, seed=1)
    ranking = rank_auxiliaries(result.matrix, result.names, ["t0", "t1"], samples=result.bootstrap.samples)
    probs = np.array([c.top1_probability for c in ranking])
    assert len(ranking) == 3
    assert probs.sum() == pytest.approx(1.0)
    assert np.all((probs >= 0) & (probs <= 1))
    # hand count over the samples
    means = result.bootstrap.samples[:, 2:, :2].mean(axis=2)  # (B, candidates t2..t4)
    counts = np.bincount(means.argmax(axis=1), minlength=3) / len(means)
    assert {c.name: c.top1_probability for c in ranking} == {
        f"t{i + 2}": pytest.approx(counts[i]) for i in range(3)}


def test_match_teachers_with_aliases() -> None:
    names = ["rgb2depth", "rgb2sfnorm", "edge2d", "class_object", "my_net"]
    assert match_teachers(names, ["depth"]) == [0]
    assert match_teachers(names, ["normal", "depth_zbuffer", "edge_texture", "class_1000", "my_net"]) == [1, 0, 2, 3, 4]
    assert match_teachers(names, ["Depth", "SFNORM"]) == [0, 1]
    assert match_teachers(names, []) == []


def test_rank_with_alias_targets() -> None:
    names = ["rgb2depth", "rgb2sfnorm", "curvature", "edge2d"]
    sim = np.array([[1.0, 0.8, 0.6, 0.2],
                    [0.8, 1.0, 0.7, 0.1],
                    [0.6, 0.7, 1.0, 0.3],
                    [0.2, 0.1, 0.3, 1.0]])
    ranking = rank_auxiliaries(sim, names, ["depth", "normals"])
    assert [c.name for c in ranking] == ["curvature", "edge2d"]
    assert ranking[0].per_target == {"rgb2depth": 0.6, "rgb2sfnorm": 0.7}
    assert ranking[0].score == pytest.approx(0.65)


def test_unknown_target_suggests_closest() -> None:
    names = ["normal", "depth_zbuffer", "curvature", "reshading"]
    with pytest.raises(UserInputError,
                       match=r"Unknown target 'nromal': not a task name and not a teacher\. Did you mean 'normal'\?"):
        match_teachers(names, ["nromal"])
    with pytest.raises(UserInputError, match=r"Unknown target 'nromal'.*Teachers: normal, depth_zbuffer"):
        rank_auxiliaries(np.eye(4), names, ["nromal"])


def test_task_target_not_among_teachers() -> None:
    with pytest.raises(UserInputError,
                       match=r"Target 'depth' \(task depth_zbuffer\) is not among the teachers: alpha, beta"):
        rank_auxiliaries(SIM, NAMES, ["depth"])


def test_duplicate_target() -> None:
    with pytest.raises(UserInputError, match=r"target 'gamma' names the same teacher as another target \('gamma'\)"):
        rank_auxiliaries(SIM, NAMES, ["gamma", "gamma"])
    with pytest.raises(UserInputError, match=r"target 'rgb2depth' names the same teacher as another target"):
        match_teachers(["depth_zbuffer", "normal"], ["depth", "rgb2depth"])


def test_empty_targets() -> None:
    with pytest.raises(UserInputError, match=r"give at least one target task\."):
        rank_auxiliaries(SIM, NAMES, [])


@pytest.mark.parametrize("shape", [(3, 3), (4, 3), (4,), (1, 4, 4)])
def test_wrong_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(UserInputError, match=r"similarity must be \(4, 4\) for 4 names, got shape"):
        rank_auxiliaries(np.zeros(shape), NAMES, ["alpha"])


def test_every_teacher_a_target() -> None:
    with pytest.raises(UserInputError, match=r"no candidates left"):
        rank_auxiliaries(SIM, NAMES, ["alpha", "beta"], exclude=["gamma", "delta"])


def test_unknown_aggregate() -> None:
    assert AGGREGATES.names() == ["mean", "min", "max"]
    with pytest.raises(UserInputError, match=r"Unknown aggregate 'median'\. Did you mean .*Available: mean, min, max"):
        rank_auxiliaries(SIM, NAMES, ["alpha"], aggregate="median")


def test_non_finite_similarity() -> None:
    sim = SIM.copy()
    sim[0, 2] = np.nan
    with pytest.raises(UserInputError, match=r"similarity has NaN or infinite values"):
        rank_auxiliaries(sim, NAMES, TARGETS)


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3), (0, 4, 4)])
def test_samples_wrong_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(UserInputError, match=r"samples must be \(B, 4, 4\) bootstrap matrices, got shape"):
        rank_auxiliaries(SIM, NAMES, TARGETS, samples=np.zeros(shape))


def test_inputs_not_mutated() -> None:
    sim = SIM.copy()
    samples = np.repeat(SIM[None], 3, axis=0)
    samples_copy = samples.copy()
    rank_auxiliaries(sim, NAMES, TARGETS, samples=samples)
    np.testing.assert_array_equal(sim, SIM)
    np.testing.assert_array_equal(samples, samples_copy)
