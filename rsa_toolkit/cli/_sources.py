"""Where a command's features come from: a features directory, or a zoo run over probe images through the feature
cache. The zoo is Taskonomy weights and/or a zoo file, or, when no teachers are named, the embedded mini-Taskonomy
zoo on its rendered probe set.

Under ``torchrun`` the zoo's extraction is sharded across the ranks (:func:`torchrun_extraction`), then rank 0 alone
goes on with the command; a features directory is only read, by rank 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rsa_toolkit.console import ZOO_FILE_TRUST
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.store import FeatureSet, available_layers, load_features_dir

if TYPE_CHECKING:
    from rsa_toolkit.images.probe import ProbeSet

#: What --help says of zoo files: they are code (one wording for both CLIs).
ZOO_TRUST = ZOO_FILE_TRUST


def add_source_options(parser: argparse.ArgumentParser, *, features: bool = True) -> None:
    group = parser.add_argument_group("features source: a features directory, or a zoo run over probe images")
    if features:
        group.add_argument("--features", metavar="DIR",
                           help="directory of <teacher>.npy (N, ...) files, <teacher>.npz with one array per layer, "
                                "or <layer>/<teacher>.npy subdirectories")
    group.add_argument("--weights-dir", metavar="DIR",
                       help="Taskonomy visualpriors checkpoints ({task}_encoder-<sha256>.pth); default "
                            "$RSA_TOOLKIT_WEIGHTS")
    group.add_argument("--zoo", metavar="FILE|mini",
                       help="zoo file (TOML/JSON/YAML) listing any PyTorch teachers, or 'mini': the embedded "
                            "mini-Taskonomy zoo (the default when no teachers are given). " + ZOO_TRUST)
    group.add_argument("--tasks", nargs="+", metavar="TASK",
                       help="only these teachers (default: every encoder in --weights-dir, or all 20 mini "
                            "teachers)")
    group.add_argument("--images", metavar="DIR|NAME",
                       help="probe images: a folder of png/jpg, or a built-in set: mini (500 rendered frames, the "
                            "mini zoo's default), skimage, sklearn")
    group.add_argument("--groupnorm", action="store_true",
                       help="Taskonomy encoders with visualpriors' GroupNorm on the representation")
    group.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    group.add_argument("--device", default="cpu",
                       help="cpu (default), cuda, cuda:N or mps: where the teachers run; a CUDA device also runs "
                            "the RDM and comparison math")
    group.add_argument("--cache-dir", metavar="DIR", help="feature cache (default $RSA_TOOLKIT_CACHE or "
                                                          "~/.cache/rsa-toolkit)")
    group.add_argument("--recompute", action="store_true", help="ignore and replace cached features")
    group.add_argument("--teacher-inputs", metavar="{own,clean}",
                       help="what the teachers see of the probe images: own (the default): each its own input kind, "
                            "grey for colorization, noisy for denoising, masked for inpainting (as the teachers were "
                            "trained; the RSA release fed colorization grey images); clean: the images as they are")


@contextlib.contextmanager
def layer_hints(args: argparse.Namespace) -> Iterator[None]:
    """An "Unknown layer" error raised in the block names the `rsa-toolkit layers` command for this command's zoo
    (the library only knows the teacher's name)."""
    try:
        yield
    except UserInputError as exc:
        match = re.search(r"\(list them with: rsa-toolkit layers (\S+)\)", str(exc))
        if match is None:
            raise
        from rsa_toolkit.zoo.zoo_file import layers_command

        if uses_mini_zoo(args):
            command = layers_command([match.group(1)], zoo="mini" if args.zoo == "mini" else None)
        else:
            command = layers_command([match.group(1)], zoo=args.zoo, weights_dir=args.weights_dir)
        text = str(exc).replace(match.group(0), f"(list them with: {command})")
        raise UserInputError(text, parameter=exc.parameter) from None


def uses_zoo(args: argparse.Namespace) -> bool:
    if getattr(args, "features", None):
        if args.weights_dir or args.zoo or args.images:
            raise UserInputError("give either --features DIR or a zoo (--weights-dir / --zoo with --images), "
                                 "not both.")
        if args.teacher_inputs is not None:
            raise UserInputError("--teacher-inputs says what a zoo's teachers see of the probe images; --features "
                                 "DIR holds features extracted already. Leave one out.")
        return False
    teacher_inputs(args)  # a bad value fails before any teacher is built or image rendered
    if uses_mini_zoo(args):
        return True
    if not args.images:
        raise UserInputError("a zoo needs probe images: --images DIR (a folder of images) or a built-in set "
                             "(skimage, sklearn).")
    return True


def uses_mini_zoo(args: argparse.Namespace) -> bool:
    """The embedded zoo: asked for by name, or the default when neither features nor teachers are given."""
    if args.zoo == "mini" and not Path("mini").is_file():
        if args.weights_dir:
            raise UserInputError("--zoo mini is the embedded zoo on its own; it cannot be mixed with --weights-dir.")
        return True
    return not (getattr(args, "features", None) or args.weights_dir or args.zoo
                or os.environ.get("RSA_TOOLKIT_WEIGHTS"))


def layers_to_run(args: argparse.Namespace, teachers: list | None) -> list[str | None]:
    """The layers a command runs: the one asked for, each teacher's default (None), or every common layer."""
    if args.layer != "all":
        return [args.layer]
    if teachers is None:
        return list(available_layers(args.features)) or [None]
    common = [name for name in teachers[0].layers if all(name in t.layers for t in teachers)]
    if not common:
        raise UserInputError("--layer all: the teachers share no layer name; choose --layer per teacher kind.")
    return common


def teacher_inputs(args: argparse.Namespace) -> str:
    """--teacher-inputs, checked: "own" (the default) or "clean"."""
    from rsa_toolkit.images.teacher_inputs import DEFAULT_TEACHER_INPUTS, check_teacher_inputs

    return check_teacher_inputs(DEFAULT_TEACHER_INPUTS if args.teacher_inputs is None else args.teacher_inputs)


def build_teachers(args: argparse.Namespace) -> list:
    if uses_mini_zoo(args):
        from rsa_toolkit.zoo.mini.embedded import mini_zoo

        return mini_zoo(args.tasks)
    from rsa_toolkit.zoo.zoo_file import build_zoo

    return build_zoo(weights_dir=args.weights_dir, zoo_file=args.zoo, tasks=args.tasks,
                     normalize_outputs=args.groupnorm)


def open_probe(args: argparse.Namespace):  # noqa: ANN201 - ProbeSet, imported lazily (Pillow is slow to import)
    from rsa_toolkit.images.probe import resolve_probe

    probe = resolve_probe(args.images or "mini")  # only the mini zoo runs without --images
    if probe.skipped and not args.quiet:
        print(f"rsa-toolkit: warning: skipped {len(probe.skipped)} non-image file(s) in {args.images}: "
              + ", ".join(probe.skipped[:10]) + (" ..." if len(probe.skipped) > 10 else ""), file=sys.stderr)
    return probe


def feature_sets(args: argparse.Namespace, *, progress: bool) -> Iterator[tuple[str | None, FeatureSet]]:
    """(layer label, features) for every layer the command runs, one layer at a time; labels are None unless
    --layer all. A zoo's layers are all extracted (or found in the cache) before the first is yielded."""
    if not uses_zoo(args):
        for layer in layers_to_run(args, None):
            yield (layer if args.layer == "all" else None), load_features_dir(args.features, layer=layer)
        return
    with torchrun_extraction(args), layer_hints(args):
        teachers = build_teachers(args)
        probe = open_probe(args)
        layers = layers_to_run(args, teachers)
        sets = extract_layers(args, teachers, probe, layers, progress=progress)
    for layer, features in zip(layers, sets):
        yield (layer if args.layer == "all" else None), features


def extract_layers(args: argparse.Namespace, teachers: list, probe: ProbeSet, layers: list[str | None], *,
                   progress: bool) -> list[FeatureSet]:
    """The zoo's features at each of ``layers`` (None: each teacher's default), through the feature cache: one
    forward of each teacher for all its layers."""
    from rsa_toolkit.features.extract import zoo_feature_sets

    return zoo_feature_sets(teachers, probe, layers=layers, batch_size=args.batch_size, device=args.device,
                            cache_dir=args.cache_dir, recompute=args.recompute, progress=progress,
                            teacher_inputs=teacher_inputs(args))


@contextlib.contextmanager
def torchrun_extraction(args: argparse.Namespace) -> Iterator[None]:
    """Under ``torchrun`` (WORLD_SIZE > 1): the block runs on every rank in the process group, so the extraction in
    it is sharded across the ranks, with ranks > 0 quiet; then every rank but 0 ends its process (exit 0) and the
    rest of the command (writing outputs, printing) runs on rank 0 alone. Without torchrun: nothing at all."""
    from rsa_toolkit import distributed
    from rsa_toolkit.devices import resolve_device

    if not distributed.init_from_env(resolve_device(args.device)):
        yield
        return
    try:
        args.quiet = args.quiet or not distributed.is_main()  # rank 0 speaks for the run
        yield
        finished = not distributed.is_main()
    finally:
        distributed.shutdown()
    if finished:  # its share of the work was the extraction; a return would run the rest of the command again
        raise SystemExit(0)
