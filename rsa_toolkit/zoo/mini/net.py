"""The mini-Taskonomy teacher network: the Taskonomy contract (encoder -> 8 x 16 x 16 representation -> decoder or
head) at 64 x 64 pixels.

* :class:`MiniEncoder`: 3 x 64 x 64 in [-1, 1] -> 8 x 16 x 16 (two stride-2 convolutions, then residual blocks at
  16 x 16, widths 16-32-64-96; the last 1 x 1 convolution is linear, like Taskonomy's encoder output).
* :class:`PixelDecoder`: 8 x 16 x 16 -> C x 64 x 64 (two bilinear x2 upsamplings), for per-pixel tasks.
* :class:`VectorHead`: 8 x 16 x 16 -> K, for image-level tasks (classes, room layout, vanishing points).

The representation is the output of the module named ``encoder``, the layer RSA taps by default. BatchNorm runs in
eval mode at inference, so a frame's features do not depend on its batch.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from rsa_toolkit.scenes import LABEL_SPECS
from rsa_toolkit.tasks import resolve_task

__all__ = ["MiniEncoder", "PixelDecoder", "VectorHead", "MiniTeacherNet", "build_teacher_net", "output_channels",
           "check_frame_size", "ENCODER_STRIDE", "INPUT_SIZE", "REPRESENTATION_SHAPE", "EMBEDDING_DIM"]

INPUT_SIZE = 64
REPRESENTATION_SHAPE = (8, 16, 16)
EMBEDDING_DIM = 8  # per-pixel embedding of the unsupervised segmentation tasks
_N_SEMANTIC = 8  # ids 0..7 (0 never occurs, kept so that logits index ids directly)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = _conv(width, width)
        self.conv2 = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.conv2(self.conv1(x)))


class MiniEncoder(nn.Sequential):
    def __init__(self, widths: tuple[int, int, int, int] = (16, 32, 64, 96)) -> None:
        w1, w2, w3, w4 = widths
        super().__init__()
        self.add_module("stem", _conv(3, w1))                       # 64 x 64
        self.add_module("block1", nn.Sequential(_conv(w1, w2, 2), _conv(w2, w2)))          # 32 x 32
        self.add_module("block2", nn.Sequential(_conv(w2, w3, 2), _Residual(w3)))          # 16 x 16
        self.add_module("block3", nn.Sequential(_conv(w3, w4), _Residual(w4)))             # 16 x 16
        self.add_module("representation", nn.Conv2d(w4, REPRESENTATION_SHAPE[0], 1))       # 8 x 16 x 16, linear


class PixelDecoder(nn.Sequential):
    def __init__(self, channels: int, widths: tuple[int, int, int] = (64, 48, 32)) -> None:
        w1, w2, w3 = widths
        super().__init__()
        self.add_module("block1", nn.Sequential(_conv(REPRESENTATION_SHAPE[0], w1), _conv(w1, w1)))   # 16 x 16
        self.add_module("up1", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        self.add_module("block2", _conv(w1, w2))                                                       # 32 x 32
        self.add_module("up2", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        self.add_module("block3", _conv(w2, w3))                                                       # 64 x 64
        self.add_module("out", nn.Conv2d(w3, channels, 1))


class VectorHead(nn.Sequential):
    def __init__(self, outputs: int, hidden: int = 128) -> None:
        super().__init__()
        self.add_module("conv", _conv(REPRESENTATION_SHAPE[0], 32, 2))  # 32 x 8 x 8
        self.add_module("flatten", nn.Flatten())
        self.add_module("fc", nn.Sequential(nn.Linear(32 * 8 * 8, hidden), nn.ReLU(inplace=True)))
        self.add_module("out", nn.Linear(hidden, outputs))


class MiniTeacherNet(nn.Module):
    """``encoder`` then ``decoder`` (a :class:`PixelDecoder` or :class:`VectorHead`); ``forward`` returns the task
    output (raw: logits for classes and edges, log depth for depths, embeddings for unsupervised segments)."""

    def __init__(self, task: str, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.task = task
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


ENCODER_STRIDE = 4


def check_frame_size(size: object, *, teacher_input: bool = False) -> int:
    """A frame size the teachers' encoder can take: a multiple of its stride (4); exactly 64 for training, whose
    image-level heads expect the 16 x 16 representation."""
    from rsa_toolkit.validation import check_int
    from rsa_toolkit.errors import UserInputError

    size = check_int(size, name="size", minimum=16)
    if size % ENCODER_STRIDE:
        raise UserInputError(f"frame size {size} is not divisible by the encoder's stride {ENCODER_STRIDE}; "
                             f"use e.g. {size - size % ENCODER_STRIDE} or {INPUT_SIZE}.")
    if teacher_input and size != INPUT_SIZE:
        raise UserInputError(f"the mini teachers take {INPUT_SIZE} x {INPUT_SIZE} frames, got a shard of {size} px; "
                             f"render it with --size {INPUT_SIZE}.")
    return size


def output_channels(task: str) -> int:
    """Channels (pixel tasks) or outputs (image-level tasks) of ``task``'s network."""
    task = resolve_task(task)
    spec = LABEL_SPECS[task]
    if task == "segment_semantic":
        return _N_SEMANTIC
    if task.startswith("segment_unsup"):
        return EMBEDDING_DIM
    return spec.channels


def build_teacher_net(task: str) -> MiniTeacherNet:
    """A freshly initialised teacher for ``task`` (any name or alias); the seed is the caller's torch seed."""
    task = resolve_task(task)
    head = PixelDecoder if LABEL_SPECS[task].per_pixel else VectorHead
    return MiniTeacherNet(task, MiniEncoder(), head(output_channels(task)))
