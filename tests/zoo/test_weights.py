"""Loading Taskonomy weights from a local directory (rsa_toolkit.zoo.taskonomy.weights).

No real visualpriors checkpoint is available offline, so randomly initialised networks are saved in the visualpriors
format ({'state_dict': ...}, named {task}_{part}-<sha256>.pth) and loaded back. The independent references are
hashlib (digests), torch.equal on every tensor, and the forward pass of the saved module.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import rsa_toolkit.zoo.taskonomy.weights as weights
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.zoo.taskonomy.net import (
    ENCODER_ONLY_TASKS,
    VISUALPRIORS_WEIGHT_FILES,
    TaskonomyDecoder,
    TaskonomyEncoder,
    build_decoder,
    checkpoint_filename,
)
from rsa_toolkit.zoo.taskonomy.weights import (
    WEIGHTS_ENV,
    available_taskonomy_tasks,
    find_checkpoint,
    hash_prefix_from_name,
    load_into,
    load_state_dict_file,
    load_taskonomy_decoder,
    load_taskonomy_encoder,
    resolve_weights_dir,
    save_visualpriors_checkpoint,
    verify_hash,
)

SHA_NAME = re.compile(r"(?P<stem>.+)-(?P<hex>[0-9a-f]{64})\.pth")


def _randomize(module: nn.Module, seed: int) -> nn.Module:
    """Random values in every parameter and buffer (BN statistics too), so bit-exactness means something."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if value.is_floating_point():
                fresh = torch.randn(value.shape, generator=generator, dtype=value.dtype)
                value.copy_(fresh.abs() + 0.5 if key.endswith("running_var") else fresh * 0.05)
            else:
                value.copy_(torch.randint(0, 1000, value.shape, generator=generator))
    return module.eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _link(src: Path, directory: Path, name: str) -> Path:
    """The same file under another name (a hard link: no 94 MB copy)."""
    directory.mkdir(parents=True, exist_ok=True)
    dst = directory / name
    os.link(src, dst)
    return dst


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny forward passes: one intra-op thread avoids OpenMP spin-waiting on a busy machine (30× faster here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def encoder() -> TaskonomyEncoder:
    torch.manual_seed(0)
    return _randomize(TaskonomyEncoder(), seed=0)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def decoder() -> TaskonomyDecoder:
    torch.manual_seed(1)
    return _randomize(build_decoder("normal"), seed=1)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory, encoder: TaskonomyEncoder,
        decoder: TaskonomyDecoder) -> dict[str, Path]:
    """A weights directory with the normal encoder and decoder under visualpriors names, and a plain-named copy."""
    hashed = tmp_path_factory.mktemp("hashed")
    plain = tmp_path_factory.mktemp("plain")
    enc = save_visualpriors_checkpoint(encoder, hashed, "normal", "encoder")
    dec = save_visualpriors_checkpoint(decoder, hashed, "normals", "decoder")  # an alias: saved as normal
    enc_plain = save_visualpriors_checkpoint(encoder, plain, "normal", "encoder", with_hash=False)
    return {"hashed": hashed, "plain": plain, "encoder": enc, "decoder": dec, "encoder_plain": enc_plain}


@pytest.fixture(scope="module")
def reference(encoder: TaskonomyEncoder, decoder: TaskonomyDecoder) -> dict[str, torch.Tensor]:
    """One small input (64×64: the encoder gives 8×4×4) and the saved modules' outputs, computed once."""
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        z = encoder(x)
        y = decoder(z)
    return {"x": x, "z": z, "y": y}


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key


# ---- round trips ---------------------------------------------------------------------------------------------------

def test_saved_names_carry_the_sha256(zoo: dict[str, Path]) -> None:
    for key, stem in (("encoder", "normal_encoder"), ("decoder", "normal_decoder")):
        match = SHA_NAME.fullmatch(zoo[key].name)
        assert match and match["stem"] == stem
        assert match["hex"] == _sha256(zoo[key])
        assert verify_hash(zoo[key]) == match["hex"]
    assert zoo["encoder_plain"].name == "normal_encoder.pth"
    assert sorted(p.name for p in zoo["hashed"].iterdir()) == sorted([zoo["encoder"].name, zoo["decoder"].name])
    saved = torch.load(zoo["encoder"], map_location="cpu", weights_only=True)
    assert list(saved) == ["state_dict"]  # the visualpriors format


def test_encoder_round_trip_is_bit_exact(zoo: dict[str, Path], encoder: TaskonomyEncoder,
                                         reference: dict[str, torch.Tensor]) -> None:
    loaded, digest = load_taskonomy_encoder("normal", zoo["hashed"])
    assert digest == _sha256(zoo["encoder"])
    assert isinstance(loaded, TaskonomyEncoder) and not loaded.training and not loaded.normalize_outputs
    _assert_same_state(encoder, loaded)
    with torch.inference_mode():
        got = loaded(reference["x"])
    assert got.shape == (1, 8, 4, 4)
    assert torch.equal(reference["z"], got)


def test_plain_name_round_trip_and_normalize_option(zoo: dict[str, Path], encoder: TaskonomyEncoder,
                                                    reference: dict[str, torch.Tensor]) -> None:
    loaded, digest = load_taskonomy_encoder("rgb2sfnorm", zoo["plain"], normalize_outputs=True)
    assert digest == _sha256(zoo["encoder_plain"])
    assert loaded.normalize_outputs
    _assert_same_state(encoder, loaded)
    with torch.inference_mode():
        got = loaded(reference["x"])
    expected = torch.nn.functional.group_norm(reference["z"], 8)  # visualpriors' GroupNorm(8, 8, affine=False)
    assert torch.equal(expected, got)


def test_decoder_round_trip_for_a_three_channel_task(zoo: dict[str, Path], decoder: TaskonomyDecoder,
                                                     reference: dict[str, torch.Tensor]) -> None:
    dec, digest = load_taskonomy_decoder("normal", zoo["hashed"])
    assert digest == _sha256(zoo["decoder"])
    assert dec.out_channels == 3 and dec.apply_tanh and not dec.training
    _assert_same_state(decoder, dec)
    with torch.inference_mode():
        got = dec(reference["z"])  # the loaded encoder gives reference["z"] bit-exactly (test above)
    assert got.shape == (1, 3, 64, 64)
    assert torch.equal(reference["y"], got)


def test_bare_state_dict_is_accepted(tmp_path: Path) -> None:
    module = nn.Linear(3, 2)
    torch.save(module.state_dict(), tmp_path / "bare.pth")
    loaded = load_state_dict_file(tmp_path / "bare.pth")
    assert set(loaded) == {"weight", "bias"}
    assert all(torch.equal(loaded[k], v) for k, v in module.state_dict().items())


def test_save_leaves_no_temporary_files_and_replaces_atomically(tmp_path: Path) -> None:
    module = nn.Linear(3, 2)
    first = save_visualpriors_checkpoint(module, tmp_path, "depth", "encoder", with_hash=False)
    second = save_visualpriors_checkpoint(module, tmp_path, "depth", "encoder", with_hash=False)
    assert first == second == tmp_path / "depth_zbuffer_encoder.pth"
    hashed = save_visualpriors_checkpoint(module, tmp_path, "depth", "encoder")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, hashed.name])
    with pytest.raises(UserInputError, match="does not exist"):
        save_visualpriors_checkpoint(module, tmp_path / "nope", "depth", "encoder")


# ---- the weights directory -----------------------------------------------------------------------------------------

def test_environment_variable_names_the_directory(zoo: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                  encoder: TaskonomyEncoder) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(zoo["hashed"]))
    assert resolve_weights_dir(None) == zoo["hashed"]
    assert resolve_weights_dir(zoo["plain"]) == zoo["plain"]  # the argument wins
    monkeypatch.setenv(WEIGHTS_ENV, str(zoo["plain"]))
    assert resolve_weights_dir("") == zoo["plain"]  # an empty --weights-dir falls back to the variable too
    loaded, digest = load_taskonomy_encoder("normal")
    assert digest == _sha256(zoo["encoder_plain"])
    _assert_same_state(encoder, loaded)


def test_no_directory_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(UserInputError, match=rf"pass --weights-dir DIR .* set the environment variable {WEIGHTS_ENV}"):
        resolve_weights_dir(None)


@pytest.mark.parametrize("setup", ["missing", "empty", "no_pth", "a_file"])
def test_missing_or_empty_directory_lists_the_expected_files(tmp_path: Path, setup: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "weights"
    if setup == "empty":
        target.mkdir()
    elif setup == "no_pth":
        target.mkdir()
        (target / "README.txt").write_text("weights go here")
    elif setup == "a_file":
        target.write_text("not a folder")
    expected = {"missing": "does not exist", "empty": "holds no .pth file", "no_pth": "holds no .pth file",
                "a_file": "is a file, not a folder"}[setup]
    with pytest.raises(UserInputError, match=expected) as info:
        resolve_weights_dir(target)
    message = str(info.value)
    assert str(target) in message
    assert all(name in message for name in VISUALPRIORS_WEIGHT_FILES)
    if setup != "a_file":
        assert "github.com/alexsax/visual-prior" in message and "never downloads" in message
    monkeypatch.setenv(WEIGHTS_ENV, str(target))  # the same through the environment variable
    with pytest.raises(UserInputError, match=rf"from {WEIGHTS_ENV}="):
        resolve_weights_dir(None)


def test_missing_file_lists_the_exact_names_expected(zoo: dict[str, Path]) -> None:
    with pytest.raises(UserInputError, match="No checkpoint for the depth_zbuffer encoder") as info:
        load_taskonomy_encoder("depth", zoo["hashed"])
    message = str(info.value)
    assert "'depth_zbuffer_encoder-cc343a8ed622fd7ee3ce54398be8682bbbbfb5d11fa80e8d03a56a5ae4e11b09.pth'" in message
    assert "'depth_zbuffer_encoder.pth'" in message
    assert "github.com/alexsax/visual-prior" in message and "never downloads" in message


def test_find_checkpoint_names_and_aliases(tmp_path: Path) -> None:
    full = checkpoint_filename("depth_zbuffer", "encoder")
    assert full is not None
    (tmp_path / full).touch()
    (tmp_path / "normal_decoder-0123abcd.pth").touch()  # an 8-digit prefix: accepted (torch.hub convention)
    (tmp_path / "segment_unsup25d_encoder.pth").touch()
    assert find_checkpoint(tmp_path, "depth", "encoder") == tmp_path / full
    assert find_checkpoint(tmp_path, "rgb2depth", "encoder") == tmp_path / full
    assert find_checkpoint(tmp_path, "normals", "decoder") == tmp_path / "normal_decoder-0123abcd.pth"
    assert find_checkpoint(tmp_path, "segment25d", "encoder") == tmp_path / "segment_unsup25d_encoder.pth"
    with pytest.raises(UserInputError, match="No checkpoint for the segment_unsup2d encoder"):  # no prefix confusion
        find_checkpoint(tmp_path, "segment_unsup2d", "encoder")
    with pytest.raises(UserInputError, match="part must be 'encoder' or 'decoder'"):
        find_checkpoint(tmp_path, "depth", "head")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="Unknown task 'dept'"):
        find_checkpoint(tmp_path, "dept", "encoder")
    with pytest.raises(UserInputError, match="does not exist or is not a folder"):
        find_checkpoint(tmp_path / "nope", "depth", "encoder")


def test_names_that_do_not_fit_the_pattern_are_pointed_out(tmp_path: Path) -> None:
    (tmp_path / "normal_encoder-abc.pth").touch()  # 3 hex digits: too short to be a hash prefix
    (tmp_path / "normal_encoder (1).pth").touch()
    with pytest.raises(UserInputError, match=r"similar name .*normal_encoder \(1\)\.pth, normal_encoder-abc\.pth"):
        find_checkpoint(tmp_path, "normal", "encoder")


def test_several_candidates_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "normal_encoder.pth").touch()
    (tmp_path / "normal_encoder-0123456789abcdef.pth").touch()
    with pytest.raises(UserInputError, match=r"Several checkpoints for the normal encoder .*"
                                             r"normal_encoder-0123456789abcdef\.pth, normal_encoder\.pth"):
        find_checkpoint(tmp_path, "normal", "encoder")


def test_available_tasks_in_registry_order(tmp_path: Path) -> None:
    for name in ("vanishing_point_encoder.pth", "normal_decoder.pth", "autoencoding_encoder-0123abcd.pth",
                 checkpoint_filename("normal", "encoder"), "segment_unsup25d_encoder.pth", "notes.txt"):
        (tmp_path / str(name)).touch()
    assert available_taskonomy_tasks(tmp_path) == ["autoencoding", "normal", "segment_unsup25d", "vanishing_point"]
    with pytest.raises(UserInputError, match="does not exist"):
        available_taskonomy_tasks(tmp_path / "nope")


# ---- hashes --------------------------------------------------------------------------------------------------------

def test_hash_prefix_from_name() -> None:
    assert hash_prefix_from_name("normal_encoder-ABCDEF0123.pth") == "abcdef0123"
    assert hash_prefix_from_name("dir/normal_encoder-" + "a" * 64 + ".pth") == "a" * 64
    assert hash_prefix_from_name("normal_encoder.pth") is None
    assert hash_prefix_from_name("normal_encoder-abc.pth") is None  # < 8 digits
    assert hash_prefix_from_name("normal_encoder-" + "a" * 65 + ".pth") is None


def test_hash_prefix_and_upper_case_are_accepted(tmp_path: Path) -> None:
    path = save_visualpriors_checkpoint(nn.Linear(2, 2), tmp_path, "normal", "encoder", with_hash=False)
    digest = _sha256(path)
    short = path.rename(tmp_path / f"normal_encoder-{digest[:8].upper()}.pth")
    assert verify_hash(short) == digest


def test_wrong_hash_in_the_name(zoo: dict[str, Path], tmp_path: Path) -> None:
    actual = _sha256(zoo["encoder"])
    _link(zoo["encoder"], tmp_path, "normal_encoder-deadbeef00.pth")
    with pytest.raises(UserInputError, match=rf"starting with deadbeef00, the file's SHA-256 is {actual}; the file "
                                             r"is corrupted or is not the checkpoint its name claims"):
        load_taskonomy_encoder("normal", tmp_path)


def test_another_tasks_encoder_is_caught_by_the_hash_only(zoo: dict[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """All encoders have the same shapes: a swapped encoder loads, unless a hash says otherwise."""
    digest = _sha256(zoo["encoder"])
    # 1. The normal encoder under the depth name with the depth file's released hash: the hash check fails.
    _link(zoo["encoder"], tmp_path / "a", str(checkpoint_filename("depth_zbuffer", "encoder")))
    with pytest.raises(UserInputError, match="is not the checkpoint its name claims"):
        load_taskonomy_encoder("depth", tmp_path / "a")
    # 2. Under a plain name it loads: nothing in an encoder's content names its task (documented).
    _link(zoo["encoder"], tmp_path / "b", "depth_zbuffer_encoder.pth")
    _, got = load_taskonomy_encoder("depth", tmp_path / "b")
    assert got == digest
    # 3. Unless its digest is one of visualpriors' released files: then it is recognised under any name.
    monkeypatch.setitem(weights._RELEASED_BY_DIGEST, digest, "normal_encoder")
    with pytest.raises(UserInputError, match="is that of visualpriors' normal_encoder.pth: the file is another "
                                             "task's checkpoint"):
        load_taskonomy_encoder("depth", tmp_path / "b")


# ---- unreadable files ----------------------------------------------------------------------------------------------

def test_truncated_checkpoint(zoo: dict[str, Path], tmp_path: Path) -> None:
    data = zoo["encoder_plain"].read_bytes()
    (tmp_path / "normal_encoder.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match=r"normal_encoder\.pth' \([\d,]+ bytes\) cannot be read: it is "
                                             r"truncated or corrupted"):
        load_taskonomy_encoder("normal", tmp_path)
    # with the hash in its name the hash check catches it first
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / zoo["encoder"].name).write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="fails its hash check"):
        load_taskonomy_encoder("normal", tmp_path / "h")


@pytest.mark.parametrize("legacy", [False, True])
def test_truncated_small_checkpoint(tmp_path: Path, legacy: bool) -> None:
    path = tmp_path / "x.pth"
    torch.save({"state_dict": nn.Linear(4, 4).state_dict()}, path, _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    for cut in (len(data) - 7, len(data) // 2, 10):
        path.write_bytes(data[:cut])
        with pytest.raises(UserInputError, match="truncated or corrupted"):
            load_state_dict_file(path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "x.pth").touch()
    with pytest.raises(UserInputError, match=r"is empty \(0 bytes\)"):
        load_state_dict_file(tmp_path / "x.pth")


def test_random_garbage(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(5)
    garbage = bytes(torch.randint(0, 256, (4096,), generator=generator, dtype=torch.uint8).tolist())
    (tmp_path / "a.pth").write_bytes(b"PK" + garbage)
    with pytest.raises(UserInputError, match="is not a PyTorch checkpoint: it is neither torch.save's zip archive "
                                             "nor a pickle"):
        load_state_dict_file(tmp_path / "a.pth")
    for i, start in enumerate((b"\x80\x02", b"PK\x03\x04")):  # starts like a pickle / a zip, is not one
        (tmp_path / f"b{i}.pth").write_bytes(start + garbage)
        with pytest.raises(UserInputError, match="cannot be read: it is truncated or corrupted"):
            load_state_dict_file(tmp_path / f"b{i}.pth")
    with pytest.raises(UserInputError, match="does not exist or is not a file"):
        load_state_dict_file(tmp_path / "c.pth")


_UNPICKLED: list[str] = []


class _Payload:
    """A custom class: weights_only must refuse it, and its __setstate__ must never run."""

    def __init__(self) -> None:
        self.value = 1

    def __setstate__(self, state: dict[str, object]) -> None:
        _UNPICKLED.append("executed")
        self.__dict__.update(state)


def test_pickle_refused_by_weights_only_is_never_loaded_unsafely(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "normal_encoder.pth"
    torch.save({"state_dict": nn.Linear(2, 2).state_dict(), "extra": _Payload()}, path)
    calls: list[object] = []
    real_load = torch.load

    def guarded_load(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("weights_only"))
        assert kwargs.get("weights_only") is True, "torch.load called without weights_only=True"
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("unsafe unpickling attempted")

    monkeypatch.setattr(torch, "load", guarded_load)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    with pytest.raises(UserInputError, match=r"was refused for safety: it contains Python objects beyond tensors "
                                             r"\(weights_only=True\); it holds .*_Payload\. rsa-toolkit loads "
                                             r"tensors only"):
        load_state_dict_file(path)
    assert calls == [True]
    assert _UNPICKLED == []


@pytest.mark.parametrize(("content", "message"), [
    ({"model": torch.ones(2), "epoch": 3}, r"holds a dict with keys 'model', 'epoch'; expected the visualpriors "
                                           r"format, a dict with key 'state_dict'"),
    (torch.ones(3), r"holds a Tensor; expected the visualpriors format"),
    ([torch.ones(3)], r"holds a list; expected the visualpriors format"),
    ({}, r"holds an empty dict; expected the visualpriors format"),
    ({"state_dict": [torch.ones(2)]}, r"its 'state_dict' entry is a list; expected a non-empty mapping"),
    ({"state_dict": {}}, r"its 'state_dict' entry is an empty dict; expected a non-empty mapping"),
    ({"state_dict": {"weight": torch.ones(2), "step": 3, "name": "x"}},
     r"its 'state_dict' entry has 2 entries that are not name → tensor pairs \('step' \(int\), 'name' \(str\)\)"),
])
def test_content_that_is_not_a_state_dict(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "x.pth"
    torch.save(content, path)
    with pytest.raises(UserInputError, match=message):
        load_state_dict_file(path)


# ---- keys and shapes -----------------------------------------------------------------------------------------------

def test_mismatched_keys_are_listed(encoder: TaskonomyEncoder) -> None:
    state = dict(encoder.state_dict())
    del state["layer4.2.conv3.weight"]
    state["extra.weight"] = torch.zeros(3)
    target = TaskonomyEncoder()
    with pytest.raises(UserInputError, match=r"^Checkpoint 'x' does not fit the network: 1 missing key "
                                             r"\(layer4\.2\.conv3\.weight\), 1 unexpected key \(extra\.weight\)\. "
                                             r"Expected a state dict with exactly the network's 324 keys"):
        load_into(target, state, what="Checkpoint 'x'")


def test_many_mismatches_are_capped_and_shapes_reported(encoder: TaskonomyEncoder) -> None:
    state = dict(encoder.state_dict())
    for key in [k for k in state if k.startswith("layer3.") and not k.endswith("num_batches_tracked")][:7]:
        del state[key]
    state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(UserInputError, match=r"7 missing keys \(layer3\.0\.conv1\.weight, .*, …\), 1 shape mismatch "
                                             r"\(conv1\.weight: expected \(64, 3, 7, 7\), found \(64, 3, 5, 5\)\)"):
        load_into(TaskonomyEncoder(), state, what="encoder")


def test_missing_num_batches_tracked_is_tolerated_like_torch(encoder: TaskonomyEncoder) -> None:
    state = encoder.state_dict()
    without = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # no metadata: torch fills in
    target = TaskonomyEncoder()
    load_into(target, without, what="encoder")
    assert torch.equal(target.conv1.weight, encoder.conv1.weight)
    # with version-2 BatchNorm metadata torch's strict load refuses: so do we, listing the keys
    strict = type(state)((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    strict._metadata = state._metadata  # type: ignore[attr-defined]
    with pytest.raises(UserInputError, match=r"54 missing keys \(bn1\.num_batches_tracked, "):
        load_into(TaskonomyEncoder(), strict, what="encoder")


def test_wrong_tasks_decoder_names_the_task_it_fits(zoo: dict[str, Path], tmp_path: Path) -> None:
    _link(zoo["decoder"], tmp_path, zoo["decoder"].name.replace("normal_decoder", "depth_zbuffer_decoder"))
    with pytest.raises(UserInputError, match=r"\(depth_zbuffer decoder\) does not fit the network: 2 shape "
                                             r"mismatches \(decoder_output\.0\.weight: expected \(1, 16, 3, 3\), "
                                             r"found \(3, 16, 3, 3\); decoder_output\.0\.bias: expected \(1,\), "
                                             r"found \(3,\)\); its output layer has 3 channels, which fits the "
                                             r"decoder of autoencoding, denoising, inpainting, normal: it is "
                                             r"probably another task's decoder"):
        load_taskonomy_decoder("depth", tmp_path)


def test_decoder_size_that_fits_no_task() -> None:
    state = {"fc0.weight": torch.zeros(2048, 2048), "fc2.weight": torch.zeros(7, 2048), "fc2.bias": torch.zeros(7)}
    target = build_decoder("class_scene")
    state.update({k: v for k, v in target.state_dict().items() if k.startswith("bn0.")})
    with pytest.raises(UserInputError, match=r"its output layer has 7 channels, which fits no Taskonomy task's"):
        load_into(target, state, what="decoder")
    state["fc2.weight"], state["fc2.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    with pytest.raises(UserInputError, match=r"which fits the decoder of class_object:"):
        load_into(target, state, what="decoder")


def test_encoder_given_as_decoder_and_vice_versa(zoo: dict[str, Path], tmp_path: Path) -> None:
    _link(zoo["encoder"], tmp_path / "a", zoo["encoder"].name.replace("normal_encoder", "normal_decoder"))
    with pytest.raises(UserInputError, match=r"\(normal decoder\) looks like an encoder checkpoint \(keys "
                                             r"conv1\.weight, layer1\.…, compress1\.weight\), but a pixel-to-pixel "
                                             r"decoder is expected here"):
        load_taskonomy_decoder("normal", tmp_path / "a")
    _link(zoo["decoder"], tmp_path / "b", "normal_encoder.pth")
    with pytest.raises(UserInputError, match=r"\(normal encoder\) looks like a decoder checkpoint \(keys conv2\.…, "
                                             r"deconv8\.…, decoder_output\.…\), but an encoder is expected here"):
        load_taskonomy_encoder("normal", tmp_path / "b")
    _link(zoo["decoder"], tmp_path / "c", "class_object_decoder.pth")
    with pytest.raises(UserInputError, match=r"looks like a decoder checkpoint .* but a classification-head \(MLP\) "
                                             r"decoder"):
        load_taskonomy_decoder("class_object", tmp_path / "c")


@pytest.mark.parametrize("task", ENCODER_ONLY_TASKS)
def test_no_decoder_for_encoder_only_tasks(zoo: dict[str, Path], task: str) -> None:
    with pytest.raises(UserInputError, match=rf"visualpriors released no decoder for '{task}' \(only its encoder\)"):
        load_taskonomy_decoder(task, zoo["hashed"])


def test_missing_decoder_of_encoder_only_task_says_so(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"expected a file named 'room_layout_decoder\.pth'\. visualpriors "
                                             r"released no decoder for room_layout"):
        find_checkpoint(tmp_path, "layout", "decoder")
