"""The task graph and hierarchical clustering of a task-similarity matrix.

A task-similarity matrix ``S`` (T×T, e.g. Spearman correlations between RDMs; Dwivedi & Roig, CVPR 2019) becomes

- a dendrogram: average-linkage (by default) clustering on the distance ``D = 1 - (S + Sᵀ) / 2``, with scipy's
  optimal leaf ordering, whose leaf order puts related tasks next to each other in a heatmap;
- a weighted undirected graph (networkx) whose nodes are the tasks (attribute ``type``) and whose edges carry the
  similarity (attribute ``weight``), optionally sparsified by a threshold and/or each task's strongest neighbours.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

import networkx as nx
import numpy as np
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
from scipy.spatial.distance import squareform

from rsa_toolkit.files import atomic_path, check_output_path
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import TASK_TYPES, try_resolve_task
from rsa_toolkit.validation import check_int, check_number

__all__ = [
    "LINKAGE_METHODS",
    "OTHER_TYPE",
    "linkage_from_similarity",
    "cluster_order",
    "clusters",
    "resolve_types",
    "task_graph",
    "write_graphml",
]

# Only the methods that are valid for an arbitrary (non-Euclidean) dissimilarity; ward/centroid/median assume
# Euclidean distances, which 1 - correlation is not.
LINKAGE_METHODS = ("average", "complete", "single", "weighted")
OTHER_TYPE = "other"  # the type of a node that is not one of the 20 Taskonomy tasks


def linkage_from_similarity(similarity: np.ndarray, *, method: str = "average") -> np.ndarray:
    """Hierarchical clustering of tasks from their similarity matrix.

    The distance is ``D = 1 - (S + Sᵀ) / 2``, clamped to ``>= 0`` with an exact zero diagonal, then condensed and
    passed to :func:`scipy.cluster.hierarchy.linkage` with ``optimal_ordering=True``.

    Args:
        similarity: (T, T) similarity matrix, T >= 2, finite.
        method: one of :data:`LINKAGE_METHODS`.

    Returns:
        (T - 1, 4) scipy linkage matrix.
    """
    s = _check_similarity(similarity)
    _check_method(method)
    if s.shape[0] < 2:
        raise UserInputError(f"similarity: hierarchical clustering needs at least 2 tasks, got a {s.shape} matrix.")
    return _linkage(s, method)


def cluster_order(similarity: np.ndarray, *, method: str = "average") -> np.ndarray:
    """The dendrogram's leaf order: a permutation of ``range(T)`` that keeps similar tasks adjacent.

    Args:
        similarity: (T, T) similarity matrix, finite.
        method: one of :data:`LINKAGE_METHODS`.

    Returns:
        (T,) int array; ``similarity[np.ix_(order, order)]`` is the reordered matrix. Deterministic.
    """
    s = _check_similarity(similarity)
    _check_method(method)
    if s.shape[0] < 2:  # nothing to cluster; scipy's linkage refuses a single observation
        return np.arange(s.shape[0], dtype=np.intp)
    return leaves_list(_linkage(s, method)).astype(np.intp)


def clusters(similarity: np.ndarray, n_clusters: int, *, method: str = "average") -> np.ndarray:
    """Flat clusters: the dendrogram cut into at most ``n_clusters`` groups (scipy ``fcluster``, ``maxclust``).

    Labels are 0-based and numbered in dendrogram leaf order (the cluster of the first leaf is 0), so they are
    stable and match :func:`cluster_order`. Ties in merge heights can give fewer than ``n_clusters`` groups.

    Args:
        similarity: (T, T) similarity matrix, finite.
        n_clusters: 1 <= n_clusters <= T.
        method: one of :data:`LINKAGE_METHODS`.

    Returns:
        (T,) int array of cluster labels.
    """
    s = _check_similarity(similarity)
    _check_method(method)
    t = s.shape[0]
    check_int(n_clusters, name="n_clusters", minimum=1, maximum=t, form="expected",
              expected=f"an integer between 1 and {t} (the number of tasks)")
    if t < 2:
        return np.zeros(t, dtype=np.intp)
    z = _linkage(s, method)
    raw = fcluster(z, t=int(n_clusters), criterion="maxclust")
    # Renumber by first appearance along the leaf order: scipy's numbering is an implementation detail.
    relabel: dict[int, int] = {}
    for leaf in leaves_list(z):
        relabel.setdefault(int(raw[leaf]), len(relabel))
    return np.array([relabel[int(c)] for c in raw], dtype=np.intp)


def resolve_types(names: Sequence[str], types: Sequence[str | None] | None = None) -> list[str]:
    """The task type of each name: the given type, else the registry's type for a known task, else ``"other"``.

    Args:
        names: T task names (canonical names or aliases are looked up in :mod:`rsa_toolkit.tasks`).
        types: optional T types, each one of ``TASK_TYPES``, ``"other"`` or None (None = look the name up).

    Returns:
        T type strings.
    """
    names = _check_names(names)
    if types is None:
        types = [None] * len(names)
    elif isinstance(types, str) or len(types) != len(names):
        got = "a string" if isinstance(types, str) else f"{len(types)} types"
        raise UserInputError(f"types: expected a sequence of {len(names)} types (one per name), got {got}.")
    valid = (*TASK_TYPES, OTHER_TYPE)
    out = []
    for name, typ in zip(names, types):
        if typ is None:
            task = try_resolve_task(name)
            typ = task.type if task is not None else OTHER_TYPE
        elif typ not in valid:
            raise UserInputError(f"types: unknown type {typ!r} for '{name}'. Available: {', '.join(valid)}.")
        out.append(typ)
    return out


def task_graph(
    similarity: np.ndarray,
    names: Sequence[str],
    *,
    types: Sequence[str | None] | None = None,
    min_similarity: float | None = None,
    top_k: int | None = None,
) -> nx.Graph:
    """The task graph: one node per task, undirected edges weighted by similarity.

    The edge weight between tasks i and j is ``(S[i, j] + S[j, i]) / 2``. With neither ``min_similarity`` nor
    ``top_k``, every pair is connected; otherwise an edge is kept when its weight is ``>= min_similarity`` or it is
    among the ``top_k`` strongest edges of either end (the union). Ties in ``top_k`` go to the lower index.

    Args:
        similarity: (T, T) similarity matrix, finite.
        names: T unique task names; they become the node ids, in this order.
        types: optional T task types (see :func:`resolve_types`); node attribute ``type``.
        min_similarity: keep edges at least this similar.
        top_k: keep each node's ``top_k`` strongest neighbours (>= 1; values above T - 1 keep all).

    Returns:
        ``networkx.Graph`` with node attribute ``type`` (str) and edge attribute ``weight`` (float); no self loops.
    """
    s = _check_similarity(similarity)
    names = _check_names(names, t=s.shape[0])
    node_types = resolve_types(names, types)
    check_number(min_similarity, name="min_similarity", finite=True, optional=True, form="expected")
    check_int(top_k, name="top_k", minimum=1, optional=True, form="expected")

    t = s.shape[0]
    w = (s + s.T) / 2.0
    if min_similarity is None and top_k is None:
        keep = np.ones((t, t), dtype=bool)
    else:
        keep = np.zeros((t, t), dtype=bool)
        if min_similarity is not None:
            keep |= w >= min_similarity
        if top_k is not None and t > 1:
            ranked = np.where(np.eye(t, dtype=bool), -np.inf, w)
            # A stable sort on -w ranks equal weights by index, so the choice is deterministic.
            nearest = np.argsort(-ranked, axis=1, kind="stable")[:, : min(int(top_k), t - 1)]
            rows = np.repeat(np.arange(t), nearest.shape[1])
            keep[rows, nearest.ravel()] = True
            keep |= keep.T  # an edge is undirected: kept when either end ranks it
    np.fill_diagonal(keep, False)

    graph = nx.Graph()
    for name, typ in zip(names, node_types):
        graph.add_node(name, type=typ)
    for i, j in zip(*np.nonzero(np.triu(keep, k=1))):
        graph.add_edge(names[i], names[j], weight=float(w[i, j]))
    return graph


def write_graphml(graph: nx.Graph, path: str | os.PathLike[str]) -> None:
    """Write ``graph`` as GraphML (for Gephi, Cytoscape, yEd), atomically: nothing is half-written on failure.

    Numpy scalars in attributes become plain Python values; other values must be str, int, float or bool.
    """
    if not isinstance(graph, nx.Graph):
        raise UserInputError(f"graph: expected a networkx.Graph, got {type(graph).__name__}.")
    path = check_output_path(path, what="GraphML")
    clean = graph.__class__()
    clean.graph.update(_clean_attrs(graph.graph, "graph"))
    for node, attrs in graph.nodes(data=True):
        clean.add_node(node, **_clean_attrs(attrs, f"node '{node}'"))
    for u, v, attrs in graph.edges(data=True):
        clean.add_edge(u, v, **_clean_attrs(attrs, f"edge '{u}'-'{v}'"))
    with atomic_path(path) as tmp:
        nx.write_graphml(clean, tmp)


def _clean_attrs(attrs: dict, where: str) -> dict:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, np.generic):
            value = value.item()
        if value is None:
            continue  # GraphML has no null; an absent value reads back the same way
        if not isinstance(value, (str, bool, int, float)):
            raise UserInputError(f"graph: attribute '{key}' of {where} is a {type(value).__name__}; GraphML holds "
                                 f"only str, int, float or bool values. Convert it first.")
        out[str(key)] = value
    return out


def _linkage(s: np.ndarray, method: str) -> np.ndarray:
    d = 1.0 - (s + s.T) / 2.0
    np.maximum(d, 0.0, out=d)  # similarities a hair above 1 must not give negative distances
    np.fill_diagonal(d, 0.0)
    return linkage(squareform(d, checks=False), method=method, optimal_ordering=True)


def _check_method(method: str) -> None:
    if method not in LINKAGE_METHODS:
        raise UserInputError(f"method: unknown linkage method {method!r}. Available: {', '.join(LINKAGE_METHODS)}.")


def _check_similarity(similarity: np.ndarray, *, what: str = "similarity") -> np.ndarray:
    """The matrix as a fresh float64 array, after checking it is a non-empty, finite, square 2-D array."""
    try:
        s = np.array(similarity, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserInputError(f"{what}: expected a numeric T×T array, got {type(similarity).__name__}.") from None
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] == 0:
        raise UserInputError(f"{what}: expected a square T×T matrix (T >= 1), got shape {s.shape}.")
    if not np.all(np.isfinite(s)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(s))[0])
        raise UserInputError(f"{what}: expected finite values, got {s[bad]} at {bad}; fill or drop missing tasks.")
    return s


def _check_names(names: Sequence[str], *, t: int | None = None, what: str = "names") -> list[str]:
    """The names as a list of unique strings, of length ``t`` when given."""
    if isinstance(names, str) or not isinstance(names, (Sequence, np.ndarray)):
        raise UserInputError(f"{what}: expected a sequence of task names, got {type(names).__name__}.")
    names = list(names)
    if t is not None and len(names) != t:
        raise UserInputError(f"{what}: expected {t} names (one per row of the similarity matrix), got {len(names)}.")
    for name in names:
        if not isinstance(name, str):
            raise UserInputError(f"{what}: expected strings, got {name!r} ({type(name).__name__}).")
    names = [str(n) for n in names]  # numpy str_ -> str, so node ids and GraphML stay plain
    dupes = sorted(n for n, count in Counter(names).items() if count > 1)
    if dupes:
        raise UserInputError(f"{what}: expected unique names, got duplicates {', '.join(map(repr, dupes))}.")
    return names
