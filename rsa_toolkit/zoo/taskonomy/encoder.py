"""Taskonomy's ResNet-50 encoder (the visualpriors port's layout: its state-dict keys load with ``strict=True``) and
its feature taps. :mod:`rsa_toolkit.zoo.taskonomy.net` has the shapes, the sources and the layer arithmetic."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from rsa_toolkit.errors import UserInputError, unknown_name

__all__ = ["TaskonomyEncoder", "TAP_LAYERS", "TAP_MODULES", "TAP_SHAPES_256", "tap_shapes"]

#: Feature taps, in network order: the outputs of encoder layers 1-4 and the encoder output.
TAP_LAYERS: tuple[str, ...] = ("block1", "block2", "block3", "block4", "encoder_output")
#: The encoder attribute each tap reads ("encoder_output" is the value ``forward`` returns).
TAP_MODULES: dict[str, str] = {"block1": "layer1", "block2": "layer2", "block3": "layer3", "block4": "layer4",
                               "encoder_output": "encoder_output"}

_LAYER_BLOCKS: tuple[int, ...] = (3, 4, 6, 3)  # ResNet-50 (line 335)
_LAYER_PLANES: tuple[int, ...] = (64, 128, 256, 512)
_LAYER_STRIDES: tuple[int, ...] = (2, 2, 1, 1)  # lines 336-339
_EXPANSION = 4
_REPRESENTATION_CHANNELS = 8


def _check_images(x: object, *, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise UserInputError(f"{name} must be a torch.Tensor of shape (N, 3, H, W), got {type(x).__name__}.")
    if x.ndim != 4 or x.shape[1] != 3:
        raise UserInputError(
            f"{name} must have shape (N, 3, H, W) (RGB scaled to [-1, 1], 256×256 for Taskonomy), "
            f"got {tuple(x.shape)}.")
    if not x.is_floating_point():
        raise UserInputError(f"{name} must be a floating-point tensor, got dtype {x.dtype}.")
    return x



class _Bottleneck(nn.Module):
    """1×1 → 3×3 (carries the stride) → 1×1 ×4 bottleneck with BN after each conv; keys conv1-3, bn1-3, downsample."""

    def __init__(self, in_channels: int, planes: int, *, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * _EXPANSION, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * _EXPANSION)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


def _resnet_layer(in_channels: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """One ResNet layer: a projection-shortcut block, plain blocks, and a last block that carries the stride."""
    out_channels = planes * _EXPANSION
    projection = None
    if in_channels != out_channels:
        projection = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, bias=False),
                                   nn.BatchNorm2d(out_channels))
    units: list[nn.Module] = [_Bottleneck(in_channels, planes, downsample=projection)]
    units += [_Bottleneck(out_channels, planes) for _ in range(blocks - 2)]
    subsample = nn.Sequential(nn.MaxPool2d(kernel_size=1, stride=stride)) if stride != 1 else None
    units.append(_Bottleneck(out_channels, planes, stride=stride, downsample=subsample))
    return nn.Sequential(*units)


class TaskonomyEncoder(nn.Module):
    """Taskonomy's ResNet-50 encoder: (N, 3, 256, 256) in [-1, 1] → (N, 8, 16, 16) representation.

    Args:
        normalize_outputs: apply ``GroupNorm(8, 8, affine=False)`` to the output (one group per channel: each
            channel of each image scaled to zero mean and unit variance over its 16×16 positions). It has no
            parameters, so the state dict is the same either way. visualpriors' ``representation_transform`` uses
            it (``TaskonomyEncoder()`` defaults to True there); its ``TaskonomyNetwork`` readouts and the released TF
            Taskonomy features do not. Default False: the raw Taskonomy representation.

    The module starts in eval mode, like visualpriors' (BatchNorm uses the checkpoint's running statistics); call
    ``.train()`` to fine-tune. ``forward`` returns the representation; ``forward_taps`` returns the intermediate
    layers named in :data:`TAP_LAYERS`.
    """

    def __init__(self, normalize_outputs: bool = False) -> None:
        super().__init__()
        # Registration order follows visualpriors, so state_dict() lists keys in the checkpoint's order.
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)  # = F.pad(3) then padding 0
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
        in_channels = 64
        for i, (planes, blocks, stride) in enumerate(zip(_LAYER_PLANES, _LAYER_BLOCKS, _LAYER_STRIDES), start=1):
            self.add_module(f"layer{i}", _resnet_layer(in_channels, planes, blocks, stride))
            in_channels = planes * _EXPANSION
        self.compress1 = nn.Conv2d(in_channels, _REPRESENTATION_CHANNELS, kernel_size=3, stride=1, padding=1,
                                   bias=False)
        self.compress_bn = nn.BatchNorm2d(_REPRESENTATION_CHANNELS)
        self.relu1 = nn.ReLU()
        self.groupnorm = nn.GroupNorm(_REPRESENTATION_CHANNELS, _REPRESENTATION_CHANNELS, affine=False)
        self.normalize_outputs = bool(normalize_outputs)
        self.eval()

    def _run(self, x: torch.Tensor, wanted: frozenset[str]) -> dict[str, torch.Tensor]:
        taps: dict[str, torch.Tensor] = {}
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            if f"block{i}" in wanted:
                taps[f"block{i}"] = x
            if len(taps) == len(wanted):
                return taps
        x = self.relu1(self.compress_bn(self.compress1(x)))
        if self.normalize_outputs:
            x = self.groupnorm(x)
        taps["encoder_output"] = x
        return taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images in [-1, 1] → (N, 8, H/16, W/16) representation."""
        return self._run(_check_images(x), frozenset({"encoder_output"}))["encoder_output"]

    def forward_taps(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """The requested taps (default: all of :data:`TAP_LAYERS`) in network order, from one forward pass.

        The pass stops after the last requested layer. Shapes for 256×256 input: :data:`TAP_SHAPES_256`.
        """
        wanted = _check_layers(layers)
        taps = self._run(_check_images(x), frozenset(wanted))
        return {name: taps[name] for name in wanted}


def _check_layers(layers: Sequence[str] | None) -> list[str]:
    if layers is None:
        return list(TAP_LAYERS)
    if isinstance(layers, str):
        layers = [layers]
    wanted = list(dict.fromkeys(layers))
    for name in wanted:
        if name not in TAP_LAYERS:
            raise UserInputError(unknown_name(f"Unknown layer '{name}' for the Taskonomy encoder", name, TAP_LAYERS))
    if not wanted:
        raise UserInputError(f"layers must name at least one of {', '.join(TAP_LAYERS)}, got an empty list.")
    return sorted(wanted, key=TAP_LAYERS.index)


def tap_shapes(height: int = 256, width: int | None = None) -> dict[str, tuple[int, int, int]]:
    """(C, H, W) of every tap for one (3, height, width) input, computed from the layer arithmetic."""
    width = height if width is None else width

    def conv(n: int, k: int, s: int, p: int) -> int:
        return (n + 2 * p - k) // s + 1

    def pool_ceil(n: int, k: int, s: int) -> int:  # MaxPool2d(k, s, padding=0, ceil_mode=True)
        out = math.ceil((n - k) / s) + 1
        return out - 1 if (out - 1) * s >= n else out

    hw = [height, width]
    hw = [pool_ceil(conv(n, 7, 2, 3), 3, 2) for n in hw]
    shapes: dict[str, tuple[int, int, int]] = {}
    for i, (planes, stride) in enumerate(zip(_LAYER_PLANES, _LAYER_STRIDES), start=1):
        hw = [conv(n, 3, stride, 1) for n in hw]
        shapes[f"block{i}"] = (planes * _EXPANSION, hw[0], hw[1])
    shapes["encoder_output"] = (_REPRESENTATION_CHANNELS, hw[0], hw[1])
    return shapes


#: Tap shapes (C, H, W) for a 256×256 input: block1 256×32×32, block2 512×16×16, block3 1024×16×16,
#: block4 2048×16×16, encoder_output 8×16×16 (= 2,048 values).
TAP_SHAPES_256: dict[str, tuple[int, int, int]] = tap_shapes(256)
