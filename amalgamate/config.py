"""The configuration of an amalgamation run: one dataclass, read from a TOML or YAML file, then command-line overrides.

A config file holds the fields of :class:`AmalgamateConfig` at the top level or under an ``[amalgamate]`` table;
dashes and underscores are interchangeable (``batch-size`` = ``batch_size``)::

    targets = ["depth", "normal", "edge2d"]
    auto_aux = true
    steps = 2000
    batch_size = 32
    weighting = "gradnorm"
    [gradnorm]          # options of the weighting, by its name
    alpha = 1.5

YAML needs PyYAML (only read if it is installed); TOML uses the standard library's ``tomllib`` (``tomli`` on Python 3.10).
Precedence: the defaults below < the file < the command line. :func:`check_config` validates everything once.
:data:`METHODS` (:mod:`amalgamate.methods`) is the registry of training methods: per method its step function, its
default weighting and whether it uses an auxiliary; the checks and the CLI's choices read it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rsa_toolkit.errors import UserInputError, unknown_name
from rsa_toolkit.validation import check_int, check_number

from amalgamate.methods import METHODS

__all__ = ["AmalgamateConfig", "METHODS", "load_config_file", "merge_config", "check_config", "config_to_dict"]

_WEIGHTING_OPTION_TABLES = ("gradnorm", "uncertainty", "dwa", "equal", "imtl_l", "famo")  # imtl-l: imtl_l


PRECISIONS = ("float32", "float64")  # torch dtypes of the same names

@dataclass(frozen=True)
class AmalgamateConfig:
    # what to train
    targets: tuple[str, ...] = ()
    aux: str | None = None  # the auxiliary teacher's name; None with auto_aux (or for kd baselines)
    auto_aux: bool = False  # rank the zoo with RSA and take the best candidate
    method: str = "soka"  # a METHODS name: soka | kd (n-to-1, equal weights, no auxiliary) | kd-n-to-n
    weighting: str | None = None  # default: gradnorm for soka, equal for the kd baselines
    weighting_options: dict[str, Any] = field(default_factory=dict)
    architecture: str | None = None  # compact | taskonomy; default: the zoo's
    # teachers and images
    zoo_dir: str | None = None  # a mini zoo directory (default $RSA_TOOLKIT_MINI_ZOO or data/mini_zoo)
    weights_dir: str | None = None  # Taskonomy checkpoints: use the Taskonomy teachers instead of the mini zoo
    zoo_file: str | None = None  # a zoo file whose teachers join the auxiliary candidates
    images: str | None = None  # a folder of training images (default: mini-Taskonomy train frames)
    masks: str | None = None  # a folder of validity masks, one per training image (amalgamate.training.masks)
    train_frames: int = 4000  # mini train-split frames, when no images folder is given
    train_shard: str | None = None  # or the frames of an existing shard
    live_teachers: bool = False
    cache_dir: str | None = None
    # auto-aux ranking
    probe_frames: int = 500  # mini probe frames for the RSA ranking (the default probe set)
    probe: str | None = None  # or a folder / built-in probe set
    aux_bootstrap: int = 100
    # optimisation
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05  # fraction of the steps with a linear warm-up, then cosine decay
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None  # torch threads (default: torch's)
    precision: str = "float32"  # the student's parameters and arithmetic; float64 for exact comparisons of runs
    # losses
    distill: str = "l1"  # l1 | l2
    temperature: float = 1.0
    # lambda of the guidance (soka only; checked by the val-split sweep of docs/amalgamate.md)
    guide_weight: float = 0.5
    gan_start: int | None = None  # step after which the GAN term joins (None: no GAN)
    gan_width: int = 32
    # self-coordination (soka)
    kd_warmup: int = 50  # steps of distillation only (equal weights, no guidance, no competition) first
    balance_threshold: float = 5e-4  # drift of the weights per step (training/balance.py) counted as still
    balance_window: int = 50  # ... for this many consecutive competition steps
    balance_ema: float = 0.98  # smoothing of the relative changes (about 50 steps)
    stop_competition_when_balanced: bool = True  # balanced: freeze the weights, continue in collaboration
    # runs
    checkpoint_every: int = 200
    eval_frames: int = 500
    eval_shard: str | None = None
    eval_images: str | None = None


def _key(name: str) -> str:
    return name.strip().replace("-", "_")


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in a TOML (.toml) or YAML (.yaml/.yml) file, as a dict of field names."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"path='{path}' does not exist; give a TOML or YAML file.", parameter="path")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10: the backport the package depends on there
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise UserInputError(f"path='{path}': not valid TOML ({exc}).", parameter="path") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UserInputError(f"path='{path}': reading YAML needs PyYAML (pip install pyyaml); or write the "
                                 "same settings as TOML.", parameter="path") from None
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserInputError(f"path='{path}': not valid YAML ({exc}).", parameter="path") from None
    else:
        raise UserInputError(f"path='{path}': expected a .toml, .yaml or .yml file, got '{suffix or 'no suffix'}'.",
                             parameter="path")
    if not isinstance(data, dict):
        raise UserInputError(f"path='{path}': expected a table of settings at the top level.", parameter="path")
    if isinstance(data.get("amalgamate"), dict):
        data = {**{k: v for k, v in data.items() if k != "amalgamate"}, **data["amalgamate"]}
    out: dict[str, Any] = {}
    options: dict[str, Any] = {}
    valid = {f.name for f in fields(AmalgamateConfig)}
    for raw_key, value in data.items():
        key = _key(str(raw_key))
        if key in _WEIGHTING_OPTION_TABLES and isinstance(value, dict):
            options[key] = {_key(k): v for k, v in value.items()}
        elif key in valid:
            out[key] = value
        else:
            raise UserInputError(unknown_name(f"path='{path}': unknown setting '{raw_key}'", key, sorted(valid),
                                              listing="Settings"), parameter="path")
    if options:
        out["weighting_options"] = options
    return out


def merge_config(*layers: Mapping[str, Any]) -> AmalgamateConfig:
    """Defaults, then each layer of settings in order (None values leave a setting as it was)."""
    values: dict[str, Any] = {}
    for layer in layers:
        values.update({k: v for k, v in layer.items() if v is not None})
    if "targets" in values and not isinstance(values["targets"], str):
        values["targets"] = tuple(values["targets"])
    try:
        return AmalgamateConfig(**values)
    except TypeError as exc:
        raise UserInputError(f"configuration: {exc}.") from None


def _int(config: AmalgamateConfig, name: str, minimum: int) -> None:
    value = getattr(config, name)
    check_int(value, name=name.replace("_", "-"), minimum=minimum)


def _number(config: AmalgamateConfig, name: str, low: float, *, strict: bool = True) -> None:
    value = getattr(config, name)
    check_number(value, name=name.replace("_", "-"), above=low if strict else None, minimum=None if strict else low)


def check_config(config: AmalgamateConfig) -> AmalgamateConfig:
    """Validate every setting once (targets and teachers are checked against the zoo later); fill the defaults that
    depend on the method. Returns the completed config."""
    from amalgamate.training.losses import NORMS
    from amalgamate.student import ARCHITECTURES
    from amalgamate.zoo import check_auxiliary, resolve_targets
    from amalgamate.training.weighting import WEIGHTINGS

    if config.method not in METHODS:
        raise UserInputError(unknown_name(f"Unknown method '{config.method}'", config.method, METHODS.names(), n=1))
    method = METHODS.get(config.method)
    targets = tuple(resolve_targets(list(config.targets)))
    for name in ("steps", "batch_size", "checkpoint_every", "eval_frames", "balance_window", "gan_width"):
        _int(config, name, 1)
    for name in ("train_frames", "probe_frames"):
        _int(config, name, 3)
    _int(config, "aux_bootstrap", 0)
    _int(config, "kd_warmup", 0)
    if isinstance(config.balance_ema, bool) or not isinstance(config.balance_ema, (int, float)) \
            or not 0 <= config.balance_ema < 1:
        raise UserInputError(f"balance-ema must be a number in [0, 1), got {config.balance_ema!r}.")
    for name in ("lr", "temperature"):
        _number(config, name, 0.0)
    for name in ("weight_decay", "guide_weight", "balance_threshold", "warmup"):
        _number(config, name, 0.0, strict=False)
    if config.warmup >= 1:
        raise UserInputError(f"warmup is a fraction of the steps in [0, 1), got {config.warmup!r}.")
    if config.threads is not None:
        _int(config, "threads", 1)
    if config.precision not in PRECISIONS:
        raise UserInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}.")
    if config.gan_start is not None:
        _int(config, "gan_start", 0)
    if config.distill not in NORMS:
        raise UserInputError(f"distill must be one of {', '.join(NORMS)}, got {config.distill!r}.")
    if config.architecture is not None:
        ARCHITECTURES.get(config.architecture)
    weighting = config.weighting or method.default_weighting
    WEIGHTINGS.get(weighting)
    if not method.self_coordinated and weighting != method.default_weighting:
        raise UserInputError(f"method={config.method} is KD with equal fixed weights; drop weighting="
                             f"{weighting} (or use method=soka).", parameter=("method", "weighting"))
    if not method.uses_auxiliary and (config.aux or config.auto_aux):
        raise UserInputError(f"method={config.method} uses no auxiliary teacher; drop aux=/auto_aux= (or use "
                             "method=soka).", parameter=("method", "aux", "auto_aux"))
    if config.aux and config.auto_aux:
        raise UserInputError("give either aux=NAME or auto_aux=, not both.", parameter=("aux", "auto_aux"))
    aux = check_auxiliary(config.aux, targets) if config.aux else None
    if config.images and config.train_shard:
        raise UserInputError("give either images=DIR or a train shard, not both.", parameter="images")
    return dataclasses.replace(config, targets=targets, aux=aux, weighting=weighting)


def config_to_dict(config: AmalgamateConfig) -> dict[str, Any]:
    out = dataclasses.asdict(config)
    out["targets"] = list(config.targets)
    return out


def config_from_dict(data: Mapping[str, Any]) -> AmalgamateConfig:
    """The config stored in a run directory (unknown keys from a newer version are an error)."""
    valid = {f.name for f in fields(AmalgamateConfig)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise UserInputError(f"the run's config.json has settings this version does not know: {', '.join(unknown)}.")
    return merge_config(data)
