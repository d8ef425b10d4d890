"""The Taskonomy single-image networks, laid out so that visualpriors checkpoints load with ``strict=True``.

Zamir et al., "Taskonomy: Disentangling Task Transfer Learning", CVPR 2018; PyTorch port of the released TF networks
by Sax et al. ("Mid-Level Visual Representations Improve Generalization and Sample Efficiency for Learning
Visuomotor Policies", CoRL 2019), PyPI package ``visualpriors`` 0.3.5, file ``visualpriors/taskonomy_network.py``.
This module is an independent implementation; only the module and attribute names (which make up the state-dict
keys) and the layer hyper-parameters follow the port. docs/taskonomy_architecture.md has the full key/shape tables,
the sources and the known differences.

Shapes for one 256×256 image scaled to [-1, 1] (N, C, H, W):

    input                      (N, 3, 256, 256)
    conv1 7×7/2 (pad 3) → BN → ReLU → maxpool 3×3/2 (pad 0, ceil_mode)      (N, 64, 64, 64)
    layer1  3 bottlenecks, stride 2 in the LAST block   "block1"           (N, 256, 32, 32)
    layer2  4 bottlenecks, stride 2 in the LAST block   "block2"           (N, 512, 16, 16)
    layer3  6 bottlenecks, stride 1                     "block3"           (N, 1024, 16, 16)
    layer4  3 bottlenecks, stride 1                     "block4"           (N, 2048, 16, 16)
    compress1 3×3 conv 2048→8 → compress_bn → ReLU [→ GroupNorm(8, 8)] "encoder_output" (N, 8, 16, 16)

The stride of a layer sits in the 3×3 conv of its last bottleneck (TF-slim ``resnet_v1`` style), whose shortcut is a
parameter-free 1×1 max-pool with that stride; the first bottleneck of every layer has a 1×1 projection shortcut
(conv + BN). There is no average pool and no fully connected layer.

The decoder maps the 8×16×16 representation back to a 256×256 map. Its layers are numbered as in the TF graph,
``conv2`` … ``deconv14`` then ``decoder_output`` (15th; number 1 is presumably the encoder's ``compress1``), so it
has 14 learned layers: 6 convs at 16×16 (``conv2``-``conv7``), then up-sampling ``deconv8`` ``conv9``
``deconv10`` ``conv11`` ``deconv12`` ``conv13`` ``deconv14`` (stride-2 transposed convs, 16 → 256), all 3×3 without
bias and each followed by BN and LeakyReLU(0.2); then ``decoder_output``, a 3×3 conv with bias, and tanh (no tanh
for segment_semantic). The transposed convolutions reproduce TF's ``conv2d_transpose(padding="SAME")``:
the output is the full transposed convolution cropped to its first 2H×2W values. class_object and class_scene have
an MLP head instead (``fc0`` 2048→2048 without bias, ``bn0``, ReLU, dropout 0.5, ``fc2`` 2048→classes), which reads
the representation in TF's NHWC order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
import torch.nn as nn

from rsa_toolkit.errors import UserInputError, unknown_name
from rsa_toolkit.tasks import try_resolve_task
from rsa_toolkit.validation import check_int

__all__ = [
    "TaskonomyEncoder", "TaskonomyDecoder", "build_decoder",
    "TAP_LAYERS", "TAP_MODULES", "TAP_SHAPES_256", "tap_shapes",
    "DECODER_CHANNELS", "DECODER_HEADS", "NO_TANH_TASKS", "ENCODER_ONLY_TASKS", "VISUALPRIORS_WEIGHT_FILES",
    "checkpoint_filename", "expected_state_dict_shapes", "param_table", "param_table_markdown",
    "architecture_markdown",
]

# --------------------------------------------------------------------------------------------------------------------
# Facts from visualpriors 0.3.5 (visualpriors/taskonomy_network.py; line numbers refer to that file).
# --------------------------------------------------------------------------------------------------------------------

#: Output channels of each task's decoder, from ``CHANNELS_TO_TASKS`` (lines 36-44). ``None``: the source names no
#: decoder for the task. Earlier midlevel-reps revisions disagree for the segmentation tasks (see the docs).
DECODER_CHANNELS: dict[str, int | None] = {
    # 2D
    "autoencoding": 3,
    "colorization": 1,  # listed in CHANNELS_TO_TASKS, but visualpriors ships no colorization decoder checkpoint
    "denoising": 3,
    "edge_texture": 1,
    "inpainting": 3,
    "keypoints2d": 1,
    "segment_unsup2d": 64,  # 64-d pixel embedding (older midlevel-reps revisions said 128)
    # 3D
    "curvature": 2,  # two principal curvatures
    "depth_euclidean": 1,
    "depth_zbuffer": 1,
    "edge_occlusion": 1,
    "keypoints3d": 1,
    "normal": 3,
    "reshading": 1,
    "segment_unsup25d": 64,
    # semantic
    "class_object": 1000,  # ImageNet classes; MLP head
    "class_scene": 63,  # scene classes; MLP head
    "segment_semantic": 17,  # class logits; no tanh (DONT_APPLY_TANH_TASKS, line 58)
    # low-dim geometric: visualpriors ships encoders only and the source does not give the head or its size
    "room_layout": None,
    "vanishing_point": None,
}

#: Decoder head per task: "conv" for PIX_TO_PIX_TASKS (lines 48-54), "mlp" for the classification tasks
#: (``is_decoder_mlp = task not in PIX_TO_PIX_TASKS``, transforms.py line 224), None where no decoder exists.
DECODER_HEADS: dict[str, str | None] = {
    task: (None if n is None else "mlp" if task in ("class_object", "class_scene") else "conv")
    for task, n in DECODER_CHANNELS.items()
}

#: Tasks whose conv decoder ends without tanh (``DONT_APPLY_TANH_TASKS``, line 58).
NO_TANH_TASKS: frozenset[str] = frozenset({"segment_semantic"})

#: Tasks among the 20 for which visualpriors ships an encoder checkpoint but no decoder checkpoint.
ENCODER_ONLY_TASKS: tuple[str, ...] = ("colorization", "room_layout", "vanishing_point")

#: The checkpoint file names of the 20 single-image tasks (``TASKONOMY_PRETRAINED_WEIGHT_FILES``, lines 70-111;
#: the 5 multi-image tasks' encoders are left out). The hex part looks like the file's SHA-256 (torch.hub style).
VISUALPRIORS_WEIGHT_FILES: tuple[str, ...] = (
    "autoencoding_decoder-a4a006b5a8b314b9b0ae815c12cf80e4c5f2e6c703abdf65a64a020d3fef7941.pth",
    "autoencoding_encoder-e35146c09253720e97c0a7f8ee4e896ac931f5faa1449df003d81e6089ac6307.pth",
    "class_object_decoder-3cdb6d9ec5a221ca39352e62412c2ab5ae7a00258a962b9b67fe398566ce6c5d.pth",
    "class_object_encoder-4a4e42dad58066039a0d2f9d128bb32e93a7e4aa52edb2d2a07bcdd1a6536c18.pth",
    "class_scene_decoder-517010623d64eb108ca3225fde2a87e72e3e97137b744aa12deeff2fa4f097dc.pth",
    "class_scene_encoder-ad85764467cddafd98211313ceddebb98adf2a6bee2cedfe0b922a37ae65eaf8.pth",
    "colorization_encoder-5ed817acdd28d13e443d98ad15ebe1c3059a3252396a2dff6a2090f6f86616a5.pth",
    "curvature_decoder-b93aed18d7510ad9502755f05c1ef569c00d1fc9c4620333a764ad0d6d131fd3.pth",
    "curvature_encoder-3767cf5d06d9c6bca859631eb5a3c368d66abeb15542171b94188ffbe47d7571.pth",
    "denoising_decoder-5c4e343e885ac13ed0093b4f357680437b8a81f4d36c0b27b6ac831ba5c9fce6.pth",
    "denoising_encoder-b64cab95af4a2c565066a7e8effaf37d6586c3b9389b47fff9376478d849db38.pth",
    "depth_euclidean_decoder-f8d7d0d2bdaf55fac3bdfc8c2812c599bac84985d55503ec92960a4c8b5db7e8.pth",
    "depth_euclidean_encoder-88f18d41313de7dbc88314a7f0feec3023047303d94d73eb8622dc40334ef149.pth",
    "depth_zbuffer_decoder-4833f06833899a8d81b29c6d7eda8adf69b394a91a8c0389b0d58db523097de9.pth",
    "depth_zbuffer_encoder-cc343a8ed622fd7ee3ce54398be8682bbbbfb5d11fa80e8d03a56a5ae4e11b09.pth",
    "edge_occlusion_decoder-1b74d29a2b5afd9eb1a2cf2179289a31e2757909135615d5ba0a9164eb22505f.pth",
    "edge_occlusion_encoder-5ac3f3e918131f61e01fe95e49f462ae2fc56aa463f8d353ca84cd4e248b9c08.pth",
    "edge_texture_decoder-e241e823d6417a0c9b36b7616aad759380dfd3eb83362124e90f9ed5daa92c73.pth",
    "edge_texture_encoder-be2d686a6a4dfebe968d16146a17176eba37e29f736d5cd9a714317c93718810.pth",
    "inpainting_decoder-5982904d2a3ce470ce993d89572134dd835dd809f5cfd6290334dc0fe8b1277f.pth",
    "inpainting_encoder-bf96fbaaea9268a820a19a1d13dbf6af31798f8983c6d9203c00fab2d236a142.pth",
    "keypoints2d_decoder-0157a2a18c4e1f861c725d8d4cf3701b02e9444f47e22bdd1262c879dd2d0839.pth",
    "keypoints2d_encoder-6b77695acff4c84091c484a7b128a1e28a7e9c36243eda278598f582cf667fe0.pth",
    "keypoints3d_decoder-724ea6f255cbe4c487a984230242ec7c3557fa8234bde2487d69eacc7b9b75af.pth",
    "keypoints3d_encoder-7e3f1ec97b82ae30030b7ea4fec2dc606b71497d8c0335d05f0be3dc909d000d.pth",
    "normal_decoder-8f18bfb30ee733039f05ed4a65b4db6f7cc1f8a4b9adb4806838e2bf88e020ec.pth",
    "normal_encoder-f5e2c7737e4948e3b2a822f584892c342eaabbe66661576ba50db7cdd40561c5.pth",
    "reshading_decoder-5bda58f921a3065992ab0034aa0ed787af97f26ac9e5668746dae49c299606cb.pth",
    "reshading_encoder-de456246e171dc8407fb2951539aa60d75925ae0f1dbb43f110b7768398b36a6.pth",
    "room_layout_encoder-1e1662f43b834261464b1825227a04efba59b50cc8883bee9adc3ddafd4796c1.pth",
    "segment_semantic_decoder-d74c6fcf4e0f2bbdce9afe21f9064453a2ac5c7131226527b1d0748f701d04a0.pth",
    "segment_semantic_encoder-bb3007244520fc89cd111e099744a22b1e5c98cd83ed3f116fbff6376d220127.pth",
    "segment_unsup25d_decoder-64c1553cadf76e7efd59138321dc94d186a27eb2bb21e5e6c2624ae825bd4da1.pth",
    "segment_unsup25d_encoder-7d12d2500c18c003ffc23943214f5dfd74932f0e3d03dde2c3a81ebc406e31a0.pth",
    "segment_unsup2d_decoder-a0f3975a22032f116d36e3f3a49f33ddcd6e798cced3ac0962eef5bdccfc397f.pth",
    "segment_unsup2d_encoder-b679053a920e8bcabf0cd454606098ae85341e054080f2be29473971d4265964.pth",
    "vanishing_point_encoder-afd2ae9b71d46a54efc5231b3e38ebc3e35bfab78cb0a78d9b75863a240b19a8.pth",
)
_WEIGHT_FILE_BY_STEM: dict[str, str] = {f.split("-", 1)[0]: f for f in VISUALPRIORS_WEIGHT_FILES}

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


# --------------------------------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------------------------------

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


def _check_task(task: str) -> str:
    if task not in DECODER_CHANNELS:  # aliases (rgb2depth, normals, ...) resolve to canonical names
        resolved = try_resolve_task(task) if isinstance(task, str) else None
        if resolved is None:
            raise UserInputError(unknown_name(f"Unknown Taskonomy task '{task}'", task, DECODER_CHANNELS))
        task = resolved.name
    return task


def build_decoder(task: str) -> TaskonomyDecoder:
    """The decoder visualpriors builds for ``task``: channels, head and tanh as in its source."""
    task = _check_task(task)
    channels = DECODER_CHANNELS[task]
    if channels is None:
        raise UserInputError(f"visualpriors has no decoder for '{task}' (it ships only the encoder); "
                             f"tasks with a decoder: {', '.join(t for t, c in DECODER_CHANNELS.items() if c)}.")
    head = "mlp" if DECODER_HEADS[task] == "mlp" else "conv"
    return TaskonomyDecoder(channels, head=head, apply_tanh=task not in NO_TANH_TASKS)


def checkpoint_filename(task: str, part: Literal["encoder", "decoder"]) -> str | None:
    """visualpriors' file name for a task's encoder or decoder checkpoint; None where none was released."""
    if part not in ("encoder", "decoder"):
        raise UserInputError(f"part must be 'encoder' or 'decoder', got {part!r}.")
    return _WEIGHT_FILE_BY_STEM.get(f"{_check_task(task)}_{part}")


# --------------------------------------------------------------------------------------------------------------------
# State-dict tables
# --------------------------------------------------------------------------------------------------------------------

def expected_state_dict_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Every state-dict key (parameters and buffers, in order) with its shape."""
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def param_table(module: nn.Module) -> list[dict[str, object]]:
    """One row per state-dict entry: key, shape, kind ("parameter"/"buffer"), numel, dtype."""
    parameters = {name for name, _ in module.named_parameters()}
    return [{"key": key, "shape": tuple(value.shape), "kind": "parameter" if key in parameters else "buffer",
             "numel": value.numel(), "dtype": str(value.dtype).removeprefix("torch.")}
            for key, value in module.state_dict().items()]


def _shape_text(shape: Iterable[int]) -> str:
    shape = tuple(shape)
    return "()" if not shape else "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def param_table_markdown(module: nn.Module) -> str:
    """A markdown table of :func:`param_table`, preceded by a one-line count summary."""
    rows = param_table(module)
    n_param = sum(r["kind"] == "parameter" for r in rows)
    numel = sum(int(r["numel"]) for r in rows if r["kind"] == "parameter")  # type: ignore[arg-type]
    nbt = sum(str(r["key"]).endswith("num_batches_tracked") for r in rows)
    lines = [f"{len(rows)} keys: {n_param} parameters ({numel:,} values), {len(rows) - n_param} buffers "
             f"(of which {nbt} `num_batches_tracked`).", "",
             "| # | key | shape | kind |", "|---:|---|---|---|"]
    lines += [f"| {i} | `{r['key']}` | {_shape_text(r['shape'])} | {r['kind']} |"  # type: ignore[arg-type]
              for i, r in enumerate(rows)]
    return "\n".join(lines)


def _summary_markdown(module: nn.Module) -> str:
    groups: dict[str, list[int]] = {}
    for row in param_table(module):
        top = str(row["key"]).split(".", 1)[0]
        count = groups.setdefault(top, [0, 0])
        count[0] += 1
        count[1] += int(row["numel"]) if row["kind"] == "parameter" else 0  # type: ignore[arg-type]
    lines = ["| module | keys | parameter values |", "|---|---:|---:|"]
    lines += [f"| `{name}` | {k} | {n:,} |" for name, (k, n) in groups.items()]
    lines.append(f"| **total** | {sum(k for k, _ in groups.values())} | {sum(n for _, n in groups.values()):,} |")
    return "\n".join(lines)


def architecture_markdown() -> str:
    """The generated part of docs/taskonomy_architecture.md: summaries and full key/shape tables."""
    encoder, conv_decoder, mlp_decoder = TaskonomyEncoder(), build_decoder("normal"), build_decoder("class_object")
    parts = [
        "### Encoder (`TaskonomyEncoder`, every task)", "", _summary_markdown(encoder), "",
        "### Conv decoder (`TaskonomyDecoder(3)`, shown for normal)", "",
        "Only `decoder_output.0.*` depends on the task: (C, 16, 3, 3) and (C,), C from the channel table.", "",
        _summary_markdown(conv_decoder), "",
        "### MLP decoder (`TaskonomyDecoder(1000, head=\"mlp\")`, shown for class_object)", "",
        "Only `fc2.*` depends on the task: (C, 2048) and (C,); C = 1000 (class_object) or 63 (class_scene).", "",
        _summary_markdown(mlp_decoder), "",
        "### Full table: encoder", "", param_table_markdown(encoder), "",
        "### Full table: conv decoder (normal, C = 3)", "", param_table_markdown(conv_decoder), "",
        "### Full table: MLP decoder (class_object, C = 1000)", "", param_table_markdown(mlp_decoder),
    ]
    return "\n".join(parts) + "\n"
