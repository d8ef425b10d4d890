"""Teachers, zoo files, feature extraction and its cache, and the zoo route through the CLI.

Taskonomy encoders are randomly initialised here and saved in the visualpriors format (no real weights offline);
the reference for extracted features is the network run directly on the preprocessed images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsa_toolkit.cli.main import main
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.extract import cache_key, extract_features, zoo_features
from rsa_toolkit.features.store import load_features_dir
from rsa_toolkit.images.preprocess import preprocess_batch
from rsa_toolkit.images.probe import probe_from_folder
from rsa_toolkit.files import file_sha256
from rsa_toolkit.rsa.similarity import similarity_matrix
from rsa_toolkit.zoo.taskonomy import weights as weights_module
from rsa_toolkit.zoo.taskonomy.net import TaskonomyEncoder
from rsa_toolkit.zoo.teachers import hook_features, module_teacher, taskonomy_teacher
from rsa_toolkit.zoo.taskonomy.weights import save_visualpriors_checkpoint
from rsa_toolkit.zoo.zoo_file import build_zoo, load_zoo_file

TASKS = ("depth_zbuffer", "normal")

SMALL_CNN = '''
import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(8 * width, 5)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.features(x)), 1))
'''


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("weights")
    for seed, task in enumerate(TASKS):
        torch.manual_seed(seed)
        save_visualpriors_checkpoint(TaskonomyEncoder(), directory, task, "encoder")
    return directory


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("probe")
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray((rng.random((36, 44, 3)) * 255).astype(np.uint8)).save(directory / f"img{i}.png")
    return directory


@pytest.fixture(scope="module")
def probe(probe_dir: Path):  # noqa: ANN201
    return probe_from_folder(probe_dir)[0]


@pytest.fixture()
def zoo_toml(tmp_path: Path) -> Path:
    (tmp_path / "my_models.py").write_text(SMALL_CNN)
    import importlib
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("my_models")
        torch.manual_seed(3)
        model = module.SmallCNN(width=4)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_models", None)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "small.pth")
    (tmp_path / "zoo.toml").write_text(
        '[[teacher]]\nname = "small_cnn"\nmodel = "my_models:SmallCNN"\nkwargs = { width = 4 }\n'
        'checkpoint = "small.pth"\nlayers = ["features.1", "head"]\npreprocessing = "plain"\n')
    return tmp_path / "zoo.toml"


# --- teachers -------------------------------------------------------------------------------------------------------

def test_taskonomy_teacher_hash_layers_and_preprocessing(weights_dir: Path) -> None:
    teacher = taskonomy_teacher("depth", weights_dir)
    checkpoint = next(weights_dir.glob("depth_zbuffer_encoder-*.pth"))
    assert teacher.name == "depth_zbuffer"
    assert teacher.weights_sha256 == file_sha256(checkpoint)
    assert teacher.layers == ("block1", "block2", "block3", "block4", "encoder_output")
    assert teacher.default_layer == "encoder_output"
    assert teacher.preprocessing.describe()["low_saturation"] is True  # rgb2depth is one of the 14 low-sat tasks
    assert teacher.task == "depth_zbuffer" and teacher.input_kind() == "clean"  # what it sees of probe images


@pytest.mark.slow
def test_taskonomy_features_equal_the_network_on_preprocessed_images(weights_dir: Path, probe, tmp_path: Path) -> None:
    teacher = taskonomy_teacher("normal", weights_dir)
    feats = extract_features(teacher, probe, layers=["block2", "encoder_output"], batch_size=len(probe),
                             cache_dir=tmp_path)
    images = preprocess_batch([probe.load(i) for i in range(len(probe))], teacher.preprocessing)
    torch.manual_seed(1)
    reference = TaskonomyEncoder()
    with torch.inference_mode():
        taps = reference.forward_taps(images, ["block2", "encoder_output"])
    assert feats["encoder_output"].shape == (5, 8, 16, 16)
    assert feats["block2"].shape == (5, 512, 16, 16)
    np.testing.assert_array_equal(feats["encoder_output"], taps["encoder_output"].numpy())
    np.testing.assert_array_equal(feats["block2"], taps["block2"].numpy())
    smaller = extract_features(teacher, probe, batch_size=2, cache_dir=tmp_path / "other")["encoder_output"]
    np.testing.assert_allclose(smaller, feats["encoder_output"], rtol=1e-5, atol=1e-6)


def test_unknown_layer_lists_the_valid_ones(weights_dir: Path, probe, tmp_path: Path) -> None:
    teacher = taskonomy_teacher("normal", weights_dir)
    with pytest.raises(UserInputError, match=r"Unknown layer 'block5' for teacher 'normal'.*block4.*encoder_output"):
        extract_features(teacher, probe, layers=["block5"], cache_dir=tmp_path)


# --- the cache ------------------------------------------------------------------------------------------------------

def _count_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    loads: list[str] = []
    original = weights_module.load_state_dict_file

    def counting(path):  # noqa: ANN001, ANN202
        loads.append(Path(path).name)
        return original(path)

    monkeypatch.setattr(weights_module, "load_state_dict_file", counting)
    return loads


def test_cache_hit_loads_no_network_and_returns_the_same_features(weights_dir: Path, probe, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    loads = _count_loads(monkeypatch)
    first = extract_features(taskonomy_teacher("depth", weights_dir), probe, cache_dir=tmp_path)["encoder_output"]
    assert len(loads) == 1
    again = extract_features(taskonomy_teacher("depth", weights_dir), probe, cache_dir=tmp_path)["encoder_output"]
    assert len(loads) == 1  # nothing loaded, nothing run
    np.testing.assert_array_equal(first, again)
    extract_features(taskonomy_teacher("depth", weights_dir), probe, cache_dir=tmp_path, recompute=True)
    assert len(loads) == 2


def test_cache_misses_when_any_input_changes(weights_dir: Path, probe_dir: Path, probe, tmp_path: Path) -> None:
    teacher = taskonomy_teacher("depth", weights_dir)
    key = cache_key(teacher, "encoder_output", probe)
    assert key == cache_key(taskonomy_teacher("depth", weights_dir), "encoder_output", probe)
    assert key != cache_key(teacher, "block4", probe)
    assert key != cache_key(taskonomy_teacher("normal", weights_dir), "encoder_output", probe)
    assert key != cache_key(taskonomy_teacher("depth", weights_dir, normalize_outputs=True), "encoder_output", probe)
    edited = tmp_path / "edited"
    edited.mkdir()
    for p in sorted(probe_dir.glob("*.png")):
        (edited / p.name).write_bytes(p.read_bytes())
    Image.fromarray(np.zeros((36, 44, 3), np.uint8)).save(edited / "img0.png")
    assert key != cache_key(teacher, "encoder_output", probe_from_folder(edited)[0])


def test_adding_a_teacher_computes_only_that_one(weights_dir: Path, probe, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    loads = _count_loads(monkeypatch)
    zoo_features(build_zoo(weights_dir=weights_dir, tasks=["depth"]), probe, cache_dir=tmp_path)
    assert len(loads) == 1
    features = zoo_features(build_zoo(weights_dir=weights_dir), probe, cache_dir=tmp_path)
    assert loads[1:] == [next(weights_dir.glob("normal_encoder-*.pth")).name]
    assert features.names == ["depth_zbuffer", "normal"] and features.image_ids == probe.ids
    assert features.details["probe"]["sha256"] == probe.content_hash


def test_cache_entry_records_provenance(weights_dir: Path, probe, tmp_path: Path) -> None:
    teacher = taskonomy_teacher("depth", weights_dir)
    path = Path(extract_features(teacher, probe, cache_dir=tmp_path)["encoder_output"].filename)
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["image_ids"] == probe.ids
    assert record["weights_sha256"] == teacher.weights_sha256
    assert record["probe_sha256"] == probe.content_hash
    assert record["packages"]["torch"] == torch.__version__.split("+")[0] or record["packages"]["torch"]
    assert not list(path.parent.glob(".*"))  # no temporary files left behind


def test_failed_extraction_leaves_no_cache_entry(weights_dir: Path, probe, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    teacher = taskonomy_teacher("depth", weights_dir)

    def broken(_model, _x, _layers):  # noqa: ANN001, ANN202
        raise RuntimeError("boom")

    from dataclasses import replace

    with pytest.raises(RuntimeError, match="boom"):
        extract_features(replace(teacher, run=broken), probe, cache_dir=tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# --- generic teachers and zoo files ---------------------------------------------------------------------------------

def test_zoo_file_teacher_matches_its_hooks(zoo_toml: Path, probe, tmp_path: Path) -> None:
    (teacher,) = load_zoo_file(zoo_toml)
    assert teacher.default_layer == "features.1"
    assert teacher.weights_sha256 == file_sha256(zoo_toml.parent / "small.pth")
    feats = extract_features(teacher, probe, layers=["features.1", "head"], batch_size=8, cache_dir=tmp_path)
    images = preprocess_batch([probe.load(i) for i in range(len(probe))], teacher.preprocessing)
    with torch.inference_mode():
        model = teacher.build()
        expected = hook_features(model, images, ["features.1", "head"])
        np.testing.assert_array_equal(feats["head"], model(images).numpy())
    np.testing.assert_array_equal(feats["features.1"], expected["features.1"].numpy())
    assert feats["head"].shape == (5, 5)


def test_hooks_stop_after_the_last_needed_layer() -> None:
    calls: list[str] = []
    model = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Identity())
    model[1].register_forward_hook(lambda *_: calls.append("second"))
    hook_features(model, torch.zeros(1, 3), ["0"])
    assert calls == []


def test_module_teacher_rejects_unknown_layers() -> None:
    with pytest.raises(UserInputError, match=r"Unknown layer 'fc' for teacher 'seq'.*Available: 0, 1"):
        module_teacher("seq", torch.nn.Sequential(torch.nn.Identity(), torch.nn.ReLU()), layers=["fc"])


@pytest.mark.parametrize(("content", "message"), [
    ('[[teacher]]\nname = "a"\nmodel = "my_models:SmallCNN"\ncolour = "red"\n', r"unknown key\(s\) colour"),
    ('[[teacher]]\nname = "a"\nmodel = "no_such_module:Net"\n', r"cannot import 'no_such_module'"),
    ('[[teacher]]\nname = "a"\nmodel = "my_models:Nope"\n', r"has no attribute 'Nope'"),
    ('[[teacher]]\nname = "a"\n', r"missing 'model'"),
    ('[[teacher]]\nname = "a"\nmodel = "my_models:SmallCNN"\nlayers = ["nope"]\n', r"Unknown layer 'nope'"),
    ('[[teacher]]\nname = "a"\nmodel = "my_models:SmallCNN"\ncheckpoint = "missing.pth"\n', r"does not exist"),
    ("not = [toml\n", r"could not be parsed"),
])
def test_zoo_file_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "my_models.py").write_text(SMALL_CNN)
    (tmp_path / "zoo.toml").write_text(content)
    with pytest.raises(UserInputError, match=message):
        load_zoo_file(tmp_path / "zoo.toml")


def test_zoo_file_in_json(tmp_path: Path, zoo_toml: Path) -> None:
    entry = {"name": "small_cnn", "model": "my_models:SmallCNN", "kwargs": {"width": 4}, "checkpoint": "small.pth"}
    (zoo_toml.parent / "zoo.json").write_text(json.dumps({"teacher": [entry]}))
    (teacher,) = load_zoo_file(zoo_toml.parent / "zoo.json")
    assert teacher.name == "small_cnn" and teacher.layers[-1] == "head"


# --- the CLI --------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_matrix_from_weights_equals_the_features_route(weights_dir: Path, probe_dir: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    common = ["--weights-dir", str(weights_dir), "--images", str(probe_dir), "--cache-dir", str(cache), "-q"]
    assert main(["matrix", *common, "--out", str(tmp_path / "sim.png")]) == 0
    assert main(["features", *common, "--out", str(tmp_path / "feats"), "--layers", "block4", "encoder_output"]) == 0
    fs = load_features_dir(tmp_path / "feats", layer="encoder_output")
    assert fs.names == list(TASKS) and fs.image_ids == [f"img{i}.png" for i in range(5)]
    expected = similarity_matrix(fs.as_dict())
    with np.load(tmp_path / "sim.npz") as npz:
        np.testing.assert_array_equal(npz["similarity"], expected.matrix)
        record = json.loads(str(npz["provenance"]))
    assert set(record["teachers"]) == set(TASKS)
    assert record["teachers"]["normal"]["weights_sha256"] == file_sha256(next(weights_dir.glob("normal_*")))
    assert record["probe"]["n_images"] == 5
    provenance = json.loads((tmp_path / "feats" / "provenance.json").read_text())
    assert set(provenance["layers"]) == {"block4", "encoder_output"}


@pytest.mark.slow
def test_cli_pick_aux_with_a_zoo_file_and_weights(weights_dir: Path, probe_dir: Path, zoo_toml: Path,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["pick-aux", "--weights-dir", str(weights_dir), "--zoo", str(zoo_toml), "--images", str(probe_dir),
                 "--cache-dir", str(tmp_path), "--targets", "depth", "--bootstrap", "0", "--json", "-q",
                 "--layer", "nope"])
    assert code == 2 and "Unknown layer 'nope'" in capsys.readouterr().err
    # each teacher at its own default layer: Taskonomy encoder_output, the CNN's features.1
    assert main(["pick-aux", "--weights-dir", str(weights_dir), "--zoo", str(zoo_toml), "--images", str(probe_dir),
                 "--cache-dir", str(tmp_path), "--targets", "depth", "--bootstrap", "0", "--json", "-q"]) == 0
    ranking = json.loads(capsys.readouterr().out)
    assert sorted(c["name"] for c in ranking) == ["normal", "small_cnn"]


@pytest.mark.parametrize(("argv", "message"), [
    (["matrix", "--weights-dir", "{w}"], "a zoo needs probe images"),
    (["matrix", "--weights-dir", "{tmp}/nowhere", "--images", "{p}"], "does not exist"),
    (["matrix", "--weights-dir", "{w}", "--images", "{tmp}/nowhere"], "neither an existing folder nor a built-in"),
    (["matrix", "--weights-dir", "{w}", "--images", "{p}", "--tasks", "depth", "curvature"], "curvature_encoder"),
    (["matrix", "--weights-dir", "{w}", "--images", "{p}", "--device", "cuda"], "no CUDA device"),
    (["matrix", "--features", "{p}", "--weights-dir", "{w}", "--images", "{p}"], "not both"),
    (["features", "--weights-dir", "{w}", "--images", "{p}", "--out", "{p}"], "already exists and is not empty"),
])
def test_cli_zoo_bad_input(argv: list[str], message: str, weights_dir: Path, probe_dir: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    filled = [a.format(w=weights_dir, p=probe_dir, tmp=tmp_path) for a in argv]
    assert main([*filled, "--cache-dir", str(tmp_path / "cache"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rsa-toolkit: error:") and message in err
    assert not (tmp_path / "sim.png").exists()


def test_a_zoo_file_teacher_with_a_checkpoint_loads_no_network_on_a_cached_run(zoo_toml: Path, probe, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    loads = _count_loads(monkeypatch)
    (teacher,) = load_zoo_file(zoo_toml)
    assert len(loads) == 0  # described (on the meta device), not loaded
    first = extract_features(teacher, probe, layers=["features.1", "head"], cache_dir=tmp_path / "cache")
    assert len(loads) == 1
    (again,) = load_zoo_file(zoo_toml)
    cached = extract_features(again, probe, layers=["features.1", "head"], cache_dir=tmp_path / "cache")
    assert len(loads) == 1  # a fully cached run: nothing built for real, nothing loaded
    for layer in first:
        np.testing.assert_array_equal(first[layer], cached[layer])
