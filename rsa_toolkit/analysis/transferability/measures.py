"""One registry of transferability measures, one interface: ``score(features, target, **options) -> float``.

A measure scores how well a source model's features on N probe images predict a target on the same images:
class labels (N,), regression targets (N, K) or another representation (N, D2) (see
:mod:`rsa_toolkit.analysis.transferability._inputs` for the target kinds). Higher is better for every measure.
Each entry declares the target kinds it accepts and refuses others with one clear message.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.registry import Registry
from rsa_toolkit.analysis.transferability._inputs import TARGET_KINDS

__all__ = ["TRANSFERABILITY_MEASURES", "TransferabilityMeasure", "register_measure", "list_measures",
           "transferability_score", "rank_sources"]


@dataclass(frozen=True)
class TransferabilityMeasure:
    """A registered measure: ``function(features, target, **options)`` with ``fixed_options`` applied first."""

    name: str
    function: Callable[..., float]
    target_kinds: tuple[str, ...]
    summary: str
    reference: str
    fixed_options: Mapping[str, Any] = field(default_factory=dict)

    def option_names(self) -> list[str]:
        params = inspect.signature(self.function).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in self.fixed_options]

    def __call__(self, features: object, target: object, **options: Any) -> float:
        valid = self.option_names()
        unknown = [k for k in options if k not in valid]
        if unknown:
            raise UserInputError(
                f"Transferability measure '{self.name}' got unknown option(s) {', '.join(map(repr, unknown))}; "
                f"valid options: {', '.join(valid) or 'none'}."
            )
        return self.function(features, target, **{**self.fixed_options, **options})


TRANSFERABILITY_MEASURES: Registry[TransferabilityMeasure] = Registry("transferability measure")


def register_measure(name: str, *, target_kinds: tuple[str, ...], summary: str, reference: str,
                     **fixed_options: Any) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Decorator: register a plain function as measure ``name``; the function itself is returned unchanged."""
    bad = [k for k in target_kinds if k not in TARGET_KINDS]
    if bad:
        raise RuntimeError(f"measure '{name}' declares unknown target kinds {bad}")

    def decorator(function: Callable[..., float]) -> Callable[..., float]:
        TRANSFERABILITY_MEASURES.register(name)(TransferabilityMeasure(
            name=name, function=function, target_kinds=tuple(target_kinds), summary=summary, reference=reference,
            fixed_options=dict(fixed_options)))
        return function

    return decorator


def list_measures(*, target_kind: str | None = None) -> list[str]:
    """Names of the registered measures, optionally only those accepting ``target_kind``."""
    if target_kind is not None and target_kind not in TARGET_KINDS:
        raise UserInputError(f"target_kind must be one of {', '.join(TARGET_KINDS)} or None, got {target_kind!r}.")
    names = TRANSFERABILITY_MEASURES.names()
    if target_kind is None:
        return names
    return [n for n in names if target_kind in TRANSFERABILITY_MEASURES.get(n).target_kinds]


def transferability_score(features: object, target: object, *, measure: str, **options: Any) -> float:
    """Score ``features`` (N, ...) against ``target`` with the registered measure ``measure`` (higher is better)."""
    return TRANSFERABILITY_MEASURES.get(measure)(features, target, **options)


def rank_sources(features_by_source: Mapping[str, object], target: object, *, measure: str,
                 per_source_options: Mapping[str, Mapping[str, Any]] | None = None,
                 **options: Any) -> list[tuple[str, float]]:
    """Rank source models by ``measure``: ``[(name, score), ...]``, best first; ties in input order.

    ``options`` go to every source; ``per_source_options[name]`` adds options for one source (e.g. its own
    ``source_probs`` for LEEP / NCE) and overrides ``options`` there.
    """
    entry = TRANSFERABILITY_MEASURES.get(measure)
    if not isinstance(features_by_source, Mapping) or len(features_by_source) == 0:
        got = "an empty dict" if isinstance(features_by_source, Mapping) else type(features_by_source).__name__
        raise UserInputError(
            f"rank_sources: features_by_source must be a non-empty dict {{source name: features (N, ...)}}, got {got}."
        )
    per_source = dict(per_source_options or {})
    stray = [k for k in per_source if k not in features_by_source]
    if stray:
        raise UserInputError(
            f"rank_sources: per_source_options names unknown source(s) {', '.join(map(repr, stray))}; "
            f"sources: {', '.join(map(str, features_by_source))}."
        )
    scored = []
    for order, (name, feats) in enumerate(features_by_source.items()):
        value = float(entry(feats, target, **{**options, **dict(per_source.get(name, {}))}))
        scored.append((order, name, value))
    scored.sort(key=lambda t: (-t[2] if np.isfinite(t[2]) else np.inf, t[0]))
    return [(name, value) for _, name, value in scored]
