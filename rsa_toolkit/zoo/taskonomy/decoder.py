"""Taskonomy's task decoders (the visualpriors port's layout: its state-dict keys load with ``strict=True``): the
15-layer convolutional decoder of the pixel-to-pixel tasks and the MLP head of class_object / class_scene.
:mod:`rsa_toolkit.zoo.taskonomy.net` has the shapes and the sources."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.validation import check_int
from rsa_toolkit.zoo.taskonomy.encoder import _REPRESENTATION_CHANNELS
from rsa_toolkit.zoo.taskonomy.release import DECODER_CHANNELS, DECODER_HEADS, NO_TANH_TASKS, _check_task

__all__ = ["TaskonomyDecoder", "build_decoder"]


class _CropFirstRowCol(nn.Module):
    """Drops the first row and column (visualpriors' ``Scissor``; it crops both axes by the height)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, 1:, 1:]


def _conv_unit(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv (same padding, no bias) → BN → LeakyReLU(0.2); keys ``.0.weight`` and ``.1.*``."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2))


def _deconv_unit(in_channels: int, out_channels: int) -> nn.Sequential:
    """TF-"SAME" 3×3 stride-2 transposed conv (H → 2H) → BN → LeakyReLU(0.2); keys ``.1.weight`` and ``.3.*``.

    Zero-pad one row/column at the top/left, transposed conv with padding 1 (→ 2H+1), drop the first row/column:
    this equals the full transposed convolution cropped to its first 2H rows and columns, as TF computes it.
    """
    return nn.Sequential(nn.ZeroPad2d((1, 0, 1, 0)),
                         nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1,
                                            output_padding=0, bias=False),
                         _CropFirstRowCol(), nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2))


# (attribute, in, out, up-sampling?) of the 13 hidden layers (lines 196-212); decoder_output follows them.
_DECODER_LAYERS: tuple[tuple[str, int, int, bool], ...] = (
    ("conv2", 8, 1024, False), ("conv3", 1024, 1024, False), ("conv4", 1024, 512, False),
    ("conv5", 512, 256, False), ("conv6", 256, 256, False), ("conv7", 256, 128, False),
    ("deconv8", 128, 64, True), ("conv9", 64, 64, False),
    ("deconv10", 64, 32, True), ("conv11", 32, 32, False),
    ("deconv12", 32, 16, True), ("conv13", 16, 32, False),
    ("deconv14", 32, 16, True),
)
_MLP_WIDTH = 2048


class TaskonomyDecoder(nn.Module):
    """Taskonomy's task decoder: (N, 8, 16, 16) representation → (N, C, 256, 256) map, or (N, C) class logits.

    Conv head: 13 × (3×3 conv or TF-"SAME" stride-2 transposed conv, no bias → BN → LeakyReLU(0.2)), then a 3×3 conv
    with bias (``decoder_output``) and optional tanh; 80 state-dict keys. MLP head: 8 keys.

    Args:
        out_channels: output channels C (per task: :data:`DECODER_CHANNELS`; :func:`build_decoder` picks them).
        head: "conv" (the 15-layer convolutional decoder of the pixel-to-pixel tasks) or "mlp" (the classification
            head of class_object / class_scene).
        apply_tanh: end the conv head with tanh (visualpriors: all pixel tasks except segment_semantic). Ignored by
            the MLP head, which returns logits.

    Starts in eval mode, like visualpriors' (dropout off, BatchNorm on running statistics).
    """

    def __init__(self, out_channels: int, *, head: Literal["conv", "mlp"] = "conv", apply_tanh: bool = True) -> None:
        super().__init__()
        check_int(out_channels, name="out_channels", minimum=1, expected="a positive integer")
        if head not in ("conv", "mlp"):
            raise UserInputError(f"head must be 'conv' or 'mlp', got {head!r}.")
        self.head = head
        self.out_channels = out_channels
        self.apply_tanh = bool(apply_tanh)
        if head == "mlp":
            self.fc0 = nn.Linear(_MLP_WIDTH, _MLP_WIDTH, bias=False)
            self.bn0 = nn.BatchNorm1d(_MLP_WIDTH)
            self.relu0 = nn.ReLU()
            self.dropout = nn.Dropout(p=0.5)
            self.fc2 = nn.Linear(_MLP_WIDTH, out_channels)
        else:
            for name, c_in, c_out, up in _DECODER_LAYERS:
                self.add_module(name, _deconv_unit(c_in, c_out) if up else _conv_unit(c_in, c_out))
            output: list[nn.Module] = [nn.Conv2d(16, out_channels, kernel_size=3, stride=1, padding=1, bias=True)]
            if self.apply_tanh:
                output.append(nn.Tanh())
            self.decoder_output = nn.Sequential(*output)
        self.eval()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.ndim not in (2, 4):
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise UserInputError(f"z must be a representation tensor of shape (N, 8, H, W), got {got}.")
        if self.head == "mlp":
            if z.ndim == 4:
                z = z.permute(0, 2, 3, 1)  # the TF weights expect the NHWC flattening order
            z = z.reshape(z.shape[0], -1)
            if z.shape[1] != _MLP_WIDTH:
                raise UserInputError(f"the MLP head needs 2,048 values per image (8×16×16), got {z.shape[1]}.")
            return self.fc2(self.dropout(self.relu0(self.bn0(self.fc0(z)))))
        if z.ndim != 4 or z.shape[1] != _REPRESENTATION_CHANNELS:
            raise UserInputError(f"z must have shape (N, 8, H, W), got {tuple(z.shape)}.")
        for name, *_ in _DECODER_LAYERS:
            z = getattr(self, name)(z)
        return self.decoder_output(z)


def build_decoder(task: str) -> TaskonomyDecoder:
    """The decoder visualpriors builds for ``task``: channels, head and tanh as in its source."""
    task = _check_task(task)
    channels = DECODER_CHANNELS[task]
    if channels is None:
        raise UserInputError(f"visualpriors has no decoder for '{task}' (it ships only the encoder); "
                             f"tasks with a decoder: {', '.join(t for t, c in DECODER_CHANNELS.items() if c)}.")
    head = "mlp" if DECODER_HEADS[task] == "mlp" else "conv"
    return TaskonomyDecoder(channels, head=head, apply_tanh=task not in NO_TANH_TASKS)
