"""Tests for rsa_toolkit.analysis.graph: clustering against scipy, the task graph against brute force, GraphML round trip."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.graph import (
    LINKAGE_METHODS,
    cluster_order,
    clusters,
    linkage_from_similarity,
    resolve_types,
    task_graph,
    write_graphml,
)
from rsa_toolkit.tasks import list_tasks


def _random_similarity(t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.uniform(-0.5, 1.0, (t, t))
    s = (a + a.T) / 2
    np.fill_diagonal(s, 1.0)
    return s


def _block_similarity(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A shuffled block matrix (0.8 within, 0.1 between, small noise) and each row's block label."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    s = np.where(labels[:, None] == labels[None, :], 0.8, 0.1) + rng.normal(0, 0.02, (len(labels),) * 2)
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    perm = rng.permutation(len(labels))
    return s[np.ix_(perm, perm)], labels[perm]


def test_cluster_order_groups_blocks_contiguously() -> None:
    s, labels = _block_similarity([3, 4, 2, 5])
    order = cluster_order(s)
    assert sorted(order.tolist()) == list(range(len(labels)))
    along = labels[order]
    assert np.count_nonzero(np.diff(along)) == 3  # four blocks -> exactly three boundaries
    np.testing.assert_array_equal(cluster_order(s), order)  # deterministic


@pytest.mark.parametrize("method", LINKAGE_METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linkage_matches_scipy(method: str, dtype: type) -> None:
    s = _random_similarity(9, seed=1).astype(dtype)
    ref = linkage(squareform(1.0 - s.astype(np.float64), checks=False), method=method, optimal_ordering=True)
    np.testing.assert_allclose(linkage_from_similarity(s, method=method), ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(cluster_order(s, method=method), leaves_list(ref))


def test_linkage_symmetrises_and_clamps_without_mutating() -> None:
    s = _random_similarity(6, seed=2)
    asym = s.copy()
    asym[0, 1] += 0.2
    asym[1, 0] -= 0.2
    asym[2, 3] = asym[3, 2] = 1.0 + 1e-9  # a hair above 1 must not give a negative distance
    before = asym.copy()
    z = linkage_from_similarity(asym)
    np.testing.assert_array_equal(asym, before)
    sym = (asym + asym.T) / 2
    np.testing.assert_allclose(z, linkage_from_similarity(np.minimum(sym, 1.0)))
    assert np.all(z[:, 2] >= 0)


def test_clusters_recover_blocks_with_labels_in_leaf_order() -> None:
    s, labels = _block_similarity([3, 4, 2], seed=3)
    found = clusters(s, 3)
    # Same partition as the blocks: a bijection between found and true labels.
    assert len(set(zip(found.tolist(), labels.tolist()))) == 3
    along = found[cluster_order(s)]
    assert along[0] == 0 and list(dict.fromkeys(along.tolist())) == [0, 1, 2]
    assert np.all(clusters(s, 1) == 0)


def test_single_task_is_handled() -> None:
    np.testing.assert_array_equal(cluster_order(np.ones((1, 1))), [0])
    np.testing.assert_array_equal(clusters(np.ones((1, 1)), 1), [0])
    with pytest.raises(UserInputError, match="at least 2 tasks"):
        linkage_from_similarity(np.ones((1, 1)))


@given(t=st.integers(2, 12), seed=st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_cluster_order_is_a_permutation(t: int, seed: int) -> None:
    assert sorted(cluster_order(_random_similarity(t, seed)).tolist()) == list(range(t))


def test_task_graph_all_pairs_with_types() -> None:
    names = ["depth", "normal", "class_object", "my_probe"]
    s = _random_similarity(4, seed=4)
    g = task_graph(s, names)
    assert list(g.nodes) == names
    assert [g.nodes[n]["type"] for n in names] == ["3D", "3D", "semantic", "other"]
    assert g.number_of_edges() == 6 and nx.number_of_selfloops(g) == 0
    for i, j in [(0, 1), (0, 3), (2, 3)]:
        w = g.edges[names[i], names[j]]["weight"]
        assert type(w) is float and w == pytest.approx(s[i, j])
    given_types = task_graph(s, names, types=["2D", None, "other", "low-dim geometric"])
    assert [given_types.nodes[n]["type"] for n in names] == ["2D", "3D", "other", "low-dim geometric"]


def test_task_graph_weights_are_symmetrised() -> None:
    s = np.array([[1.0, 0.2], [0.6, 1.0]])
    assert task_graph(s, ["a", "b"]).edges["a", "b"]["weight"] == pytest.approx(0.4)


def _brute_force_edges(s: np.ndarray, min_similarity: float | None, top_k: int | None) -> set[frozenset[int]]:
    t = len(s)
    edges = set()
    for i in range(t):
        others = sorted((j for j in range(t) if j != i), key=lambda j: (-s[i, j], j))
        for j in others:
            if min_similarity is not None and s[i, j] >= min_similarity:
                edges.add(frozenset((i, j)))
        for j in others[: top_k or 0]:
            edges.add(frozenset((i, j)))
    return edges


@pytest.mark.parametrize(("min_similarity", "top_k"), [(0.5, None), (None, 1), (None, 3), (0.6, 2), (None, 50)])
def test_task_graph_sparsification_matches_brute_force(min_similarity: float | None, top_k: int | None) -> None:
    s = _random_similarity(10, seed=5)
    names = [f"t{i}" for i in range(10)]
    g = task_graph(s, names, min_similarity=min_similarity, top_k=top_k)
    got = {frozenset((names.index(u), names.index(v))) for u, v in g.edges}
    assert got == _brute_force_edges(s, min_similarity, top_k)
    if top_k is not None:
        assert min(dict(g.degree).values()) >= min(top_k, 9)
    if min_similarity is not None and top_k is None:
        assert all(w >= min_similarity for _, _, w in g.edges(data="weight"))


def test_graphml_round_trip(tmp_path) -> None:
    tasks = list_tasks()[:6]
    names = [t.name for t in tasks]
    s = _random_similarity(6, seed=6)
    g = task_graph(s, names, top_k=2)
    g.nodes[names[0]]["score"] = np.float32(0.25)  # numpy scalars are made GraphML-safe
    path = tmp_path / "graph.graphml"
    write_graphml(g, path)
    back = nx.read_graphml(path)
    assert list(back.nodes) == names
    assert {n: d["type"] for n, d in back.nodes(data=True)} == {t.name: t.type for t in tasks}
    assert back.nodes[names[0]]["score"] == pytest.approx(0.25)
    assert {frozenset(e) for e in back.edges} == {frozenset(e) for e in g.edges}
    for u, v, w in g.edges(data="weight"):
        assert back.edges[u, v]["weight"] == pytest.approx(w, abs=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == ["graph.graphml"]  # no temporary file left behind


def test_write_graphml_bad_inputs(tmp_path) -> None:
    g = nx.Graph()
    g.add_node("a", extra={"not": "graphml"})
    with pytest.raises(UserInputError, match=r"attribute 'extra' of node 'a' is a dict"):
        write_graphml(g, tmp_path / "g.graphml")
    assert not list(tmp_path.iterdir())
    with pytest.raises(UserInputError, match="does not exist"):
        write_graphml(nx.Graph(), tmp_path / "missing" / "g.graphml")
    with pytest.raises(UserInputError, match="expected a networkx.Graph"):
        write_graphml({"a": 1}, tmp_path / "g.graphml")


@pytest.mark.parametrize(
    ("similarity", "names", "kwargs", "match"),
    [
        (np.ones((2, 3)), ["a", "b"], {}, r"similarity: expected a square T×T matrix .*got shape \(2, 3\)"),
        (np.ones(3), ["a", "b", "c"], {}, r"similarity: expected a square"),
        (np.ones((0, 0)), [], {}, r"similarity: expected a square"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), ["a", "b"], {}, r"similarity: expected finite values, got nan"),
        (np.array([[1.0, "x"], ["x", 1.0]], dtype=object), ["a", "b"], {}, r"similarity: expected a numeric"),
        (np.eye(3), ["a", "b"], {}, r"names: expected 3 names .*got 2"),
        (np.eye(2), "ab", {}, r"names: expected a sequence of task names, got str"),
        (np.eye(2), ["a", 1], {}, r"names: expected strings, got 1"),
        (np.eye(2), ["a", "a"], {}, r"names: expected unique names, got duplicates 'a'"),
        (np.eye(2), ["a", "b"], {"types": ["2D"]}, r"types: expected a sequence of 2 types .*got 1 types"),
        (np.eye(2), ["a", "b"], {"types": ["2D", "4D"]}, r"types: unknown type '4D' for 'b'. Available: 2D, 3D"),
        (np.eye(2), ["a", "b"], {"min_similarity": float("nan")}, r"min_similarity: expected a finite number"),
        (np.eye(2), ["a", "b"], {"top_k": 0}, r"top_k: expected an integer >= 1 or None, got 0"),
        (np.eye(2), ["a", "b"], {"top_k": True}, r"top_k: expected an integer >= 1"),
    ],
)
def test_task_graph_rejects_bad_input(similarity, names, kwargs, match) -> None:
    with pytest.raises(UserInputError, match=match):
        task_graph(similarity, names, **kwargs)


def test_clustering_rejects_bad_input() -> None:
    s = _random_similarity(4)
    with pytest.raises(UserInputError, match=r"method: unknown linkage method 'ward'. Available: average, complete"):
        cluster_order(s, method="ward")
    with pytest.raises(UserInputError, match=r"n_clusters: expected an integer between 1 and 4 .*got 5"):
        clusters(s, 5)
    with pytest.raises(UserInputError, match=r"similarity: expected finite values, got inf at \(0, 1\)"):
        s[0, 1] = np.inf
        linkage_from_similarity(s)


def test_resolve_types_uses_the_registry() -> None:
    assert resolve_types(["rgb2depth", "vp", "unknown"]) == ["3D", "low-dim geometric", "other"]
