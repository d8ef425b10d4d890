"""Validity masks (``--masks DIR``): matching masks to images by name, their geometry, and their effect on training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from amalgamate.training.masks import load_masks, mask_files
from amalgamate.training.run import train
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.images.preprocess import PlainPreprocessing, TaskonomyPreprocessing
from rsa_toolkit.images.probe import probe_from_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _photos(folder, names, size=(80, 96)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(folder / name)
    return probe_from_folder(folder, verify=False)[0]


def _mask(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(values, dtype=np.uint8)).save(path)


def test_masks_match_by_stem_and_by_taskonomy_name(tmp_path):
    images = _photos(tmp_path / "rgb", ["a.jpg", "point_1_view_2_domain_rgb.png"])
    _mask(tmp_path / "m" / "a.png", np.full((4, 4), 255))
    _mask(tmp_path / "m" / "point_1_view_2_domain_mask_valid.png", np.zeros((4, 4)))
    files = mask_files(images, tmp_path / "m")
    assert [f.name for f in files] == ["a.png", "point_1_view_2_domain_mask_valid.png"]


def test_a_missing_mask_is_named(tmp_path):
    images = _photos(tmp_path / "rgb", ["a.png", "b.png", "c.png"])
    _mask(tmp_path / "m" / "a.png", np.full((4, 4), 255))
    with pytest.raises(UserInputError, match=r"2 of 3 training images have no mask; the first, 'b.png', needs "
                                             r".*m/b.png"):
        mask_files(images, tmp_path / "m")
    with pytest.raises(UserInputError, match="is not a directory"):
        mask_files(images, tmp_path / "nowhere")


@pytest.mark.parametrize("prep", [TaskonomyPreprocessing(), PlainPreprocessing()])
def test_mask_geometry_is_the_images_centre_square_then_nearest_resize(tmp_path, prep):
    # 4 x 6: both recipes keep columns 1..4; their left half valid, right half not
    values = np.array([[0, 255, 255, 0, 0, 255]] * 4, dtype=np.uint8)
    _mask(tmp_path / "m.png", values)
    out = load_masks([tmp_path / "m.png"], [0], 2, prep)
    assert out.shape == (1, 1, 2, 2) and out.dtype.is_floating_point
    np.testing.assert_array_equal(out[0, 0].numpy(), [[1, 0], [1, 0]])
    _mask(tmp_path / "grey.png", np.full((4, 4), 100))  # below half the range: invalid
    assert float(load_masks([tmp_path / "grey.png"], [0], 4, prep).sum()) == 0.0


def test_odd_sides_follow_each_recipes_crop(tmp_path):
    # 3 x 6: Taskonomy keeps a 2 x 2 square at columns 2..3 (side 2 * (3 // 2)); the plain recipe 3 x 3 at columns
    # 2..4 (offset round(1.5) = 2, as torchvision's CenterCrop)
    _mask(tmp_path / "m.png", np.array([[0, 0, 255, 0, 255, 255]] * 3, dtype=np.uint8))
    np.testing.assert_array_equal(load_masks([tmp_path / "m.png"], [0], 2, TaskonomyPreprocessing())[0, 0], [[1, 0]] * 2)
    np.testing.assert_array_equal(load_masks([tmp_path / "m.png"], [0], 3, PlainPreprocessing())[0, 0], [[1, 0, 1]] * 3)


def test_a_16_bit_mask_reads_on_its_own_range(tmp_path):
    Image.fromarray(np.array([[0, 40000], [40000, 20000]], dtype=np.uint16)).save(tmp_path / "m16.png")
    out = load_masks([tmp_path / "m16.png"], [0], 2, TaskonomyPreprocessing())
    np.testing.assert_array_equal(out[0, 0].numpy(), [[0, 1], [1, 0]])


def test_training_counts_valid_pixels_only(tmp_path, tiny_zoo, monkeypatch):
    monkeypatch.setenv("RSA_TOOLKIT_MINI_ZOO", str(tiny_zoo))
    monkeypatch.setenv("RSA_TOOLKIT_CACHE", str(tmp_path / "cache"))
    images = _photos(tmp_path / "rgb", [f"p{i}.png" for i in range(4)])
    for name in images.ids:
        _mask(tmp_path / "valid" / name, np.full((8, 8), 255))
        _mask(tmp_path / "none" / name, np.zeros((8, 8)))
    base = {"targets": ["depth", "normal"], "aux": "class_scene", "steps": 2, "batch_size": 4,
            "images": str(tmp_path / "rgb"), "eval_images": str(tmp_path / "rgb")}

    def losses(run, **extra):
        train(tmp_path / run, {**base, **extra})
        return [json.loads(line)["losses"] for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]

    def values(steps):
        return [[step[t] for t in sorted(step)] for step in steps]

    plain = values(losses("plain"))  # an all-valid mask changes nothing but the order of a sum
    np.testing.assert_allclose(values(losses("all-valid", masks=str(tmp_path / "valid"))), plain, rtol=1e-5)
    assert all(v == 0.0 for step in losses("none-valid", masks=str(tmp_path / "none")) for v in step.values())
    with pytest.raises(UserInputError, match="have no mask"):
        train(tmp_path / "missing", {**base, "masks": str(tmp_path / "rgb" / "..")})
    assert not (tmp_path / "missing").exists()  # refused before the run directory was made
