"""Faults around the feature cache and the outputs' folders: one line naming the place, nothing half-written, and no
debris from killed runs left for good (issue 17)."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsa_toolkit.cli.main import main
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features import extract
from rsa_toolkit.features.store import load_features_dir
from rsa_toolkit.files import STALE_AFTER_S, remove_stale_temporaries


def _old(path: Path) -> Path:
    path.write_bytes(b"partial")
    then = time.time() - STALE_AFTER_S - 60
    os.utime(path, (then, then))
    return path


def test_stale_temporaries_of_an_output_are_removed_and_fresh_ones_kept(tmp_path: Path) -> None:
    stale = _old(tmp_path / ".sim.abc12345.png")
    fresh = tmp_path / ".sim.def67890.png"
    fresh.write_bytes(b"a writer still at work")
    other = _old(tmp_path / ".other.abc12345.png")  # not this output's
    assert remove_stale_temporaries(tmp_path / "sim.png") == [stale]
    assert fresh.exists() and other.exists() and not stale.exists()


def test_matrix_clears_what_a_killed_run_left_in_its_out_folder(tmp_path: Path, capsys) -> None:
    assert main(["demo-features", str(tmp_path / "demo"), "--quiet"]) == 0
    out = tmp_path / "out"
    out.mkdir()
    debris = [_old(out / ".sim.k1lled00.png"), _old(out / ".sim.k1lled00.csv"), _old(out / ".sim.k1lled00.npz")]
    assert main(["matrix", "--features", str(tmp_path / "demo"), "--out", str(out / "sim.png"), "--quiet"]) == 0
    assert not any(p.exists() for p in debris)
    assert sorted(p.name for p in out.iterdir()) == ["sim.csv", "sim.html", "sim.json", "sim.npz", "sim.png"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_forbidden_features_out_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch, code,
                                                                         capsys) -> None:
    assert main(["demo-features", str(tmp_path / "demo"), "--quiet"]) == 0
    sets = [load_features_dir(tmp_path / "demo")]

    def failing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("shutil.copyfile", failing)  # every file copied into the staging directory
    target = tmp_path / "feats"
    with pytest.raises(UserInputError, match=rf"cannot write '{target}': {os.strerror(code)}"):
        extract.save_features_dir(sets, target)
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["demo"]  # no staging directory left


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_full_or_forbidden_cache_is_one_line_naming_the_cache(tmp_path: Path, monkeypatch, code) -> None:
    from test_cache import _teacher  # tests/features is on the path under pytest

    from rsa_toolkit.images.probe import probe_from_folder

    rng = np.random.default_rng(0)
    images = tmp_path / "probe"
    images.mkdir()
    for i in range(4):
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(images / f"img{i}.png")

    def failing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(extract, "_write_rows", failing)
    cache = tmp_path / "cache"
    with pytest.raises(UserInputError, match=rf"cannot write '{cache}.*': {os.strerror(code)}.*--cache-dir"):
        extract.extract_features(_teacher(), probe_from_folder(images)[0], cache_dir=cache)
    assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix == ".npy"]  # no entry, whole or partial


def test_a_text_file_named_npy_says_so_without_unpickling_advice(tmp_path: Path) -> None:
    folder = tmp_path / "feats"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((4, 3)))
    (folder / "b.npy").write_text("not an array\n")
    with pytest.raises(UserInputError) as info:
        load_features_dir(folder).as_dict()
    message = str(info.value)
    assert "b.npy" in message and "allow_pickle" not in message and "pickle.load" not in message
