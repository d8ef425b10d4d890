"""Reading a features directory: memory-mapped .npy files, image_ids.txt, multi-layer .npz files with layer
selection, and every malformed directory or file refused with a UserInputError that names it (nothing unpickled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.store import IMAGE_IDS_KEY, available_layers, load_features_dir, write_features_dir

N = 12


def _arrays(names: list[str], shape: tuple[int, ...] = (N, 4, 3), seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape).astype(np.float32) for name in names}


def _write_npz(directory: Path, layers_by_teacher: dict[str, dict[str, np.ndarray]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for teacher, layers in layers_by_teacher.items():
        np.savez(directory / f"{teacher}.npz", **layers)


# --------------------------------------------------------------------------- .npy directories


def test_npy_directory_memory_mapped_sorted(tmp_path: Path) -> None:
    features = _arrays(["zeta", "alpha", "mid"])
    for name, array in features.items():
        np.save(tmp_path / f"{name}.npy", array)
    (tmp_path / "notes.txt").write_text("ignored\n")
    fs = load_features_dir(tmp_path)
    assert fs.names == ["alpha", "mid", "zeta"]
    assert [p.name for p in fs.files] == ["alpha.npy", "mid.npy", "zeta.npy"]
    assert fs.layer is None and fs.layers == [] and fs.image_ids is None
    for name, array in zip(fs.names, fs.arrays):
        assert isinstance(array, np.memmap)
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, features[name])
    assert list(fs.as_dict()) == ["alpha", "mid", "zeta"]
    assert available_layers(tmp_path) == []


def test_npy_directory_with_image_ids(tmp_path: Path) -> None:
    ids = [f"img_{i:03d}" for i in range(N)]
    written = write_features_dir(_arrays(["a", "b"]), tmp_path, image_ids=ids)
    assert sorted(p.name for p in written) == ["a.npy", "b.npy", "image_ids.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    fs = load_features_dir(tmp_path)
    assert fs.image_ids == ids
    assert fs.names == ["a", "b"]


def test_write_features_dir_round_trip(tmp_path: Path) -> None:
    features = _arrays(["b", "a"], shape=(N, 5))
    write_features_dir(features, tmp_path / "new" / "dir")
    fs = load_features_dir(tmp_path / "new" / "dir")
    for name in features:
        np.testing.assert_array_equal(fs.as_dict()[name], features[name])


def test_image_ids_length_mismatch(tmp_path: Path) -> None:
    write_features_dir(_arrays(["a", "b"]), tmp_path, image_ids=["x", "y"])
    with pytest.raises(UserInputError, match=r"image_ids lists 2 images but the features have N = 12"):
        load_features_dir(tmp_path)


def test_layer_given_for_npy_directory(tmp_path: Path) -> None:
    write_features_dir(_arrays(["a", "b"]), tmp_path)
    with pytest.raises(UserInputError, match=r"layer 'block4': \.npy feature files hold a single layer"):
        load_features_dir(tmp_path, layer="block4")


# --------------------------------------------------------------------------- .npz directories


def _layered(tmp_path: Path, *, ids: bool = True) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    image_ids = [f"img{i}" for i in range(N)]
    data = {}
    for k, teacher in enumerate(["normal", "depth_zbuffer"]):
        rng = np.random.default_rng(k)
        layers = {"block4": rng.normal(size=(N, 6)), "encoder_output": rng.normal(size=(N, 8, 2, 2))}
        if ids:
            layers[IMAGE_IDS_KEY] = np.array(image_ids)
        data[teacher] = layers
    _write_npz(tmp_path, data)
    return data, image_ids


def test_npz_layers_and_selection(tmp_path: Path) -> None:
    data, image_ids = _layered(tmp_path)
    assert available_layers(tmp_path) == ["block4", "encoder_output"]  # image_ids is not a layer
    for layer in ("block4", "encoder_output"):
        fs = load_features_dir(tmp_path, layer=layer)
        assert fs.names == ["depth_zbuffer", "normal"]
        assert fs.layer == layer
        assert fs.layers == ["block4", "encoder_output"]
        assert fs.image_ids == image_ids
        for name, array in fs.as_dict().items():
            np.testing.assert_array_equal(array, data[name][layer])


def test_npz_single_layer_needs_no_layer_option(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _write_npz(tmp_path, {"a": {"encoder_output": rng.normal(size=(N, 3))},
                          "b": {"encoder_output": rng.normal(size=(N, 3))}})
    fs = load_features_dir(tmp_path)
    assert fs.layer == "encoder_output"
    assert fs.image_ids is None


def test_npz_several_layers_without_layer(tmp_path: Path) -> None:
    _layered(tmp_path)
    with pytest.raises(UserInputError, match=r"several layers \(block4, encoder_output\); choose one with "
                                             r"--layer NAME, or --layer all\."):
        load_features_dir(tmp_path)


def test_npz_unknown_layer_lists_layers(tmp_path: Path) -> None:
    _layered(tmp_path)
    with pytest.raises(UserInputError,
                       match=r"Unknown layer 'block5'\. Layers every teacher has: block4, encoder_output\."):
        load_features_dir(tmp_path, layer="block5")


def test_npz_layer_missing_in_one_teacher(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _write_npz(tmp_path, {"a": {"block4": rng.normal(size=(N, 3)), "block3": rng.normal(size=(N, 3))},
                          "b": {"block4": rng.normal(size=(N, 3))}})
    assert available_layers(tmp_path) == ["block4"]
    with pytest.raises(UserInputError, match=r"Unknown layer 'block3'\. Layers every teacher has: block4\."):
        load_features_dir(tmp_path, layer="block3")


def test_npz_no_shared_layer(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _write_npz(tmp_path, {"a": {"x": rng.normal(size=(N, 3))}, "b": {"y": rng.normal(size=(N, 3))}})
    with pytest.raises(UserInputError, match=r"the \.npz files share no layer name"):
        load_features_dir(tmp_path)


def test_npz_image_ids_differ(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _write_npz(tmp_path, {"a": {"l": rng.normal(size=(3, 2)), IMAGE_IDS_KEY: np.array(["x", "y", "z"])},
                          "b": {"l": rng.normal(size=(3, 2)), IMAGE_IDS_KEY: np.array(["x", "z", "y"])}})
    with pytest.raises(UserInputError, match=r"the teachers' image_ids differ"):
        load_features_dir(tmp_path)


def test_npz_object_layer_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", layer=np.array([{"x": 1}, None], dtype=object))
    np.savez(tmp_path / "b.npz", layer=rng.normal(size=(2, 3)))
    with pytest.raises(UserInputError, match=r"could not read layer 'layer' of '.*a\.npz'"):
        load_features_dir(tmp_path)


# --------------------------------------------------------------------------- malformed directories and files


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"features directory '.*nope' does not exist\."):
        load_features_dir(tmp_path / "nope")


def test_file_instead_of_directory(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.ones((N, 2)))
    with pytest.raises(UserInputError, match=r"features path '.*a\.npy' is not a directory; expected a directory"):
        load_features_dir(tmp_path / "a.npy")


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no features here")
    with pytest.raises(UserInputError, match=r"holds no <teacher>\.npy or <teacher>\.npz files"):
        load_features_dir(tmp_path)
    with pytest.raises(UserInputError, match=r"holds no <teacher>\.npy"):
        available_layers(tmp_path)


def test_mixed_npy_and_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.ones((N, 2)))
    np.savez(tmp_path / "b.npz", layer=np.ones((N, 2)))
    with pytest.raises(UserInputError, match=r"mixes \.npy and \.npz files; use one kind\."):
        load_features_dir(tmp_path)


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not numpy", b"\x93NUMPY\x01\x00garbage"])
def test_corrupt_npy_names_the_file(tmp_path: Path, content: bytes) -> None:
    np.save(tmp_path / "good.npy", np.ones((N, 2)))
    (tmp_path / "broken.npy").write_bytes(content)
    with pytest.raises(UserInputError, match=r"could not read features file '.*broken\.npy'"):
        load_features_dir(tmp_path)


def test_truncated_npy_names_the_file(tmp_path: Path) -> None:
    np.save(tmp_path / "good.npy", np.ones((N, 2)))
    np.save(tmp_path / "short.npy", np.ones((N, 200)))
    data = (tmp_path / "short.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match=r"could not read features file '.*short\.npy'"):
        load_features_dir(tmp_path)


def test_corrupt_npz_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 this is not really a zip")
    np.savez(tmp_path / "good.npz", layer=np.ones((N, 2)))
    with pytest.raises(UserInputError, match=r"could not read features file '.*broken\.npz'"):
        load_features_dir(tmp_path)


def test_pickled_object_array_is_refused_not_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.save(tmp_path / "evil.npy", np.array([{"payload": 1}, None, "x"], dtype=object), allow_pickle=True)
    np.save(tmp_path / "good.npy", np.ones((3, 2)))

    import pickle

    def no_unpickling(*args: object, **kwargs: object) -> None:
        raise AssertionError("features must never be unpickled")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    with pytest.raises(UserInputError, match=r"could not read features file '.*evil\.npy'"):
        load_features_dir(tmp_path)


@pytest.mark.parametrize("compressed", [False, True])
def test_damaged_npz_member_names_the_file(tmp_path: Path, compressed: bool) -> None:
    save = np.savez_compressed if compressed else np.savez
    rng = np.random.default_rng(0)
    save(tmp_path / "good.npz", layer=rng.normal(size=(N, 50)))
    save(tmp_path / "damaged.npz", layer=rng.normal(size=(N, 50)))
    data = bytearray((tmp_path / "damaged.npz").read_bytes())
    data[300:340] = b"\x00" * 40  # inside the member's data: the zip directory still opens
    (tmp_path / "damaged.npz").write_bytes(bytes(data))
    assert available_layers(tmp_path) == ["layer"]
    with pytest.raises(UserInputError, match=r"could not read layer 'layer' of '.*damaged\.npz'"):
        load_features_dir(tmp_path)
