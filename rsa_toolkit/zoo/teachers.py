"""Teachers: a network, the layers it can be tapped at, its preprocessing and a hash of its weights.

Two kinds, one contract (:class:`Teacher`):

* the 20 Taskonomy encoders, loaded from a local directory of visualpriors checkpoints
  (:func:`taskonomy_teacher`; taps ``block1`` .. ``block4`` and ``encoder_output``);
* any ``torch.nn.Module`` (:func:`module_teacher`), tapped with forward hooks at named submodules, e.g. from a zoo file
  (:mod:`rsa_toolkit.zoo.zoo_file`).

The weights hash identifies the teacher in the feature cache and in every output's provenance; the definition hash
(:attr:`Teacher.definition`: the source code of the network's classes and its constructor-visible state, or an
explicit ``key``) tells apart two teachers with the same weights but different code, and is known without building
the network. A teacher's name becomes file names, so it is checked once, when the teacher is made
(:func:`rsa_toolkit.files.check_name`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from rsa_toolkit.errors import UserInputError, unknown_name
from rsa_toolkit.files import check_name
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.images.preprocess import Preprocessing, get_preprocessing, taskonomy_preprocessing
from rsa_toolkit.images.teacher_inputs import DEFAULT_TEACHER_INPUTS, input_kind

__all__ = ["Teacher", "taskonomy_teacher", "module_teacher", "check_layer_names", "list_layers", "hook_features",
           "state_dict_sha256", "module_definition", "source_definition"]

Runner = Callable[[nn.Module, torch.Tensor, Sequence[str]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Teacher:
    name: str
    layers: tuple[str, ...]  # every tap-able layer name, in network order
    default_layer: str
    preprocessing: Preprocessing
    weights_sha256: str  # sha256 of the checkpoint file, or of the state dict's tensors
    build: Callable[[], nn.Module] = field(repr=False)  # the network, loaded on first call (a cache hit never loads)
    run: Runner = field(repr=False)  # (network, preprocessed batch, layer names) -> {layer: (B, ...) tensor}
    source: str = ""  # where it came from, for provenance
    # sha256 of what the network is (its code and constructor-visible state), computable without building it; part
    # of the feature cache key. Empty when unknown (the key then rests on weights, source and layer).
    definition: str = ""
    # the task it was trained on (canonical name), or None: decides the input kind it sees under teacher_inputs="own"
    # (grey for colorization, noisy for denoising, masked for inpainting; see rsa_toolkit.images.teacher_inputs)
    task: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name, what="teacher name")

    def extract(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.run(self.build(), x, layers)

    def input_kind(self, teacher_inputs: str = DEFAULT_TEACHER_INPUTS) -> str:
        """The input kind this teacher sees on probe images under ``teacher_inputs`` ("own" or "clean")."""
        return input_kind(self.task, teacher_inputs)

    def check_layers(self, layers: Sequence[str] | None) -> list[str]:
        """The requested layers (default: the teacher's default layer), each checked against :attr:`layers`."""
        return check_layer_names(self.name, self.layers, layers or [self.default_layer])


def taskonomy_teacher(task: str, weights_dir: str | None = None, *, normalize_outputs: bool = False) -> Teacher:
    """The Taskonomy encoder of ``task`` (any alias) from visualpriors checkpoints in ``weights_dir``.

    Preprocessing follows the RSA paper (centre crop, 256 x 256, [-1, 1], low-saturation clipping for 14 tasks).
    """
    from rsa_toolkit.zoo.taskonomy.encoder import TAP_LAYERS, TaskonomyEncoder
    from rsa_toolkit.zoo.taskonomy.weights import find_checkpoint, load_into, load_state_dict_file, resolve_weights_dir, verify_hash

    canonical = resolve_task(task)
    path = find_checkpoint(resolve_weights_dir(weights_dir), canonical, "encoder")
    digest = verify_hash(path)  # hashing reads the file but unpickles nothing; loading waits for a cache miss

    @functools.cache
    def build() -> nn.Module:
        encoder = TaskonomyEncoder(normalize_outputs=normalize_outputs)
        load_into(encoder, load_state_dict_file(path), what=f"{canonical} encoder ({path.name})")
        return encoder.eval()

    return Teacher(
        name=canonical, layers=TAP_LAYERS, default_layer="encoder_output",
        preprocessing=taskonomy_preprocessing(canonical), weights_sha256=digest, build=build,
        run=lambda encoder, x, layers: encoder.forward_taps(x, layers),
        source=f"taskonomy:{canonical}" + (":groupnorm" if normalize_outputs else ""),
        # the whole encoder module (its blocks, the taps): an edit to the architecture's code is a new cache key
        definition=source_definition(sys.modules[TaskonomyEncoder.__module__],
                                     extra={"normalize_outputs": normalize_outputs}),
        task=canonical,
    )


def module_teacher(name: str, model: nn.Module, *, layers: Sequence[str] | None = None,
                   default_layer: str | None = None, preprocessing: str | Preprocessing = "imagenet",
                   weights_sha256: str | None = None, source: str = "", key: str | None = None,
                   definition: str | None = None, task: str | None = None) -> Teacher:
    """Any module as a teacher, tapped by forward hooks at ``layers`` (default: every named submodule).

    ``default_layer`` defaults to the first of ``layers`` when given, else the last submodule. The cache key covers
    the model's definition (:func:`module_definition`: the source of its classes and their constructor-visible
    state); ``key`` (any string) replaces that with an identity of your choosing, and ``definition`` (e.g. from
    :func:`source_definition` of the module a zoo file names) is added to it. ``task`` (any name or alias) is the
    task the model was trained on: it decides what the model sees of probe images under ``teacher_inputs="own"``
    (:mod:`rsa_toolkit.images.teacher_inputs`); None: the clean image.
    """
    if not isinstance(model, nn.Module):
        raise UserInputError(f"teacher '{name}': expected a torch.nn.Module, got {type(model).__name__}.")
    model.eval()
    available = tuple(list_layers(model))
    if not available:
        raise UserInputError(f"teacher '{name}': the model has no submodules to tap.")
    check_name(name, what="teacher name")
    chosen = check_layer_names(name, available, layers) if layers else list(available)
    default = check_layer_names(name, available, [default_layer or (chosen[0] if layers else available[-1])])[0]
    return Teacher(
        name=name, layers=available, default_layer=default, preprocessing=get_preprocessing(preprocessing),
        weights_sha256=weights_sha256 or state_dict_sha256(model), build=lambda: model, run=hook_features,
        source=source, definition=_module_key(model, key, definition),
        task=None if task is None else resolve_task(task),
    )


def _module_key(model: nn.Module, key: str | None, definition: str | None) -> str:
    if key is not None:
        if not isinstance(key, str) or not key:
            raise UserInputError(f"key={key!r}: expected a non-empty string that identifies the model's definition.",
                                 parameter="key")
        core = _sha256({"key": key})
    else:
        core = module_definition(model)
    return core if definition is None else _sha256({"module": core, "definition": definition})


def _sha256(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


def _code(obj: object) -> str:
    """The source text of a class, function or module, or its qualified name where the source is not available
    (built-ins, classes made in a REPL)."""
    try:
        return inspect.getsource(obj)  # type: ignore[arg-type]
    except (OSError, TypeError, SyntaxError):  # no file, a built-in, or a file edited since it was imported
        return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', repr(obj)))}"


def source_definition(*objects: object, extra: object = None) -> str:
    """sha256 of the source code of ``objects`` (classes, functions, modules) and ``extra`` (JSON-able options):
    the definition hash of a network that is not built yet, e.g. the module and callable a zoo file names."""
    return _sha256({"code": [[_qualname(o), _code(o)] for o in objects], "extra": extra})


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', ''))}"


_SIMPLE = (bool, int, float, str, type(None))


def module_definition(model: nn.Module) -> str:
    """sha256 of what defines ``model`` apart from its weights: the source of every class in it outside ``torch``
    (PyTorch's own layers are named, not read), the module tree's repr (sizes, strides, options of each layer) and
    each module's public plain attributes (numbers, strings, tuples of them: what its constructor kept)."""
    classes = sorted({type(m) for m in model.modules()}, key=_qualname)
    code = [[_qualname(c), "" if c.__module__.split(".")[0] == "torch" else _code(c)] for c in classes]
    state = {name or "<root>": {k: v for k, v in vars(m).items()
                                if not k.startswith("_") and k != "training" and _plain(v)}
             for name, m in model.named_modules()}
    return _sha256({"classes": code, "repr": repr(model), "state": state})


def _plain(value: object) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    return isinstance(value, _SIMPLE)


def check_layer_names(teacher: str, available: Sequence[str], layers: Sequence[str]) -> list[str]:
    """``layers`` without repeats, each one of ``available``; an unknown name lists the valid ones."""
    wanted = list(dict.fromkeys(layers))
    for layer in wanted:
        if layer not in available:
            shown = ", ".join(available[:40]) + (" ..." if len(available) > 40 else "")
            raise UserInputError(unknown_name(f"Unknown layer '{layer}' for teacher '{teacher}'", layer, available,
                                              shown=f"{shown} (list them with: rsa-toolkit layers {teacher})"))
    return wanted


def list_layers(model: nn.Module) -> list[str]:
    """Names of every submodule, in registration order (the names :func:`hook_features` accepts)."""
    return [name for name, _ in model.named_modules() if name]


class _EnoughLayers(Exception):
    """Raised from the last needed hook: the rest of the forward pass is not needed."""


def hook_features(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Outputs of the named submodules for input ``x``, from one forward pass that stops after the last of them."""
    modules = dict(model.named_modules())
    out: dict[str, torch.Tensor] = {}
    remaining = set(layers)

    def make_hook(layer: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if not isinstance(output, torch.Tensor):
                raise UserInputError(f"layer '{layer}' outputs a {type(output).__name__}, not a tensor; choose a "
                                     "layer whose output is one tensor.")
            out[layer] = output
            remaining.discard(layer)
            if not remaining:
                raise _EnoughLayers

        return hook

    handles = [modules[layer].register_forward_hook(make_hook(layer)) for layer in layers]
    try:
        model(x)
    except _EnoughLayers:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [layer for layer in layers if layer not in out]
    if missing:
        raise UserInputError(f"layers {', '.join(missing)} were not run by the model's forward pass; choose layers "
                             "that forward() uses.")
    return {layer: out[layer] for layer in layers}


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 over the state dict's names, shapes, dtypes and bytes: identifies weights without a file."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{tuple(t.shape)}|{t.dtype}|".encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return digest.hexdigest()
