"""rsa-toolkit: representational similarity analysis (RSA) of teacher zoos, for task-transferability analysis.

Features of T teachers on the same N probe images -> one RDM per teacher -> T x T task-similarity matrix ->
auxiliary-teacher ranking (Dwivedi & Roig, CVPR 2019). Arrays in, arrays out; the ``rsa-toolkit`` CLI is a thin layer
over these functions.

Names are imported on first use (PEP 562), so ``import rsa_toolkit`` and the CLI start without loading torch,
plotly or scikit-learn until a function needs them.
"""

from __future__ import annotations

from rsa_toolkit.lazy import lazy_exports as _lazy_exports

_EXPORTS: dict[str, str] = {
    "rsa.bootstrap": "BootstrapResult bootstrap_similarity",
    "rsa.compare": "COMPARISONS compare_pair compare_rdms rank_average",
    "errors": "UserInputError",
    "analysis.evaluation": "Evaluation evaluate_similarity",
    "features.extract": "extract_features save_features_dir zoo_feature_sets zoo_features",
    "features.store": "FeatureSet available_layers load_features_dir write_features_dir",
    "analysis.ground_truth": "GroundTruth load_ground_truth",
    "analysis.graph": "cluster_order clusters linkage_from_similarity task_graph write_graphml",
    "rsa.memory": "MemoryPlan plan_memory",
    "zoo.mini.embedded": "mini_probe mini_zoo",
    "rsa.normalize": "NORMALIZATIONS normalize_features",
    "viz.outputs": "read_matrix_csv save_similarity write_matrix_csv",
    "images.preprocess": "PlainPreprocessing TaskonomyPreprocessing get_preprocessing",
    "images.probe": "ProbeSet probe_by_name probe_from_folder resolve_probe",
    "analysis.ranking": "Candidate match_teachers rank_auxiliaries",
    "rsa.rdm": "RDM_METHODS compute_condensed_rdm compute_rdm squareform",
    "scenes": "render sample_scene",
    "rsa.similarity": "SimilarityResult similarity_matrix",
    "features.synthetic": "make_synthetic_features",
    "tasks": "TASK_TYPES Task get_task list_tasks resolve_task",
    "analysis.taxonomy": "nearest_neighbours pattern_checks type_contrast",
    "zoo": "Teacher build_zoo load_zoo_file module_teacher taskonomy_teacher",
}
__all__, __getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS)
