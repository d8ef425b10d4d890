"""rsa-toolkit: representational similarity analysis (RSA) of teacher zoos, for task-transferability analysis.

Features of T teachers on the same N probe images -> one RDM per teacher -> T x T task-similarity matrix ->
auxiliary-teacher ranking (Dwivedi & Roig, CVPR 2019). Arrays in, arrays out; the ``rsa-toolkit`` CLI is a thin layer
over these functions.

Names are imported on first use (PEP 562), so ``import rsa_toolkit`` and the CLI start without loading torch,
plotly or scikit-learn until a function needs them.
"""

from __future__ import annotations

from ._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "bootstrap": "BootstrapResult bootstrap_similarity",
    "compare": "COMPARISONS compare_pair compare_rdms rank_average",
    "errors": "UserInputError",
    "evaluation": "Evaluation evaluate_similarity",
    "extract": "extract_features save_features_dir zoo_features",
    "features_io": "FeatureSet available_layers load_features_dir write_features_dir",
    "ground_truth": "GroundTruth load_ground_truth",
    "graph": "cluster_order clusters linkage_from_similarity task_graph write_graphml",
    "memory": "MemoryPlan plan_memory",
    "mini.zoo": "mini_probe mini_zoo",
    "normalize": "NORMALIZATIONS normalize_features",
    "outputs": "read_matrix_csv save_similarity write_matrix_csv",
    "preprocess": "PlainPreprocessing TaskonomyPreprocessing get_preprocessing",
    "probe": "ProbeSet probe_by_name probe_from_folder resolve_probe",
    "ranking": "Candidate match_teachers rank_auxiliaries",
    "rdm": "RDM_METHODS compute_condensed_rdm compute_rdm squareform",
    "scenes": "render sample_scene",
    "similarity": "SimilarityResult similarity_matrix",
    "synthetic": "make_synthetic_features",
    "tasks": "TASK_TYPES Task get_task list_tasks resolve_task",
    "taxonomy": "nearest_neighbours pattern_checks type_contrast",
    "zoo": "Teacher build_zoo load_zoo_file module_teacher taskonomy_teacher",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
