"""rsa-toolkit: representational similarity analysis (RSA) of teacher zoos, for task-transferability analysis.

Features of T teachers on the same N probe images -> one RDM per teacher -> T x T task-similarity matrix ->
auxiliary-teacher ranking (Dwivedi & Roig, CVPR 2019). Arrays in, arrays out; the ``rsa-toolkit`` CLI is a thin layer
over these functions.
"""

from .bootstrap import BootstrapResult, bootstrap_similarity
from .compare import COMPARISONS, compare_pair, compare_rdms, rank_average
from .errors import UserInputError
from .features_io import FeatureSet, available_layers, load_features_dir, write_features_dir
from .graph import cluster_order, clusters, linkage_from_similarity, task_graph, write_graphml
from .normalize import NORMALIZATIONS, normalize_features
from .outputs import read_matrix_csv, save_similarity, write_matrix_csv
from .ranking import Candidate, match_teachers, rank_auxiliaries
from .rdm import RDM_METHODS, compute_condensed_rdm, compute_rdm, squareform
from .similarity import SimilarityResult, similarity_matrix
from .synthetic import make_synthetic_features
from .tasks import TASK_TYPES, Task, get_task, list_tasks, resolve_task

__all__ = [
    "BootstrapResult", "COMPARISONS", "Candidate", "FeatureSet", "NORMALIZATIONS", "RDM_METHODS", "SimilarityResult",
    "TASK_TYPES", "Task", "UserInputError", "available_layers", "bootstrap_similarity", "cluster_order", "clusters",
    "compare_pair", "compare_rdms", "compute_condensed_rdm", "compute_rdm", "get_task", "linkage_from_similarity",
    "list_tasks", "load_features_dir", "make_synthetic_features", "match_teachers", "normalize_features",
    "rank_auxiliaries", "rank_average", "read_matrix_csv", "resolve_task", "save_similarity", "similarity_matrix",
    "squareform", "task_graph", "write_features_dir", "write_graphml", "write_matrix_csv",
]
