"""The feature cache proves itself: damaged entries are warned misses that recompute the same features, keys cover
the teacher's definition, several layers come from one forward pass, a fully cached run builds no network, stale
temporaries are removed, and names that would be paths are refused where they enter."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from rsa_toolkit.cli.main import main
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.cache import (FeatureCacheWarning, cache_entry_path, cache_key, check_entry,
                                        entry_fingerprint, sidecar_path)
from rsa_toolkit.features.extract import extract_features, save_features_dir, zoo_feature_sets, zoo_features
from rsa_toolkit.features.store import load_features_dir, write_features_dir
from rsa_toolkit.files import check_name, safe_child
from rsa_toolkit.images.probe import probe_from_folder
from rsa_toolkit.zoo.teachers import Teacher, module_teacher

LAYERS = ["features.0", "features.2", "head"]


class TinyCNN(nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, stride=4, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, stride=4, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class Double(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x) * 2


class Triple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x) * 3


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x) * self.factor


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    directory = tmp_path_factory.mktemp("probe")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(directory / f"img{i}.png")
    return probe_from_folder(directory)[0]


def _teacher(name: str = "tiny", seed: int = 0) -> Teacher:
    torch.manual_seed(seed)
    return module_teacher(name, TinyCNN(), layers=LAYERS, preprocessing="plain")


def _counted(teacher: Teacher) -> tuple[Teacher, list[int]]:
    """The teacher, with a counter of the network's forward calls (a pre-hook on the whole model)."""
    model = teacher.build()
    calls: list[int] = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    return teacher, calls


def _no_build() -> nn.Module:
    raise AssertionError("the network was built on a fully cached run")


# --- damaged entries are warned misses ------------------------------------------------------------------------------

def _same_size_overwrite(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[-8:] = bytes(255 - b for b in data[-8:])  # last row's bytes changed, the size and header kept
    entry.write_bytes(bytes(data))


def _truncate(entry: Path) -> None:
    os.truncate(entry, entry.stat().st_size // 2)


def _zero_bytes(entry: Path) -> None:
    entry.write_bytes(b"")


def _garbage(entry: Path) -> None:
    entry.write_bytes(np.random.default_rng(1).bytes(999))


def _wrong_n(entry: Path) -> None:
    """Another number of rows, with a sidecar that describes it truthfully: only the N check can catch it."""
    array = np.load(entry)
    np.save(entry, array[:-1])
    record = json.loads(sidecar_path(entry).read_text())
    record["entry"] = entry_fingerprint(entry)
    sidecar_path(entry).write_text(json.dumps(record))


def _sidecar_garbage(entry: Path) -> None:
    sidecar_path(entry).write_text("{not json")


@pytest.mark.parametrize(("damage", "why"), [
    (_same_size_overwrite, "blake2b does not match"),
    (_truncate, "bytes, its sidecar says"),
    (_zero_bytes, "0 bytes, its sidecar says"),
    (_garbage, "bytes, its sidecar says"),
    (_wrong_n, r"expected 6 rows"),
    (_sidecar_garbage, "unreadable"),
])
def test_damaged_entry_is_recomputed_with_a_warning(damage, why: str, probe, tmp_path: Path) -> None:  # noqa: ANN001
    teacher = _teacher()
    clean = {k: np.array(v) for k, v in extract_features(teacher, probe, layers=LAYERS, cache_dir=tmp_path).items()}
    entry = cache_entry_path(tmp_path, cache_key(teacher, "head", probe))
    damage(entry)
    teacher, calls = _counted(teacher)
    with pytest.warns(FeatureCacheWarning, match=rf"feature cache entry '.*{entry.name}' \(teacher 'tiny', layer "
                                                 rf"'head'\) cannot be used \(.*{why}.*computing it again"):
        again = extract_features(teacher, probe, layers=LAYERS, cache_dir=tmp_path)
    assert len(calls) == 1  # only the damaged layer ran, in one pass
    for layer in LAYERS:
        np.testing.assert_array_equal(again[layer], clean[layer])
    assert check_entry(entry, len(probe)) is None  # repaired, with a matching sidecar


def test_entry_sidecar_records_the_fingerprint(probe, tmp_path: Path) -> None:
    teacher = _teacher()
    path = Path(extract_features(teacher, probe, cache_dir=tmp_path)["features.0"].filename)
    record = json.loads(sidecar_path(path).read_text())
    assert record["entry"] == entry_fingerprint(path)
    assert record["entry"]["shape"][0] == len(probe) and record["entry"]["dtype"] == "float32"
    assert record["definition"] == teacher.definition and len(teacher.definition) == 64


# --- keys cover the definition --------------------------------------------------------------------------------------

NET_SOURCE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return self.conv(x) {op}
'''


def _import_net(directory: Path, module: str, op: str) -> type:
    path = directory / f"{module}.py"
    path.write_text(NET_SOURCE.format(op=op))
    spec = importlib.util.spec_from_file_location(module, path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module] = loaded  # inspect.getsource finds classes through their module
    try:
        spec.loader.exec_module(loaded)
    except BaseException:
        sys.modules.pop(module, None)
        raise
    return loaded.Net


def test_changed_model_source_with_the_same_weights_is_a_new_key(probe, tmp_path: Path) -> None:
    try:
        torch.manual_seed(0)
        first = module_teacher("net", _import_net(tmp_path, "net_v1", "* 1")(), preprocessing="plain")
        torch.manual_seed(0)
        second = module_teacher("net", _import_net(tmp_path, "net_v2", "* 2")(), preprocessing="plain")
    finally:
        sys.modules.pop("net_v1", None)
        sys.modules.pop("net_v2", None)
    assert first.weights_sha256 == second.weights_sha256
    assert cache_key(first, "conv", probe) != cache_key(second, "conv", probe)


def test_parameter_free_classes_get_different_keys(probe) -> None:
    double, triple = (module_teacher("free", cls(), preprocessing="plain") for cls in (Double, Triple))
    assert double.weights_sha256 == triple.weights_sha256  # no parameters: the weights cannot tell them apart
    assert cache_key(double, "act", probe) != cache_key(triple, "act", probe)
    assert cache_key(double, "act", probe) == cache_key(module_teacher("free", Double(), preprocessing="plain"),
                                                        "act", probe)


def test_constructor_state_and_explicit_key_enter_the_key(probe) -> None:
    def key(model: nn.Module, **options: object) -> str:
        return cache_key(module_teacher("s", model, preprocessing="plain", **options), "act", probe)

    assert key(Scale(2.0)) != key(Scale(3.0))
    assert key(Scale(2.0), key="mine-v1") == key(Scale(3.0), key="mine-v1")  # the user's key replaces the automatic
    assert key(Scale(2.0), key="mine-v1") != key(Scale(2.0), key="mine-v2")
    with pytest.raises(UserInputError, match=r"key='': expected a non-empty string"):
        key(Scale(2.0), key="")


# --- one forward, many layers ---------------------------------------------------------------------------------------

def test_several_layers_from_one_forward_equal_single_layer_runs(probe, tmp_path: Path) -> None:
    teacher, calls = _counted(_teacher())
    together = extract_features(teacher, probe, layers=LAYERS, batch_size=len(probe), cache_dir=tmp_path / "a")
    assert len(calls) == 1  # one batch, one forward for all three layers
    entries = {Path(a.filename) for a in together.values()}
    assert len(entries) == 3  # each layer its own entry
    for layer in LAYERS:
        alone = extract_features(_teacher(), probe, layers=[layer], batch_size=len(probe),
                                 cache_dir=tmp_path / layer)[layer]
        np.testing.assert_array_equal(together[layer], alone)


def test_zoo_feature_sets_run_each_teacher_once(probe, tmp_path: Path) -> None:
    zoo = [_counted(_teacher("one", 0)), _counted(_teacher("two", 1))]
    teachers = [t for t, _ in zoo]
    sets = zoo_feature_sets(teachers, probe, layers=[*LAYERS, None], batch_size=len(probe), cache_dir=tmp_path)
    assert [len(calls) for _, calls in zoo] == [1, 1]
    assert [s.layer for s in sets] == [*LAYERS, None]
    for layer, fs in zip(LAYERS, sets):
        single = zoo_features(teachers, probe, layer=layer, cache_dir=tmp_path)
        assert fs.names == single.names == ["one", "two"] and fs.files == single.files
    assert sets[-1].files == sets[0].files  # None is each teacher's default layer, the first listed
    assert [len(calls) for _, calls in zoo] == [1, 1]  # the single-layer runs were all cached


def test_fully_cached_run_builds_no_network(probe, tmp_path: Path) -> None:
    teacher = _teacher()
    first = zoo_feature_sets([teacher], probe, layers=LAYERS, cache_dir=tmp_path)
    unbuildable = dataclasses.replace(teacher, build=_no_build)
    again = zoo_feature_sets([unbuildable], probe, layers=LAYERS, cache_dir=tmp_path)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.arrays[0], b.arrays[0])
    with pytest.raises(AssertionError, match="was built on a fully cached run"):  # the builder really is in the path
        extract_features(unbuildable, probe, layers=LAYERS, cache_dir=tmp_path, recompute=True)


# --- stale temporaries ----------------------------------------------------------------------------------------------

def test_stale_temporaries_are_removed_and_fresh_ones_kept(probe, tmp_path: Path) -> None:
    shard = tmp_path / "features" / "ab"
    shard.mkdir(parents=True)
    stale = [shard / ".abcdef.x1y2.npy", shard / ".abcdef.part1.npy", shard / ".abcdef.k3j4.json"]
    fresh = shard / ".012345.z9z9.npy"  # another process's extraction in progress
    for path in [*stale, fresh]:
        path.write_bytes(b"partial")
    day_ago = time.time() - 86400
    for path in stale:
        os.utime(path, (day_ago, day_ago))
    extract_features(_teacher(), probe, cache_dir=tmp_path)
    assert [p for p in stale if p.exists()] == []
    assert fresh.exists()


# --- names are data, never paths ------------------------------------------------------------------------------------

BAD_NAMES = [("../x", "path separator"), ("/abs/x", r"path separator \(an absolute path\)"),
             ("a/b", "path separator"), ("a\0b", "NUL or a control character"), ("..", "directory reference")]


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_teacher_names_that_are_paths_are_refused(name: str, problem: str) -> None:
    with pytest.raises(UserInputError, match=rf"teacher name .* {problem}; names are used as file names"):
        module_teacher(name, Double())


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_store_writes_refuse_path_names(name: str, problem: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(UserInputError, match=rf"teacher name .* {problem}"):
        write_features_dir({"good": np.zeros((2, 3), np.float32), name: np.zeros((2, 3), np.float32)}, out)
    assert list(tmp_path.iterdir()) == []  # checked before anything is written


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_features_out_refuses_path_layer_names(name: str, problem: str, probe, tmp_path: Path) -> None:
    teacher = _teacher()
    good = zoo_features([teacher], probe, layer="head", cache_dir=tmp_path / "cache")
    bad = dataclasses.replace(good, layer=name)
    with pytest.raises(UserInputError, match=rf"layer name .* {problem}"):
        save_features_dir([good, bad], tmp_path / "feats")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # nothing written, not even the staging folder


def test_npz_layer_name_with_a_slash_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feats = tmp_path / "feats"
    feats.mkdir()
    rng = np.random.default_rng(0)
    for teacher in ("a", "b"):
        np.savez(feats / f"{teacher}.npz", **{"block/4": rng.normal(size=(5, 3)), "ok": rng.normal(size=(5, 3))})
    with pytest.raises(UserInputError, match=r"features file '.*a\.npz': layer 'block/4' contains a path separator"):
        load_features_dir(feats, layer="ok")
    assert main(["matrix", "--features", str(feats), "--layer", "all", "--out", str(tmp_path / "sim.png"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "layer 'block/4' contains a path separator" in err
    assert not list(tmp_path.glob("sim*"))


def test_safe_child_refuses_a_path_outside_the_directory(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "escape").symlink_to(tmp_path)
    assert safe_child(tmp_path / "out", "features.3", suffix=".npy") == tmp_path / "out" / "features.3.npy"
    with pytest.raises(UserInputError, match=r"name 'escape': the path .* would lie outside the directory"):
        safe_child(tmp_path / "out", "escape")
    with pytest.raises(UserInputError, match=r"task name '' is empty"):
        check_name("", what="task name")
