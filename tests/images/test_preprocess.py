"""Preprocessing on hand-made images with known answers, and the resize against scikit-image's as an independent
reference (the released RSA/Taskonomy code resized with skimage.transform.resize(order=1), no anti-aliasing)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.transform import resize as sk_resize

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.images.preprocess import (
    LOW_SAT_TASKS,
    LOW_SAT_TF_NAMES,
    PREPROCESSINGS,
    PlainPreprocessing,
    Preprocessing,
    TaskonomyPreprocessing,
    get_preprocessing,
    preprocess_batch,
    taskonomy_preprocessing,
)
from rsa_toolkit.tasks import list_tasks

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _columns_image(h: int, w: int) -> np.ndarray:
    """Pixel (r, c) = (c + 1) / 10 + r / 100 in every channel: each output value says where it came from."""
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    img = (c + 1) / 10 + r / 100
    return np.repeat(img[:, :, None], 3, axis=2).astype(np.float32)


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


# --- crop --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prep", [TaskonomyPreprocessing(size=4), PlainPreprocessing(size=4, mean=None, std=None)])
def test_centre_crop_of_wide_image_keeps_middle_columns(prep):
    img = _columns_image(4, 6)
    out = _hwc(prep(img))
    expected = img[:, 1:5]
    if isinstance(prep, TaskonomyPreprocessing):
        expected = expected * 2 - 1
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("prep", [TaskonomyPreprocessing(size=4), PlainPreprocessing(size=4, mean=None, std=None)])
def test_centre_crop_of_tall_image_keeps_middle_rows(prep):
    img = _columns_image(6, 4)
    out = _hwc(prep(img))
    expected = img[1:5, :]
    if isinstance(prep, TaskonomyPreprocessing):
        expected = expected * 2 - 1
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_taskonomy_crop_matches_released_code_on_odd_sides():
    # load_raw_image_center_crop: l = min(H, W) // 2; img[H//2-l : H//2+l, W//2-l : W//2+l] -> side 4 for 5 x 7.
    img = _columns_image(5, 7)
    out = _hwc(TaskonomyPreprocessing(size=4)(img))
    l = 5 // 2
    released = img[5 // 2 - l: 5 // 2 + l, 7 // 2 - l: 7 // 2 + l]
    np.testing.assert_allclose(out, released * 2 - 1, atol=1e-6)
    # the plain crop keeps the full shorter side (5), torchvision offsets: left = round((7 - 5) / 2) = 1
    plain = _hwc(PlainPreprocessing(size=5, mean=None, std=None)(img))
    np.testing.assert_array_equal(plain, img[:, 1:6])


def test_one_pixel_high_image_keeps_centre_pixel():
    img = _columns_image(1, 5)
    out = TaskonomyPreprocessing(size=1)(img)
    assert out.shape == (3, 1, 1)
    assert out[0, 0, 0].item() == pytest.approx(img[0, 2, 0] * 2 - 1, abs=1e-6)


# --- values ------------------------------------------------------------------------------------------------------------


def test_zero_half_one_map_exactly_to_minus_one_zero_one():
    img = np.zeros((2, 2, 3), dtype=np.float32)
    img[0, 0], img[0, 1], img[1, 0], img[1, 1] = 0.0, 0.5, 1.0, 0.25
    out = TaskonomyPreprocessing(size=2)(img)
    expected = torch.tensor([[-1.0, 0.0], [1.0, -0.5]]).expand(3, 2, 2)
    assert torch.equal(out, expected)


def test_low_saturation_clips_to_01_09_then_scales():
    img = np.zeros((2, 2, 3), dtype=np.float32)
    img[0, 0], img[0, 1], img[1, 0], img[1, 1] = 0.05, 0.95, 0.5, 0.0
    low = TaskonomyPreprocessing(size=2, low_saturation=True)(img)
    np.testing.assert_allclose(low[0].numpy(), [[-0.8, 0.8], [0.0, -0.8]], atol=1e-6)
    plain = TaskonomyPreprocessing(size=2, low_saturation=False)(img)
    np.testing.assert_allclose(plain[0].numpy(), [[-0.9, 0.9], [0.0, -1.0]], atol=1e-6)


def test_low_saturation_clips_after_the_resize():
    # 2x2 [[0, .5], [0, .5]] -> 1x1 is the mean 0.25 (no clip needed); clipping first would give (0.1 + 0.5) / 2.
    img = np.zeros((2, 2, 3), dtype=np.float32)
    img[:, 1] = 0.5
    out = TaskonomyPreprocessing(size=1, low_saturation=True)(img)
    assert out.flatten().tolist() == pytest.approx([-0.5] * 3, abs=1e-6)


@pytest.mark.parametrize("prep", [TaskonomyPreprocessing(size=16), TaskonomyPreprocessing(size=16, low_saturation=True),
                                  PlainPreprocessing(size=16), PlainPreprocessing(size=16, mean=None, std=None)])
def test_constant_image_stays_constant(prep):
    img = np.full((37, 53, 3), 0.3, dtype=np.float32)
    out = prep(img)
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32 and out.is_contiguous()
    if isinstance(prep, TaskonomyPreprocessing):
        expected = np.full(3, 0.3 * 2 - 1)
    elif prep.mean is None:
        expected = np.full(3, 0.3)
    else:
        expected = (0.3 - IMAGENET_MEAN) / IMAGENET_STD
    for c in range(3):
        np.testing.assert_allclose(out[c].numpy(), expected[c], atol=1e-5)


def test_plain_normalisation_matches_hand_computation():
    rng = np.random.default_rng(1)
    img = rng.random((10, 10, 3), dtype=np.float32)
    out = _hwc(PlainPreprocessing(size=10)(img))  # square and already the size: no resize
    np.testing.assert_allclose(out, (img - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-6, atol=1e-6)
    custom = _hwc(PlainPreprocessing(size=10, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 2.0))(img))
    np.testing.assert_allclose(custom, (img - 0.5) / np.array([0.5, 0.25, 2.0]), rtol=1e-6, atol=1e-6)


def test_input_is_not_mutated():
    rng = np.random.default_rng(2)
    img = rng.random((20, 30, 3), dtype=np.float32)
    before = img.copy()
    for name in PREPROCESSINGS.names():
        get_preprocessing(name)(img)
    np.testing.assert_array_equal(img, before)


# --- resize ------------------------------------------------------------------------------------------------------------


def test_resize_2x2_to_4x4_equals_torch_interpolate():
    img = np.zeros((2, 2, 3), dtype=np.float32)
    img[0, 0], img[0, 1], img[1, 0], img[1, 1] = 0.0, 0.2, 0.6, 1.0
    out = TaskonomyPreprocessing(size=4)(img)
    ref = F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None], size=(4, 4), mode="bilinear",
                        align_corners=False)[0] * 2 - 1
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-6)
    # and by hand: half-pixel centres, edge repeated -> first row 0, 0.05, 0.15, 0.2 before scaling
    np.testing.assert_allclose((out[0, 0].numpy() + 1) / 2, [0.0, 0.05, 0.15, 0.2], atol=1e-6)


@pytest.mark.parametrize("side", [512, 300, 427, 97, 7])
def test_taskonomy_resize_matches_skimage_bilinear_without_antialiasing(side):
    # The released code: skimage.transform.resize(img, (256, 256), order=1, preserve_range=True), skimage 0.12.3,
    # which had no anti-aliasing. mode="edge" matches torch at the border (only matters when up-sampling).
    rng = np.random.default_rng(side)
    img = rng.random((side, side, 3))
    size = 256 if side >= 256 else 16
    even = img[: side // 2 * 2, : side // 2 * 2]  # the released crop drops the last row/column of an odd side
    ref = sk_resize(even, (size, size), order=1, anti_aliasing=False, mode="edge", preserve_range=True)
    out = _hwc(TaskonomyPreprocessing(size=size)(img.astype(np.float32)))
    np.testing.assert_allclose(out, ref * 2 - 1, atol=2e-6)


def test_taskonomy_halving_is_the_2x2_mean():
    rng = np.random.default_rng(3)
    img = rng.random((512, 512, 3)).astype(np.float32)
    out = _hwc(TaskonomyPreprocessing(size=256)(img))
    block_mean = img.reshape(256, 2, 256, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(out, block_mean * 2 - 1, atol=2e-6)


def test_antialias_changes_downsampling_only():
    rng = np.random.default_rng(4)
    img = rng.random((64, 64, 3)).astype(np.float32)
    plain = TaskonomyPreprocessing(size=16)(img)
    aa = TaskonomyPreprocessing(size=16, antialias=True)(img)
    assert not torch.allclose(plain, aa)
    small = rng.random((8, 8, 3)).astype(np.float32)
    assert torch.allclose(TaskonomyPreprocessing(size=16)(small), TaskonomyPreprocessing(size=16, antialias=True)(small),
                          atol=1e-6)


# --- presets, descriptions, tasks ----------------------------------------------------------------------------------------


def test_presets_and_their_settings():
    assert set(PREPROCESSINGS.names()) >= {"taskonomy", "taskonomy-low-sat", "imagenet", "plain"}
    assert get_preprocessing("taskonomy") == TaskonomyPreprocessing(low_saturation=False, size=256)
    assert get_preprocessing("taskonomy-low-sat") == TaskonomyPreprocessing(low_saturation=True, size=256)
    assert get_preprocessing("imagenet") == PlainPreprocessing()
    assert get_preprocessing("plain") == PlainPreprocessing(size=224, mean=None, std=None)
    for name in PREPROCESSINGS.names():
        assert isinstance(get_preprocessing(name), Preprocessing)


def test_describe_is_json_ready_stable_and_distinct_between_presets():
    descriptions = {}
    for name in PREPROCESSINGS.names():
        prep = get_preprocessing(name)
        d = prep.describe()
        assert json.loads(json.dumps(d, sort_keys=True)) == d
        assert d == prep.describe() == type(prep)(**{k: getattr(prep, k) for k in prep.__dataclass_fields__}).describe()
        descriptions[name] = json.dumps(d, sort_keys=True)
    for a, b in itertools.combinations(descriptions, 2):
        assert descriptions[a] != descriptions[b], (a, b)
    assert TaskonomyPreprocessing(size=128).describe() != TaskonomyPreprocessing().describe()
    assert TaskonomyPreprocessing(antialias=True).describe() != TaskonomyPreprocessing().describe()


def test_describe_round_trips_through_get_preprocessing():
    for prep in [*(get_preprocessing(n) for n in PREPROCESSINGS.names()),
                 PlainPreprocessing(size=32, mean=[0.1, 0.2, 0.3], std=[1, 2, 3])]:
        rebuilt = get_preprocessing(json.loads(json.dumps(prep.describe())))
        assert rebuilt == prep and rebuilt.describe() == prep.describe()


def test_mean_std_given_as_lists_are_normalised_and_hashable():
    prep = PlainPreprocessing(mean=[0.485, 0.456, 0.406], std=np.array([0.229, 0.224, 0.225]))
    assert prep == PlainPreprocessing() and hash(prep) == hash(PlainPreprocessing())


def test_low_sat_tasks_are_the_14_released_names():
    assert len(LOW_SAT_TF_NAMES) == 14 and len(LOW_SAT_TASKS) == 14
    assert LOW_SAT_TASKS == {
        "autoencoding", "curvature", "denoising", "edge_texture", "edge_occlusion", "keypoints2d", "keypoints3d",
        "reshading", "depth_zbuffer", "depth_euclidean", "normal", "segment_unsup25d", "segment_unsup2d",
        "room_layout",
    }
    not_clipped = {t.name for t in list_tasks()} - LOW_SAT_TASKS
    assert not_clipped == {"colorization", "inpainting", "vanishing_point", "segment_semantic", "class_object",
                           "class_scene"}


@pytest.mark.parametrize("name", ["rgb2depth", "depth", "normal", "rgb2sfnorm", "edge2d", "room_layout", "autoencoder"])
def test_taskonomy_preprocessing_clips_for_low_sat_tasks(name):
    assert taskonomy_preprocessing(name) == get_preprocessing("taskonomy-low-sat")


@pytest.mark.parametrize("name", ["colorization", "class_1000", "segmentsemantic", "vanishing_point", "inpainting"])
def test_taskonomy_preprocessing_does_not_clip_for_other_tasks(name):
    assert taskonomy_preprocessing(name) == get_preprocessing("taskonomy")


def test_taskonomy_preprocessing_unknown_task():
    with pytest.raises(UserInputError, match=r"Unknown task 'rgb2dept'\. Did you mean 'depth_zbuffer'"):
        taskonomy_preprocessing("rgb2dept")


# --- batches and bad input -----------------------------------------------------------------------------------------------


def test_preprocess_batch_shape_and_content():
    rng = np.random.default_rng(5)
    images = [rng.random((h, w, 3)).astype(np.float32) for h, w in [(40, 60), (64, 64), (90, 30)]]
    batch = preprocess_batch(images, "taskonomy")
    assert batch.shape == (3, 3, 256, 256) and batch.dtype == torch.float32
    for i, img in enumerate(images):
        assert torch.equal(batch[i], get_preprocessing("taskonomy")(img))
    assert preprocess_batch(images, PlainPreprocessing(size=32)).shape == (3, 3, 32, 32)


def test_bad_inputs_have_clear_messages():
    prep = get_preprocessing("taskonomy")
    with pytest.raises(UserInputError, match=r"floating point with values in \[0, 1\], got dtype uint8"):
        prep(np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(UserInputError, match=r"shape \(H, W, 3\).*got shape \(4, 4\)"):
        prep(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(UserInputError, match=r"values must lie in \[0, 1\], got the range \[0, 255\]"):
        prep(np.linspace(0, 255, 48, dtype=np.float32).reshape(4, 4, 3))
    with pytest.raises(UserInputError, match=r"values must lie in \[0, 1\]"):
        prep(np.full((4, 4, 3), np.nan, dtype=np.float32))
    with pytest.raises(UserInputError, match="numpy array"):
        prep(torch.zeros(4, 4, 3))
    with pytest.raises(UserInputError, match="size must be a positive integer"):
        TaskonomyPreprocessing(size=0)
    with pytest.raises(UserInputError, match="low_saturation must be True or False"):
        TaskonomyPreprocessing(low_saturation="yes")
    with pytest.raises(UserInputError, match="mean and std must both be given or both be None"):
        PlainPreprocessing(mean=None)
    with pytest.raises(UserInputError, match="std must be positive"):
        PlainPreprocessing(std=(0.2, 0.0, 0.2))
    with pytest.raises(UserInputError, match=r"mean must be 3 finite numbers"):
        PlainPreprocessing(mean=(0.5, 0.5))
    with pytest.raises(UserInputError, match=r"Unknown preprocessing 'imagenett'\. Did you mean 'imagenet'"):
        get_preprocessing("imagenett")
    with pytest.raises(UserInputError, match="kind 'vit'"):
        get_preprocessing({"kind": "vit"})
    with pytest.raises(UserInputError, match="recipe_version 0"):
        get_preprocessing({**prep.describe(), "recipe_version": 0})
    with pytest.raises(UserInputError, match="unknown key 'gamma'"):
        get_preprocessing({**prep.describe(), "gamma": 2.2})
    with pytest.raises(UserInputError, match="at least one image"):
        preprocess_batch([], prep)
