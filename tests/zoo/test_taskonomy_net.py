"""The Taskonomy encoder/decoder against the visualpriors checkpoint layout.

The independent reference is the public source, transcribed here as literals: PyPI package visualpriors 0.3.5,
file visualpriors/taskonomy_network.py (sdist sha256 4a92a7b92534531f3e53d8e47b92362c5af200cefbf4e7e25d7d690d671b6f21;
the encoder and conv decoder are the same in alexsax/midlevel-reps@f357e1ee80e1e9baf6f8ddf3e4a8caa8c1344aae,
visualpriors/taskonomy_network.py). "line N" below refers to the visualpriors 0.3.5 file. No real checkpoint is
available offline, so the loading path is tested on randomly initialised networks saved in the visualpriors format
({'state_dict': ...}).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.zoo.taskonomy.net import (
    DECODER_CHANNELS,
    DECODER_HEADS,
    ENCODER_ONLY_TASKS,
    TAP_LAYERS,
    TAP_SHAPES_256,
    TaskonomyDecoder,
    TaskonomyEncoder,
    architecture_markdown,
    build_decoder,
    checkpoint_filename,
    expected_state_dict_shapes,
    param_table,
    tap_shapes,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "taskonomy_architecture.md"

# ---- literals transcribed from visualpriors 0.3.5 visualpriors/taskonomy_network.py --------------------------------

# Encoder keys: conv1 (line 330: Conv2d(3, 64, 7)), bn1 (331), Bottleneck convs/bns (286-291: 1x1 in->planes,
# 3x3 planes->planes, 1x1 planes->4*planes), projection shortcut of each layer's first block (368-372:
# Conv2d(inplanes, 4*planes, 1) + BatchNorm2d), compress1 (340: Conv2d(2048, 8, 3)), compress_bn (341).
ENCODER_SPOT = {
    "conv1.weight": (64, 3, 7, 7),
    "bn1.weight": (64,),
    "bn1.running_var": (64,),
    "bn1.num_batches_tracked": (),
    "layer1.0.conv1.weight": (64, 64, 1, 1),
    "layer1.0.conv2.weight": (64, 64, 3, 3),
    "layer1.0.conv3.weight": (256, 64, 1, 1),
    "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer1.0.downsample.1.running_mean": (256,),
    "layer1.1.conv1.weight": (64, 256, 1, 1),
    "layer1.2.bn3.bias": (256,),
    "layer2.0.conv1.weight": (128, 256, 1, 1),
    "layer2.0.downsample.0.weight": (512, 256, 1, 1),
    "layer2.3.conv2.weight": (128, 128, 3, 3),
    "layer2.3.conv3.weight": (512, 128, 1, 1),
    "layer3.0.downsample.0.weight": (1024, 512, 1, 1),
    "layer3.5.bn3.running_mean": (1024,),
    "layer4.0.conv1.weight": (512, 1024, 1, 1),
    "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "layer4.2.conv2.weight": (512, 512, 3, 3),
    "layer4.2.conv3.weight": (2048, 512, 1, 1),
    "compress1.weight": (8, 2048, 3, 3),
    "compress_bn.weight": (8,),
    "compress_bn.running_mean": (8,),
}
# Keys that must NOT exist: the strided last block's shortcut is MaxPool2d(1, stride) (lines 379-383, no parameters);
# groupnorm is GroupNorm(8, 8, affine=False) (line 343); no fc / avgpool; Bottleneck.conv2 has bias=False (288).
ENCODER_ABSENT = ["layer1.2.downsample.0.weight", "layer2.3.downsample.0.weight", "groupnorm.weight",
                  "groupnorm.bias", "fc.weight", "layer1.0.conv2.bias", "compress1.bias"]
# 16 bottlenecks x (3 convs + 3 BN x 5 entries) + 4 projections x (1 + 5) + conv1/bn1 (6) + compress1/compress_bn (6).
ENCODER_KEYS = 16 * 18 + 4 * 6 + 6 + 6  # 324
ENCODER_BATCHNORMS = 1 + 16 * 3 + 4 + 1  # 54 num_batches_tracked buffers
ENCODER_PARAMETER_VALUES = 23_508_032 + 2048 * 8 * 9 + 2 * 8  # torchvision-style ResNet-50 w/o fc + compress

# Conv decoder (lines 196-217 and _make_layer 227-242): Sequential(conv, bn, lrelu) for convs -> keys .0 / .1;
# Sequential(pad, convT, scissor, bn, lrelu) for deconvs -> keys .1 / .3; ConvTranspose2d weight is (in, out, k, k).
DECODER_SPOT = {
    "conv2.0.weight": (1024, 8, 3, 3),
    "conv2.1.running_mean": (1024,),
    "conv3.0.weight": (1024, 1024, 3, 3),
    "conv4.0.weight": (512, 1024, 3, 3),
    "conv7.0.weight": (128, 256, 3, 3),
    "deconv8.1.weight": (128, 64, 3, 3),
    "deconv8.3.weight": (64,),
    "conv9.0.weight": (64, 64, 3, 3),
    "deconv10.1.weight": (64, 32, 3, 3),
    "deconv12.1.weight": (32, 16, 3, 3),
    "conv13.0.weight": (32, 16, 3, 3),
    "conv13.1.num_batches_tracked": (),
    "deconv14.1.weight": (32, 16, 3, 3),
    "deconv14.3.bias": (16,),
}
DECODER_ABSENT = ["deconv8.0.weight", "deconv8.2.weight", "conv2.0.bias", "deconv14.1.bias", "conv1.0.weight",
                  "conv14.0.weight", "decoder_output.1.weight"]
DECODER_KEYS = 13 * 6 + 2  # 13 x (conv + BN) + decoder_output conv weight/bias = 80
# MLP head (lines 190-194): fc0 Linear(2048, 2048, bias=False), bn0 BatchNorm1d(2048), fc2 Linear(2048, C).
MLP_KEYS = {"fc0.weight": (2048, 2048), "bn0.weight": (2048,), "bn0.bias": (2048,), "bn0.running_mean": (2048,),
            "bn0.running_var": (2048,), "bn0.num_batches_tracked": (), "fc2.weight": (1000, 2048), "fc2.bias": (1000,)}
# CHANNELS_TO_TASKS (lines 36-44); PIX_TO_PIX_TASKS (48-54) get the conv head, the rest the MLP head (transforms.py
# line 224); DONT_APPLY_TANH_TASKS = ['segment_semantic'] (line 58).
SOURCE_CHANNELS = {
    "autoencoding": 3, "denoising": 3, "normal": 3, "inpainting": 3, "curvature": 2,
    "colorization": 1, "edge_texture": 1, "edge_occlusion": 1, "keypoints3d": 1, "keypoints2d": 1, "reshading": 1,
    "depth_zbuffer": 1, "depth_euclidean": 1, "segment_semantic": 17, "class_scene": 63, "segment_unsup2d": 64,
    "segment_unsup25d": 64, "class_object": 1000,
}
# Documented tap shapes (C, H, W) for a 256x256 input: layer1/2 stride 2 (lines 336-337), layer3/4 stride 1 (338-339).
TAPS_256 = {"block1": (256, 32, 32), "block2": (512, 16, 16), "block3": (1024, 16, 16), "block4": (2048, 16, 16),
            "encoder_output": (8, 16, 16)}


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Random weights and non-trivial BatchNorm statistics, so a round trip that dropped any entry would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(int(torch.randint(1, 10_000, (1,), generator=g)))
    return module


def _image(size: int | tuple[int, int] = 256, seed: int = 0) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, 3, h, w), generator=g) * 2 - 1  # RGB scaled to [-1, 1]


@pytest.fixture(scope="module")
def encoder() -> TaskonomyEncoder:
    torch.manual_seed(0)
    return _randomise(TaskonomyEncoder(), seed=1)


@pytest.fixture(scope="module")
def taps_256(encoder: TaskonomyEncoder) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return encoder.forward_taps(_image(256))


# ---- state dict layout ----------------------------------------------------------------------------------------------

def test_encoder_state_dict_matches_source_layout(encoder: TaskonomyEncoder) -> None:
    shapes = expected_state_dict_shapes(encoder)
    assert len(shapes) == ENCODER_KEYS == 324
    assert sum(k.endswith("num_batches_tracked") for k in shapes) == ENCODER_BATCHNORMS
    assert sum(p.numel() for p in encoder.parameters()) == ENCODER_PARAMETER_VALUES
    for key, shape in ENCODER_SPOT.items():
        assert shapes.get(key) == shape, key
    for key in ENCODER_ABSENT:
        assert key not in shapes, key
    # Block counts per layer: 3, 4, 6, 3 (line 335).
    for layer, blocks in zip(("layer1", "layer2", "layer3", "layer4"), (3, 4, 6, 3)):
        assert f"{layer}.{blocks - 1}.conv1.weight" in shapes and f"{layer}.{blocks}.conv1.weight" not in shapes
    # The GroupNorm option changes no key.
    assert expected_state_dict_shapes(TaskonomyEncoder(normalize_outputs=True)) == shapes


def test_conv_decoder_state_dict_matches_source_layout() -> None:
    torch.manual_seed(0)
    for channels in (1, 17):
        shapes = expected_state_dict_shapes(TaskonomyDecoder(channels))
        assert len(shapes) == DECODER_KEYS == 80
        for key, shape in DECODER_SPOT.items():
            assert shapes.get(key) == shape, key
        for key in DECODER_ABSENT:
            assert key not in shapes, key
        assert shapes["decoder_output.0.weight"] == (channels, 16, 3, 3)
        assert shapes["decoder_output.0.bias"] == (channels,)


def test_mlp_decoder_state_dict_matches_source_layout() -> None:
    torch.manual_seed(0)
    assert expected_state_dict_shapes(TaskonomyDecoder(1000, head="mlp")) == MLP_KEYS
    scene = expected_state_dict_shapes(build_decoder("class_scene"))
    assert scene["fc2.weight"] == (63, 2048) and scene["fc2.bias"] == (63,)


def test_decoder_channels_and_heads_follow_the_source() -> None:
    for task, channels in SOURCE_CHANNELS.items():
        assert DECODER_CHANNELS[task] == channels, task
    assert DECODER_CHANNELS["room_layout"] is None and DECODER_CHANNELS["vanishing_point"] is None
    assert len(DECODER_CHANNELS) == 20
    assert {t for t, h in DECODER_HEADS.items() if h == "mlp"} == {"class_object", "class_scene"}
    assert set(ENCODER_ONLY_TASKS) == {"colorization", "room_layout", "vanishing_point"}


def test_param_table_rows() -> None:
    torch.manual_seed(0)
    decoder = TaskonomyDecoder(2)
    rows = param_table(decoder)
    assert [r["key"] for r in rows] == list(decoder.state_dict())
    kinds = {r["key"]: r["kind"] for r in rows}
    assert kinds["conv2.0.weight"] == "parameter" and kinds["conv2.1.running_var"] == "buffer"
    assert sum(r["kind"] == "parameter" for r in rows) == 13 * 3 + 2


# ---- forward shapes -------------------------------------------------------------------------------------------------

def test_taps_have_documented_shapes(encoder: TaskonomyEncoder, taps_256: dict[str, torch.Tensor]) -> None:
    assert list(taps_256) == list(TAP_LAYERS) == list(TAPS_256)
    for name, tensor in taps_256.items():
        assert tuple(tensor.shape) == (1, *TAPS_256[name]), name
    assert TAP_SHAPES_256 == TAPS_256 == tap_shapes(256)
    assert taps_256["encoder_output"].numel() == 2048
    assert (taps_256["encoder_output"] >= 0).all()  # ends in ReLU without the GroupNorm option


def test_forward_equals_encoder_output_tap(encoder: TaskonomyEncoder) -> None:
    x = _image(64, seed=2)
    with torch.inference_mode():
        assert torch.equal(encoder(x), encoder.forward_taps(x)["encoder_output"])


def test_forward_taps_subset_and_order(encoder: TaskonomyEncoder) -> None:
    x = _image(64, seed=3)
    with torch.inference_mode():
        full = encoder.forward_taps(x)
        part = encoder.forward_taps(x, ["block2", "block1"])
    assert list(part) == ["block1", "block2"]
    assert torch.equal(part["block2"], full["block2"])


@pytest.mark.parametrize("size", [(64, 96), (50, 70)])  # even and odd sizes (ceil_mode max-pool)
def test_tap_shapes_formula_matches_forward(encoder: TaskonomyEncoder, size: int | tuple[int, int]) -> None:
    h, w = (size, size) if isinstance(size, int) else size
    with torch.inference_mode():
        taps = encoder.forward_taps(_image((h, w)))
    assert {k: tuple(v.shape[1:]) for k, v in taps.items()} == tap_shapes(h, w)


def test_groupnorm_option(encoder: TaskonomyEncoder) -> None:
    torch.manual_seed(0)
    normed = TaskonomyEncoder(normalize_outputs=True)
    normed.load_state_dict(encoder.state_dict(), strict=True)
    x = _image(128, seed=4)
    with torch.inference_mode():
        out, raw = normed(x), encoder(x)
    assert tuple(out.shape) == (1, 8, 8, 8)
    # GroupNorm(8, 8, affine=False): each channel standardised over its spatial positions (line 343).
    mean = raw.mean(dim=(2, 3), keepdim=True)
    var = raw.var(dim=(2, 3), unbiased=False, keepdim=True)
    torch.testing.assert_close(out, (raw - mean) / torch.sqrt(var + 1e-5), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("task,channels,tanh", [("normal", 3, True), ("segment_unsup2d", 64, True),
                                                ("segment_semantic", 17, False)])
def test_decoder_output_shape(taps_256: dict[str, torch.Tensor], task: str, channels: int, tanh: bool) -> None:
    torch.manual_seed(0)
    decoder = build_decoder(task)
    assert any(isinstance(m, nn.Tanh) for m in decoder.modules()) is tanh
    with torch.inference_mode():
        y = decoder(taps_256["encoder_output"])
    assert tuple(y.shape) == (1, channels, 256, 256)
    if tanh:
        assert y.abs().max() <= 1


def test_mlp_decoder_reads_nhwc_order() -> None:
    """visualpriors permutes NCHW -> NHWC before flattening (lines 246-251): check against a hand computation."""
    torch.manual_seed(0)
    head = _randomise(TaskonomyDecoder(63, head="mlp"), seed=2)
    z = torch.rand(2, 8, 16, 16)
    flat = z.permute(0, 2, 3, 1).reshape(2, 2048)
    bn = head.bn0
    h = flat @ head.fc0.weight.T
    h = (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    expected = torch.relu(h) @ head.fc2.weight.T + head.fc2.bias
    with torch.inference_mode():
        torch.testing.assert_close(head(z), expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(head(flat), expected, rtol=1e-4, atol=1e-4)  # already-flat input: no permute


def test_deconv_is_tf_same_transposed_conv() -> None:
    """pad (1,0,1,0) -> ConvTranspose2d(3, stride 2, padding 1) -> drop first row/col == TF conv2d_transpose SAME,
    i.e. the full transposed convolution cropped to its first 2H x 2W values."""
    torch.manual_seed(0)
    decoder = TaskonomyDecoder(3)
    for name in ("deconv8", "deconv14"):
        unit = getattr(decoder, name)
        weight = unit[1].weight
        x = torch.randn(2, weight.shape[0], 5, 7)
        with torch.inference_mode():
            ours = unit[2](unit[1](unit[0](x)))
            full = F.conv_transpose2d(x, weight, stride=2)  # (2H+1) x (2W+1)
        assert ours.shape[-2:] == (10, 14)
        torch.testing.assert_close(ours, full[..., :10, :14], rtol=1e-5, atol=1e-5)


def test_modules_start_in_eval_mode(encoder: TaskonomyEncoder) -> None:
    torch.manual_seed(0)
    assert not encoder.training
    assert not TaskonomyDecoder(1, head="mlp").training


# ---- checkpoint round trip ------------------------------------------------------------------------------------------

def test_encoder_checkpoint_round_trip(encoder: TaskonomyEncoder, tmp_path: Path) -> None:
    path = tmp_path / "normal_encoder-0000.pth"
    torch.save({"state_dict": encoder.state_dict()}, path)
    checkpoint = torch.load(path, weights_only=True)
    torch.manual_seed(123)  # a differently initialised network, so every entry must come from the file
    loaded = TaskonomyEncoder()
    result = loaded.load_state_dict(checkpoint["state_dict"], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    original, restored = encoder.state_dict(), loaded.state_dict()
    assert list(original) == list(restored)
    for key in original:
        assert original[key].dtype == restored[key].dtype and torch.equal(original[key], restored[key]), key
    x = _image(64, seed=5)
    with torch.inference_mode():
        before, after = encoder.forward_taps(x), loaded.forward_taps(x)
    for name in TAP_LAYERS:
        assert torch.equal(before[name], after[name]), name


@pytest.mark.parametrize("task", ["normal", "class_object"])
def test_decoder_checkpoint_round_trip(task: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    decoder = _randomise(build_decoder(task), seed=4)
    path = tmp_path / f"{task}_decoder-0000.pth"
    torch.save({"state_dict": decoder.state_dict()}, path)
    torch.manual_seed(321)
    loaded = build_decoder(task)
    loaded.load_state_dict(torch.load(path, weights_only=True)["state_dict"], strict=True)
    for key, value in decoder.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    z = torch.rand(2, 8, 16, 16) if task == "class_object" else torch.rand(1, 8, 4, 4)
    with torch.inference_mode():
        assert torch.equal(decoder(z), loaded(z))


def test_strict_load_rejects_a_different_layout(encoder: TaskonomyEncoder) -> None:
    torch.manual_seed(0)
    target = TaskonomyEncoder()
    sd = dict(encoder.state_dict())
    missing = {k: v for k, v in sd.items() if k != "compress1.weight"}
    with pytest.raises(RuntimeError, match="compress1.weight"):
        target.load_state_dict(missing, strict=True)
    wrong = {**sd, "compress1.weight": torch.zeros(16, 2048, 3, 3)}
    with pytest.raises(RuntimeError, match="size mismatch"):
        target.load_state_dict(wrong, strict=True)
    extra = {**sd, "groupnorm.weight": torch.ones(8)}
    with pytest.raises(RuntimeError, match="Unexpected key"):
        target.load_state_dict(extra, strict=True)
    with pytest.raises(RuntimeError, match="size mismatch"):
        TaskonomyDecoder(3).load_state_dict(TaskonomyDecoder(1).state_dict(), strict=True)


# ---- names, errors, docs --------------------------------------------------------------------------------------------

def test_checkpoint_filenames() -> None:
    assert checkpoint_filename("normal", "encoder") == (
        "normal_encoder-f5e2c7737e4948e3b2a822f584892c342eaabbe66661576ba50db7cdd40561c5.pth")
    assert checkpoint_filename("rgb2depth", "decoder").startswith("depth_zbuffer_decoder-")  # alias accepted
    for task in DECODER_CHANNELS:
        assert checkpoint_filename(task, "encoder") is not None, task
        assert (checkpoint_filename(task, "decoder") is None) is (task in ENCODER_ONLY_TASKS), task


def test_errors_name_the_problem(encoder: TaskonomyEncoder) -> None:
    with pytest.raises(UserInputError, match=r"Unknown layer 'block5'.*Available: block1, block2"):
        encoder.forward_taps(_image(32), ["block5"])
    with pytest.raises(UserInputError, match=r"x must have shape \(N, 3, H, W\).*got \(1, 1, 32, 32\)"):
        encoder(torch.zeros(1, 1, 32, 32))
    with pytest.raises(UserInputError, match="ships only the encoder"):
        build_decoder("vanishing_point")
    with pytest.raises(UserInputError, match=r"Unknown Taskonomy task 'normall'. Did you mean 'normal'"):
        build_decoder("normall")
    with pytest.raises(UserInputError, match="out_channels must be a positive integer"):
        TaskonomyDecoder(0)
    with pytest.raises(UserInputError, match=r"z must have shape \(N, 8, H, W\)"):
        TaskonomyDecoder(1)(torch.zeros(1, 4, 16, 16))


def test_docs_tables_are_generated_from_param_table() -> None:
    assert architecture_markdown() in DOCS.read_text(encoding="utf-8")
