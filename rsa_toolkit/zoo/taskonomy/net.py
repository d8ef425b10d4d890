"""The Taskonomy single-image networks, laid out so that visualpriors checkpoints load with ``strict=True``.

Zamir et al., "Taskonomy: Disentangling Task Transfer Learning", CVPR 2018; PyTorch port of the released TF networks
by Sax et al. ("Mid-Level Visual Representations Improve Generalization and Sample Efficiency for Learning
Visuomotor Policies", CoRL 2019), PyPI package ``visualpriors`` 0.3.5, file ``visualpriors/taskonomy_network.py``.
The modules here are an independent implementation; only the module and attribute names (which make up the state-dict
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

The code: :mod:`~rsa_toolkit.zoo.taskonomy.encoder`, :mod:`~rsa_toolkit.zoo.taskonomy.decoder`, what visualpriors
released (:mod:`~rsa_toolkit.zoo.taskonomy.release`) and the state-dict tables
(:mod:`~rsa_toolkit.zoo.taskonomy.tables`); this module gathers their names.
"""

from __future__ import annotations

from rsa_toolkit.zoo.taskonomy.decoder import TaskonomyDecoder, build_decoder
from rsa_toolkit.zoo.taskonomy.encoder import TAP_LAYERS, TAP_MODULES, TAP_SHAPES_256, TaskonomyEncoder, tap_shapes
from rsa_toolkit.zoo.taskonomy.release import (DECODER_CHANNELS, DECODER_HEADS, ENCODER_ONLY_TASKS, NO_TANH_TASKS,
                                               VISUALPRIORS_WEIGHT_FILES, checkpoint_filename)
from rsa_toolkit.zoo.taskonomy.tables import (architecture_markdown, expected_state_dict_shapes, param_table,
                                              param_table_markdown)

__all__ = [
    "TaskonomyEncoder", "TaskonomyDecoder", "build_decoder",
    "TAP_LAYERS", "TAP_MODULES", "TAP_SHAPES_256", "tap_shapes",
    "DECODER_CHANNELS", "DECODER_HEADS", "NO_TANH_TASKS", "ENCODER_ONLY_TASKS", "VISUALPRIORS_WEIGHT_FILES",
    "checkpoint_filename", "expected_state_dict_shapes", "param_table", "param_table_markdown",
    "architecture_markdown",
]
