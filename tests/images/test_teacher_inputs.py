"""What each teacher sees of a probe image: the input kinds (grey, noisy, masked) against the scene functions they
reuse, the mini zoo's training inputs, determinism per image id, and where they act in the preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.images.preprocess import PlainPreprocessing, taskonomy_preprocessing
from rsa_toolkit.images.probe import probe_from_folder
from rsa_toolkit.images.teacher_inputs import (INPUT_KINDS, TASK_INPUT_KINDS, apply_input_kind, check_teacher_inputs,
                                               image_seed, input_kind, prepare_image)
from rsa_toolkit.scenes import add_noise, inpainting_mask, to_gray

IMAGE = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)


# --- the kinds ------------------------------------------------------------------------------------------------------

def test_the_registry_and_the_task_table() -> None:
    assert INPUT_KINDS.names() == ["clean", "grey", "noisy", "masked"]
    assert TASK_INPUT_KINDS == {"colorization": "grey", "denoising": "noisy", "inpainting": "masked"}
    assert input_kind("colorization") == "grey" and input_kind("colorize") == "grey"  # aliases
    assert input_kind("denoise") == "noisy" and input_kind("inpainting_whole") == "masked"
    assert input_kind("depth") == "clean" and input_kind(None) == "clean" and input_kind("not-a-task") == "clean"
    assert all(input_kind(t, "clean") == "clean" for t in TASK_INPUT_KINDS)


def test_grey_is_to_gray_repeated_on_three_channels() -> None:
    seen = apply_input_kind("grey", IMAGE, seed=0)
    assert seen.shape == IMAGE.shape and seen.dtype == np.float32
    np.testing.assert_array_equal(seen, np.repeat(to_gray(IMAGE), 3, axis=-1))
    np.testing.assert_allclose(seen[..., 0], IMAGE @ np.float32([0.299, 0.587, 0.114]), rtol=1e-6)


def test_noise_is_add_noise_and_deterministic_per_seed() -> None:
    seen = apply_input_kind("noisy", IMAGE, seed=7)
    np.testing.assert_array_equal(seen, add_noise(IMAGE, seed=7))
    np.testing.assert_array_equal(seen, apply_input_kind("noisy", IMAGE, seed=7))
    assert not np.array_equal(seen, apply_input_kind("noisy", IMAGE, seed=8))
    assert 0.0 <= seen.min() and seen.max() <= 1.0
    assert 0.05 < np.std(seen - IMAGE) < 0.1  # sigma 0.1, less where clipped


@pytest.mark.parametrize("size", [64, 256])  # the mini teachers' input, and the Taskonomy teachers'
def test_mask_is_one_seeded_hole_at_any_size(size: int) -> None:
    image = np.random.default_rng(1).random((size, size, 3)).astype(np.float32)
    seen = apply_input_kind("masked", image, seed=3)
    np.testing.assert_array_equal(seen, image * (1.0 - inpainting_mask(size, seed=3)))
    np.testing.assert_array_equal(seen, apply_input_kind("masked", image, seed=3))
    hole = np.all(seen == 0, axis=-1)
    rows, cols = np.flatnonzero(hole.any(1)), np.flatnonzero(hole.any(0))
    assert size // 4 <= len(rows) <= size // 2 and size // 4 <= len(cols) <= size // 2
    assert hole.sum() == len(rows) * len(cols)  # one rectangle
    assert not np.array_equal(hole, np.all(apply_input_kind("masked", image, seed=4) == 0, axis=-1))


def test_clean_is_the_image() -> None:
    np.testing.assert_array_equal(apply_input_kind("clean", IMAGE, seed=0), IMAGE)


def test_the_seed_is_a_pinned_hash_of_the_image_id() -> None:
    # Pinned: a change here changes every noisy and masked feature; bump _VERSION in teacher_inputs.py with it so the
    # feature cache recomputes them.
    assert image_seed("seed-3000000") == 3553521819204873639
    assert image_seed("img0.png") == 4908640928834510305
    assert image_seed("img0.png") != image_seed("img1.png")


@pytest.mark.parametrize("task", list(TASK_INPUT_KINDS))
def test_the_mini_teachers_see_their_training_inputs(task: str) -> None:
    """Probe path (geometry, kind, values of the mini recipe) == training path (make_inputs) for the same seed."""
    from rsa_toolkit.zoo.mini.embedded import MINI_PREPROCESSING
    from rsa_toolkit.zoo.mini.objectives import make_inputs

    frame = (IMAGE * 255).astype(np.uint8)
    x = MINI_PREPROCESSING.geometry(frame.astype(np.float32) / 255.0)
    seen = apply_input_kind(input_kind(task), x.permute(1, 2, 0).numpy(), seed=11)
    probe_path = MINI_PREPROCESSING.values(torch.from_numpy(seen).permute(2, 0, 1))
    training = make_inputs(task, frame[None], np.array([11]))[0]
    torch.testing.assert_close(probe_path, training, rtol=0, atol=1e-6)


# --- the option -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "hint"), [("Clean", "Did you mean 'clean'"), ("ow", "Did you mean 'own'"),
                                             ("grey", ""), (None, "")])
def test_a_bad_teacher_inputs_value_is_one_line(value: object, hint: str) -> None:
    with pytest.raises(UserInputError, match=rf"teacher_inputs={value!r} is not a choice\.") as info:
        check_teacher_inputs(value)
    message = str(info.value)
    assert hint in message and "Choose: own (" in message and "or clean (" in message and "\n" not in message
    assert info.value.parameter == "teacher_inputs"
    assert check_teacher_inputs("own") == "own" and check_teacher_inputs("clean") == "clean"


# --- where the kinds act --------------------------------------------------------------------------------------------

def test_the_kind_acts_between_geometry_and_values() -> None:
    photo = np.random.default_rng(2).random((300, 400, 3)).astype(np.float32)  # not square, not 256
    prep = taskonomy_preprocessing("colorization")
    torch.testing.assert_close(prepare_image(prep, photo, "clean", image_id="a"), prep(photo), rtol=0, atol=0)
    grey = prepare_image(prep, photo, "grey", image_id="a")
    assert grey.shape == (3, 256, 256)
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    expected = np.repeat(to_gray(prep.geometry(photo).permute(1, 2, 0).numpy()), 3, axis=-1) * 2 - 1
    np.testing.assert_allclose(grey.permute(1, 2, 0).numpy(), expected, atol=1e-6)
    noisy = taskonomy_preprocessing("denoising")  # a low-saturation task: noise first, then the [0.1, 0.9] clip
    seen = prepare_image(noisy, photo, "noisy", image_id="a")
    assert seen.min() >= -0.8 - 1e-6 and seen.max() <= 0.8 + 1e-6
    masked = prepare_image(PlainPreprocessing(size=96), photo, "masked", image_id="a")
    hole = inpainting_mask(96, seed=image_seed("a"))[..., 0] == 1
    assert masked.shape == (3, 96, 96) and hole.any()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.testing.assert_close(masked[:, torch.from_numpy(hole)], ((0 - mean) / std).expand(3, 96, 96)[
        :, torch.from_numpy(hole)])  # zero in [0, 1] before the mean and std


def test_a_preprocessing_without_steps_sees_only_clean_images() -> None:
    class Whole:
        size = 8

        def describe(self) -> dict:
            return {"kind": "whole"}

        def __call__(self, image: np.ndarray) -> torch.Tensor:
            return torch.zeros(3, 8, 8)

    assert prepare_image(Whole(), IMAGE, "clean", image_id="a").shape == (3, 8, 8)
    with pytest.raises(UserInputError, match=r"Whole has no geometry\(\) and values\(\).*teacher_inputs='clean'"):
        prepare_image(Whole(), IMAGE, "grey", image_id="a")


def test_the_same_image_gets_the_same_noise_wherever_it_is(tmp_path: Path) -> None:
    """Seeded by the id: the same row whatever the batch size, the slice, or the other images in the set."""
    rng = np.random.default_rng(3)
    full, part = tmp_path / "full", tmp_path / "part"
    full.mkdir()
    part.mkdir()
    for i in range(5):
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(full / f"img{i}.png")
    (part / "img3.png").write_bytes((full / "img3.png").read_bytes())
    probe, small = probe_from_folder(full)[0], probe_from_folder(part)[0]
    prep = PlainPreprocessing(size=32)

    def rows(p, batch_size: int, **options) -> torch.Tensor:  # noqa: ANN001
        return torch.cat([b for _, b in p.batches(batch_size, prep, input_kind="noisy", **options)])

    whole = rows(probe, 5)
    torch.testing.assert_close(rows(probe, 2), whole, rtol=0, atol=0)
    torch.testing.assert_close(rows(probe, 1, start=3, stop=4)[0], whole[3], rtol=0, atol=0)
    torch.testing.assert_close(rows(small, 1)[0], whole[3], rtol=0, atol=0)
    assert not torch.equal(whole[3], torch.cat([b for _, b in probe.batches(5, prep)])[3])  # noise was added
    with pytest.raises(UserInputError, match="Unknown input kind 'gray'. Did you mean 'grey'"):
        next(probe.batches(5, prep, input_kind="gray"))
