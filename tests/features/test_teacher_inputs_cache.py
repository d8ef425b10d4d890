"""teacher_inputs through extraction: "own" and "clean" are separate feature-cache entries for the teachers whose input
kind is not clean (colorization here), one shared entry for the others (depth), each re-run a cache hit, and the
choice recorded in sidecars, feature sets and features directories. Shipped mini teachers on 6 rendered frames."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.extract import cache_key, extract_features, save_features_dir, zoo_features
from rsa_toolkit.zoo.mini.embedded import mini_probe, mini_zoo
from rsa_toolkit.zoo.teachers import Teacher


@pytest.fixture(scope="module")
def probe():  # noqa: ANN201
    return mini_probe(6)


def _counted(teacher: Teacher, builds: list[str]) -> Teacher:
    """``teacher`` noting each network build (a cache miss) in ``builds``; the key does not depend on ``build``."""
    def build():  # noqa: ANN202
        builds.append(teacher.name)
        return teacher.build()

    return dataclasses.replace(teacher, build=build)


def test_own_and_clean_are_separate_entries_where_the_input_differs(probe, tmp_path: Path) -> None:
    builds: list[str] = []
    teachers = [_counted(t, builds) for t in mini_zoo(["colorization", "depth"])]
    own = zoo_features(teachers, probe, cache_dir=tmp_path)  # the default: each teacher's own input kind
    assert builds == ["colorization", "depth_zbuffer"]
    clean = zoo_features(teachers, probe, cache_dir=tmp_path, teacher_inputs="clean")
    assert builds == ["colorization", "depth_zbuffer", "colorization"]  # depth's entry is the same: a hit
    colour, depth = 0, 1
    assert own.files[colour] != clean.files[colour] and own.files[depth] == clean.files[depth]
    assert not np.allclose(own.arrays[colour], clean.arrays[colour])
    np.testing.assert_array_equal(own.arrays[depth], clean.arrays[depth])
    for choice, expected in (("own", own), ("clean", clean)):  # re-runs: every entry cached, nothing built
        again = zoo_features(teachers, probe, cache_dir=tmp_path, teacher_inputs=choice)
        assert again.files == expected.files
        for a, b in zip(again.arrays, expected.arrays):
            np.testing.assert_array_equal(a, b)
    assert builds == ["colorization", "depth_zbuffer", "colorization"]
    assert len(list((tmp_path / "features").glob("*/*.npy"))) == 3


def test_the_key_carries_the_input_kind(probe) -> None:
    colour, depth = mini_zoo(["colorization", "depth"])
    for t in (colour, depth):
        assert cache_key(t, "encoder", probe) == cache_key(t, "encoder", probe, teacher_inputs="own")
    assert cache_key(colour, "encoder", probe) != cache_key(colour, "encoder", probe, teacher_inputs="clean")
    # a clean-input teacher keeps the key it had before teacher inputs existed, under either choice
    assert cache_key(depth, "encoder", probe) == cache_key(depth, "encoder", probe, teacher_inputs="clean")
    with pytest.raises(UserInputError, match=r"teacher_inputs='grey' is not a choice"):
        cache_key(colour, "encoder", probe, teacher_inputs="grey")


def test_the_choice_is_recorded(probe, tmp_path: Path) -> None:
    teachers = mini_zoo(["inpainting", "normal"])
    features = zoo_features(teachers, probe, cache_dir=tmp_path / "cache")
    assert features.details["teacher_inputs"] == "own"
    assert {n: t["input"] for n, t in features.details["teachers"].items()} == {"inpainting": "masked",
                                                                                "normal": "clean"}
    sidecar = json.loads(Path(features.files[0]).with_suffix(".json").read_text())
    assert sidecar["input"]["kind"] == "masked" and sidecar["input"]["seed"] == "sha256 of the image id"
    written = save_features_dir([features], tmp_path / "feats")
    record = json.loads((written / "provenance.json").read_text())
    assert record["layers"]["default"]["teacher_inputs"] == "own"
    clean = zoo_features(teachers, probe, cache_dir=tmp_path / "cache", teacher_inputs="clean")
    assert clean.details["teacher_inputs"] == "clean"
    assert {t["input"] for t in clean.details["teachers"].values()} == {"clean"}


def test_extract_features_checks_the_choice_first(probe, tmp_path: Path) -> None:
    colour = mini_zoo(["colorization"])[0]
    with pytest.raises(UserInputError, match=r"teacher_inputs='Clean' is not a choice\. Did you mean 'clean'\?"):
        extract_features(colour, probe, cache_dir=tmp_path, teacher_inputs="Clean")
    with pytest.raises(UserInputError, match=r"teacher_inputs='own ' is not a choice"):
        zoo_features([colour], probe, cache_dir=tmp_path, teacher_inputs="own ")
    assert not (tmp_path / "features").exists()
