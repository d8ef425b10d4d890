"""Transferability measures in one registry with one interface (issue 15, item 3).

``transferability_score(features, target, measure=name, **options) -> float`` scores how well a source model's
features (N, ...) on N probe images predict a target: class labels (N,), regression targets (N, K) or another
representation (N, D2). ``rank_sources`` ranks several sources. Entries of ``TRANSFERABILITY_MEASURES``:
logme, h_score, h_score_shrinkage, nce, leep, parc, transrate, cka_linear, cka_rbf, cka_debiased.
See docs/transferability.md.
"""

from rsa_toolkit.analysis.transferability.measures import (
    TRANSFERABILITY_MEASURES, TransferabilityMeasure, list_measures, rank_sources, register_measure,
    transferability_score)
from rsa_toolkit.analysis.transferability._inputs import TARGET_KINDS
from rsa_toolkit.analysis.transferability.logme import logme
from rsa_toolkit.analysis.transferability.h_score import h_score, ledoit_wolf_shrinkage
from rsa_toolkit.analysis.transferability.leep_nce import leep, nce
from rsa_toolkit.analysis.transferability.parc import parc
from rsa_toolkit.analysis.transferability.transrate import coding_rate, transrate
from rsa_toolkit.analysis.transferability.cka import cka_debiased, cka_linear, cka_rbf, unbiased_hsic
from rsa_toolkit.analysis.transferability.pixel_targets import majority_pixel_label, pooled_pixel_target

__all__ = [
    "TRANSFERABILITY_MEASURES", "TransferabilityMeasure", "TARGET_KINDS", "list_measures", "rank_sources",
    "register_measure", "transferability_score",
    "logme", "h_score", "ledoit_wolf_shrinkage", "nce", "leep", "parc", "transrate", "coding_rate",
    "cka_linear", "cka_rbf", "cka_debiased", "unbiased_hsic",
    "pooled_pixel_target", "majority_pixel_label",
]
