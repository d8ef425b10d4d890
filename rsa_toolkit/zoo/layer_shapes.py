"""The output shape of every tap-able layer of a teacher, for one image at the teacher's input size.

Module teachers (zoo files, the mini zoo) run one forward pass of a zero image, batch of one, under
``torch.inference_mode()`` with a forward hook on every named submodule; Taskonomy encoders use the layer arithmetic
(:func:`rsa_toolkit.zoo.taskonomy.encoder.tap_shapes`), so listing them loads no weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rsa_toolkit.zoo.teachers import Teacher

__all__ = ["LayerShape", "layer_shapes"]


@dataclass(frozen=True)
class LayerShape:
    """``shape``: (C, H, W) (or any per-image shape) of a tensor output; None when ``output`` is not "tensor"
    ("tuple", "list", "dict", another type's name, or "not run": forward() never calls the module)."""

    name: str
    shape: tuple[int, ...] | None
    output: str = "tensor"

    def text(self) -> str:
        if self.shape is not None:
            return "x".join(map(str, self.shape)) if self.shape else "scalar"
        return "not run by forward()" if self.output == "not run" else f"{self.output} (not one tensor: not tap-able)"


def layer_shapes(teacher: Teacher) -> list[LayerShape]:
    """One :class:`LayerShape` per layer of ``teacher``, in ``teacher.layers`` order."""
    size = int(teacher.preprocessing.size)
    if teacher.source.startswith("taskonomy:"):
        from rsa_toolkit.zoo.taskonomy.encoder import tap_shapes

        shapes = tap_shapes(size)
        return [LayerShape(layer, tuple(shapes[layer])) for layer in teacher.layers]
    model = teacher.build()
    modules = dict(model.named_modules())
    found: dict[str, LayerShape] = {}

    def make_hook(layer: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if layer in found:
                return  # a module called twice: its first output, as hook_features sees it
            if isinstance(output, torch.Tensor):
                found[layer] = LayerShape(layer, tuple(int(n) for n in output.shape[1:]))
            else:
                found[layer] = LayerShape(layer, None, type(output).__name__)

        return hook

    handles = [modules[layer].register_forward_hook(make_hook(layer)) for layer in teacher.layers if layer in modules]
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        with torch.inference_mode():
            model(torch.zeros(1, 3, size, size, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return [found.get(layer, LayerShape(layer, None, "not run")) for layer in teacher.layers]
