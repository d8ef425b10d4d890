"""Zoo files: preprocessing keys and their provenance, one-line import/constructor errors, and `rsa-toolkit layers`."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rsa_toolkit.cli.main import main
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.images.preprocess import PlainPreprocessing, get_preprocessing
from rsa_toolkit.zoo.layer_shapes import layer_shapes
from rsa_toolkit.zoo.taskonomy.encoder import TaskonomyEncoder, tap_shapes
from rsa_toolkit.zoo.taskonomy.weights import save_visualpriors_checkpoint
from rsa_toolkit.zoo.teachers import hook_features
from rsa_toolkit.zoo.zoo_file import layers_command, load_zoo_file

TINY = '''
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(4 * width, 5)
        self.unused = nn.Identity()

    def forward(self, x):
        return self.head(self.pool(self.act(self.conv(x))).flatten(1))


def broken(width=4):
    raise ValueError(f"width {width} is not supported")
'''


@pytest.fixture
def module(tmp_path: Path) -> Iterator[str]:
    """A fresh module name (so no test sees another's cached import), written beside the zoo file."""
    name = f"tiny_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(TINY)
    yield name
    sys.modules.pop(name, None)


def _zoo(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "zoo.toml"
    path.write_text(body)
    return path


def _entry(module: str, extra: str = "") -> str:
    return f'[[teacher]]\nname = "tiny"\nmodel = "{module}:Tiny"\n{extra}'


# --- preprocessing keys -----------------------------------------------------------------------------------------------

def test_preprocessing_table_builds_the_recipe_and_provenance_records_it(tmp_path: Path, module: str) -> None:
    keys = ('preprocessing = { input_size = 32, resize = "resize_short_then_center_crop", resize_short = 40, '
            'mean = [0.5, 0.4, 0.3], std = [0.2, 0.2, 0.2], value_range = [-1, 1], channel_order = "BGR" }\n')
    (teacher,) = load_zoo_file(_zoo(tmp_path, _entry(module, keys)))
    prep = teacher.preprocessing
    assert prep == PlainPreprocessing(size=32, resize="resize_short_then_center_crop", resize_short=40,
                                      mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2), value_range=(-1, 1),
                                      channel_order="BGR")
    record = prep.describe()
    assert record["kind"] == "generic" and record["name"] == "custom"
    assert {k: record[k] for k in ("size", "resize", "resize_short", "value_range", "channel_order", "mean", "std")} \
        == {"size": 32, "resize": "resize_short_then_center_crop", "resize_short": 40, "value_range": [-1.0, 1.0],
            "channel_order": "BGR", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}
    assert get_preprocessing(json.loads(json.dumps(record))) == prep


def test_presets_say_what_they_are_in_provenance() -> None:
    assert get_preprocessing("imagenet").describe()["name"] == "imagenet"
    assert get_preprocessing("plain").describe()["name"] == "plain"
    assert get_preprocessing("imagenet").describe()["kind"] == "generic"
    assert get_preprocessing("taskonomy-low-sat").describe()["name"] == "taskonomy-low-sat"
    assert PlainPreprocessing(size=32).describe()["name"] == "custom"
    old = {**get_preprocessing("imagenet").describe(), "kind": "plain"}  # records written before "generic"
    assert get_preprocessing(old) == get_preprocessing("imagenet")


def test_preprocessing_base_and_string_preset(tmp_path: Path, module: str) -> None:
    (a,) = load_zoo_file(_zoo(tmp_path, _entry(module, 'preprocessing = { base = "imagenet", input_size = 64 }\n')))
    assert a.preprocessing == PlainPreprocessing(size=64)
    (b,) = load_zoo_file(_zoo(tmp_path, _entry(module, 'preprocessing = "taskonomy"\n')))
    assert b.preprocessing.describe()["name"] == "taskonomy"
    (c,) = load_zoo_file(_zoo(tmp_path, _entry(module, "preprocessing = { input_size = 16 }\n")))
    assert c.preprocessing == PlainPreprocessing(size=16, mean=None, std=None)


def test_each_step_of_the_generic_recipe() -> None:
    image = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(0)).permute(1, 2, 0).numpy()
    chw = torch.from_numpy(image).permute(2, 0, 1)
    # resize: the whole image squeezed to size x size
    out = PlainPreprocessing(size=10, mean=None, std=None, resize="resize", antialias=False)(image)
    ref = torch.nn.functional.interpolate(chw[None], size=(10, 10), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(out, ref)
    # center_crop: pixels kept as they are
    out = PlainPreprocessing(size=10, mean=None, std=None, resize="center_crop")(image)
    torch.testing.assert_close(out, chw[:, 5:15, 10:20])
    # resize_short_then_center_crop: shorter side 20 -> 10 (the long side int(10 * 30 / 20) = 15), crop 8
    out = PlainPreprocessing(size=8, mean=None, std=None, resize="resize_short_then_center_crop", resize_short=10,
                             antialias=False)(image)
    ref = torch.nn.functional.interpolate(chw[None], size=(10, 15), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(out, ref[:, 1:9, 4:12])
    # value range, then channel order, then mean/std in those units
    base = PlainPreprocessing(size=10, mean=None, std=None, resize="center_crop")(image)
    out = PlainPreprocessing(size=10, resize="center_crop", value_range=(-1, 1), channel_order="bgr",
                             mean=(0.1, 0.2, 0.3), std=(2, 2, 2))(image)
    expected = ((base * 2 - 1).flip(0) - torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1)) / 2
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(("keys", "message"), [
    ('{ input_size = 0 }', r"input_size must be a positive integer .*got 0"),
    ('{ input_size = "224" }', r"input_size must be a positive integer .*got '224'"),
    ('{ resize = "squash" }', r"resize must be one of center_crop_then_resize, resize_short_then_center_crop, "
                              r"resize, center_crop, got 'squash'"),
    ('{ input_size = 224, resize = "resize_short_then_center_crop", resize_short = 200 }',
     r"resize_short must be an integer >= size \(224\).*got 200"),
    ('{ resize_short = 256 }', r"resize_short is used only with resize='resize_short_then_center_crop', got "
                               r"resize_short=256 with resize='center_crop_then_resize'"),
    ('{ mean = [0.5, 0.5], std = [1, 1, 1] }', r"mean must be 3 finite numbers .*got \[0.5, 0.5\]"),
    ('{ mean = [0.5, 0.5, 0.5] }', r"mean needs std: give both, or neither .*got only mean"),
    ('{ mean = [0, 0, 0], std = [1, 0, 1] }', r"std must be positive for every channel"),
    ('{ value_range = [1, -1] }', r"value_range must be two finite numbers \[low, high\] with low < high .*"
                                  r"got \[1, -1\]"),
    ('{ value_range = "0-1" }', r"value_range must be two finite numbers"),
    ('{ channel_order = "RBG" }', r"channel_order must be 'RGB' or 'BGR', got 'RBG'"),
    ('{ antialias = "yes" }', r"antialias must be True or False, got 'yes'"),
    ('{ colour = "warm" }', r"unknown preprocessing key\(s\) colour; expected some of base, input_size"),
    ('{ base = "taskonomy" }', r"base must be 'plain' or 'imagenet' .*got 'taskonomy'"),
    ('"imagenett"', r"Unknown preprocessing 'imagenett'\. Did you mean 'imagenet'"),
    ("3", r"preprocessing must be a preset name .* or a table of keys .*got int"),
])
def test_preprocessing_key_errors(tmp_path: Path, module: str, keys: str, message: str) -> None:
    path = _zoo(tmp_path, _entry(module, f"preprocessing = {keys}\n"))
    with pytest.raises(UserInputError, match=rf"^zoo file '.*zoo.toml', teacher 1 \('tiny'\): preprocessing: .*"
                                             rf"{message}"):
        load_zoo_file(path)


def test_center_crop_needs_large_enough_images() -> None:
    with pytest.raises(UserInputError, match=r"resize='center_crop' needs images of at least 32 x 32 pixels, got "
                                             r"20 x 40"):
        PlainPreprocessing(size=32, resize="center_crop")(torch.rand(20, 40, 3).numpy())


# --- the task a teacher was trained on (what it sees of probe images) ---------------------------------------------

def test_a_task_key_gives_a_model_teacher_its_own_input_kind(tmp_path: Path, module: str) -> None:
    (plain,) = load_zoo_file(_zoo(tmp_path, _entry(module)))
    assert plain.task is None and plain.input_kind() == "clean"
    (colour,) = load_zoo_file(_zoo(tmp_path, _entry(module, 'task = "colorize"\n')))  # an alias
    assert colour.task == "colorization" and colour.input_kind() == "grey" and colour.input_kind("clean") == "clean"


@pytest.mark.parametrize(("extra", "message"), [
    ('task = "colourisation"\n', r"teacher 1 \('tiny'\): task: Unknown task 'colourisation'\. Did you mean "
                                 r"'colorization'"),
    ("task = 3\n", r"teacher 1 \('tiny'\): task must be a task name \(e\.g\. \"colorization\"\), got 3\."),
])
def test_task_key_errors(tmp_path: Path, module: str, extra: str, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        load_zoo_file(_zoo(tmp_path, _entry(module, extra)))


def test_a_taskonomy_entry_takes_no_task_key(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"teacher 1: 'task' is for model= teachers; a Taskonomy encoder's task is "
                                             r"its 'taskonomy' key\. Leave 'task' out\."):
        load_zoo_file(_zoo(tmp_path, '[[teacher]]\ntaskonomy = "depth"\ntask = "colorization"\n'))


# --- zoo files are code: one-line errors --------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "target", "message"), [
    ("def f(:\n    pass\n", "Net", r"cannot import '{m}': SyntaxError: .* \({m}\.py:1\)\.$"),
    ("import no_such_dependency_xyz\n", "Net",
     r"cannot import '{m}': ModuleNotFoundError: No module named 'no_such_dependency_xyz' \({m}\.py:1\)\.$"),
    ("x = 1\nraise RuntimeError('bad module')\n", "Net", r"cannot import '{m}': RuntimeError: bad module \({m}\.py:2\)"),
    (TINY, "broken", r"calling '{m}:broken' with kwargs \{{\}} failed: ValueError: width 4 is not supported "
                     r"\({m}\.py:2\d\)\.$"),
    (TINY, "Tiny", None),
])
def test_import_and_constructor_errors_are_one_line_with_file_and_line(
        tmp_path: Path, source: str, target: str, message: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    name = f"user_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(source)
    path = _zoo(tmp_path, f'[[teacher]]\nname = "t"\nmodel = "{name}:{target}"\n')
    try:
        code = main(["layers", "--zoo", str(path)])
    finally:
        sys.modules.pop(name, None)
    err = capsys.readouterr().err
    if message is None:
        assert code == 0
        return
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    pattern = rf"^rsa-toolkit: error: zoo file '{path}', teacher 1 \('t'\): " + message.format(m=name)
    with pytest.raises(UserInputError, match=pattern.replace("rsa-toolkit: error: ", "")):
        load_zoo_file(path)
    assert __import__("re").match(pattern, lines[0]), lines[0]


def test_a_missing_module_names_the_zoo_directory(tmp_path: Path) -> None:
    path = _zoo(tmp_path, '[[teacher]]\nname = "t"\nmodel = "nowhere_xyz:Net"\n')
    with pytest.raises(UserInputError, match=r"teacher 1 \('t'\): cannot import 'nowhere_xyz': no module of that name"
                                             r" in '.*' or on the Python path\.$"):
        load_zoo_file(path)


def test_help_says_zoo_files_are_code(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("matrix", "pick-aux", "features", "layers"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "trusted" in text and ("runs the callables" in text or "runs the code" in text), command


# --- rsa-toolkit layers ---------------------------------------------------------------------------------------------

def test_layers_of_the_mini_zoo_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "depth", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["teacher"] == "depth_zbuffer" and record["default_layer"] == "encoder"
    assert record["input_shape"] == [3, 64, 64]
    by_name = {layer["name"]: layer for layer in record["layers"]}
    assert by_name["encoder"]["shape"] == [8, 16, 16] and by_name["encoder"]["default"]
    assert sum(layer["default"] for layer in record["layers"]) == 1
    assert main(["layers", "depth", "--zoo", "mini"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("depth_zbuffer  (mini zoo") and "  encoder " in out and "8x16x16  (default)" in out


def test_layers_of_a_zoo_file_match_a_real_forward(tmp_path: Path, module: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = _zoo(tmp_path, _entry(module, 'layers = ["act", "head"]\npreprocessing = { input_size = 16 }\n'))
    assert main(["layers", "--zoo", str(path), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    shapes = {layer["name"]: layer["shape"] for layer in record["layers"]}
    (teacher,) = load_zoo_file(path)
    with torch.inference_mode():
        expected = hook_features(teacher.build(), torch.zeros(1, 3, 16, 16), ["conv", "act", "pool", "head"])
    assert shapes == {**{k: list(v.shape[1:]) for k, v in expected.items()}, "unused": None}
    assert {layer["name"]: layer["output"] for layer in record["layers"]}["unused"] == "not run"
    assert record["default_layer"] == "act" and record["missing_layers"] == []
    assert [layer["name"] for layer in record["layers"] if layer["in_zoo_file"]] == ["act", "head"]
    assert main(["layers", "tiny", "--zoo", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("tiny  (zoo file") and "16x16 image" in out[0]
    assert [line.split() for line in out[1:]] == [["conv", "4x8x8"], ["act", "4x8x8", "(default)"],
                                                  ["pool", "4x2x2"], ["head", "5"],
                                                  ["unused", "not", "run", "by", "forward()"]]


def test_layers_of_a_zoo_file_with_a_bad_layer_lists_what_exists(tmp_path: Path, module: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _zoo(tmp_path, _entry(module, 'layers = ["nope", "pool"]\n'))
    with pytest.raises(UserInputError, match=rf"Unknown layer 'nope' for teacher 'tiny'.*Available: conv, act, pool, "
                                             rf"head, unused \(list them with: rsa-toolkit layers tiny --zoo "
                                             rf"{path}\)\.$"):
        load_zoo_file(path)
    assert layers_command(["tiny"], zoo=path) == f"rsa-toolkit layers tiny --zoo {path}"
    assert main(["layers", "--zoo", str(path)]) == 0
    captured = capsys.readouterr()
    assert "  pool    4x2x2  (default)" in captured.out
    assert "  nope    MISSING: no such layer (named in the zoo file's layers)" in captured.out
    assert "teacher 'tiny': no layer named 'nope'" in captured.err
    assert main(["layers", "--zoo", str(path), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["missing_layers"] == ["nope"] and record["default_layer"] == "pool"


def test_unknown_teacher_in_layers(tmp_path: Path, module: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = _zoo(tmp_path, _entry(module))
    assert main(["layers", "tiyn", "--zoo", str(path)]) == 2
    assert "Unknown teacher 'tiyn' in the zoo file" in capsys.readouterr().err
    assert main(["layers", "nonesuch"]) == 2
    assert "Unknown teacher 'nonesuch' in the mini zoo" in capsys.readouterr().err


def test_layers_of_taskonomy_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    save_visualpriors_checkpoint(TaskonomyEncoder().eval(), tmp_path, "normal", "encoder")
    assert main(["layers", "--weights-dir", str(tmp_path), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["teacher"] == "normal" and record["default_layer"] == "encoder_output"
    expected = {name: list(shape) for name, shape in tap_shapes(256).items()}
    assert {layer["name"]: layer["shape"] for layer in record["layers"]} == expected
    assert main(["layers", "normals", "--weights-dir", str(tmp_path)]) == 0  # an alias
    out = capsys.readouterr().out
    assert "encoder_output  8x16x16  (default)" in out and "block4          2048x16x16" in out


def test_taskonomy_shapes_equal_a_real_forward() -> None:
    encoder = TaskonomyEncoder().eval()
    with torch.inference_mode():
        taps = encoder.forward_taps(torch.zeros(1, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in taps.items()} == tap_shapes(64)
    from rsa_toolkit.zoo.mini.embedded import mini_teacher

    teacher = mini_teacher("normal")
    assert {s.name: s.shape for s in layer_shapes(teacher)}["encoder"] == (8, 16, 16)


def test_unknown_layer_at_run_time_names_the_layers_command_of_its_zoo(
        tmp_path: Path, module: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = _zoo(tmp_path, _entry(module, "preprocessing = { input_size = 16 }\n"))
    common = ["--images", "skimage", "--cache-dir", str(tmp_path / "cache"), "-q", "--out", str(tmp_path / "f")]
    assert main(["features", "--zoo", str(path), "--layers", "nope", *common]) == 2
    err = capsys.readouterr().err
    assert f"(list them with: rsa-toolkit layers tiny --zoo {path})" in err
    assert main(["layers", "tiny", "--zoo", str(path)]) == 0  # the command it names works
    capsys.readouterr()
    assert main(["features", "--zoo", "mini", "--tasks", "normal", "--layers", "nope", *common]) == 2
    assert "(list them with: rsa-toolkit layers normal --zoo mini)" in capsys.readouterr().err


def test_a_syntax_error_through_a_subprocess_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import os
    import subprocess

    (tmp_path / "bad_models.py").write_text("class Net(:\n")
    path = _zoo(tmp_path, '[[teacher]]\nname = "t"\nmodel = "bad_models:Net"\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "rsa_toolkit", "layers", "--zoo", str(path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"rsa-toolkit: error: zoo file '{path}', teacher 1 ('t'): cannot import 'bad_models': SyntaxError: "
        f"{done.stderr.split('SyntaxError: ')[1].split(' (')[0]} (bad_models.py:1)."]
