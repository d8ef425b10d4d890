"""Feature extraction sharded across ranks under ``torchrun``: the same cache, byte for byte, as one process.

Two processes with gloo on the CPU run the library and the real command line (``python -m torch.distributed.run ...
-m rsa_toolkit``) on 33 frames of the embedded mini zoo; the reference is the same call in this process, on one
thread like each rank. Exact equality (np.array_equal, and equal bytes) holds, with no tolerance, because shards are
whole batches (every batch holds the same images as in one process) and both sides run one thread: the same kernels
summing in the same order.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsa_toolkit.cli.main import main
from rsa_toolkit.features.extract import zoo_features
from rsa_toolkit.features.shards import concatenate_npy, part_path, shard_rows, write_npy_header
from rsa_toolkit.zoo.mini.embedded import MINI_PREPROCESSING, mini_probe, mini_zoo
from rsa_toolkit.images.probe import probe_from_folder

N_FRAMES = 33  # odd: with --batch-size 4 the 9 batches split 5 / 4 (20 and 13 images)
TASKS = ["depth", "normal", "class_scene"]

# The library under a process group: every rank calls zoo_features for two teachers together, then for a third inside
# main_first (rank 0 alone, then the others); each rank reports the images its teachers ran on in each call and a
# digest of every array it got back, in a file of its own beside the script (report-<rank>.txt), written whole and
# renamed into place: two ranks printing to the one stdout pipe at the same moment can interleave their lines
# (with PYTHONUNBUFFERED each print argument is its own write), so the report never depends on timing.
LIBRARY_SCRIPT = """
import dataclasses, hashlib, os, sys
import torch
from rsa_toolkit import distributed
from rsa_toolkit.features.extract import zoo_features
from rsa_toolkit.zoo.mini.embedded import mini_zoo
from rsa_toolkit.images.probe import probe_from_folder

def counted(teacher, seen):
    def run(model, x, layers):
        seen.append(len(x))
        return teacher.run(model, x, layers)
    return dataclasses.replace(teacher, run=run)

assert distributed.init_from_env(torch.device("cpu"))
probe = probe_from_folder(sys.argv[1])[0]
seen, seen_first = [], []
teachers = [counted(t, seen) for t in mini_zoo(sys.argv[3:])]
features = zoo_features(teachers, probe, batch_size=4, cache_dir=sys.argv[2])
with distributed.main_first():
    zoo_features([counted(t, seen_first) for t in mini_zoo(["class_scene"])], probe, batch_size=4,
                 cache_dir=sys.argv[2])
report = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"report-{distributed.rank()}.txt")
with open(report + ".tmp", "w") as fh:
    print(distributed.rank(), sum(seen), sum(seen_first),
          *(hashlib.sha256(a.tobytes()).hexdigest() for a in features.arrays), file=fh)
os.replace(report + ".tmp", report)
distributed.shutdown()
"""


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("frames")
    probe = mini_probe(N_FRAMES)
    for image_id, frame in zip(probe.ids, probe.frames):
        Image.fromarray(frame).save(directory / f"{image_id}.png")
    return directory


def _torchrun(*argv: object, module: bool = True) -> subprocess.CompletedProcess[str]:
    """``torchrun`` with 2 CPU processes of ``python -m rsa_toolkit ARGV`` (or of the script ``ARGV``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               *(["-m", "rsa_toolkit"] if module else []), *map(str, argv)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _zoo_args(frames_dir: Path, cache: Path, *extra: object) -> list[str]:
    return [str(a) for a in ("--zoo", "mini", "--tasks", *TASKS, "--images", frames_dir, "--cache-dir", cache, *extra)]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_same_tree(got: Path, expected: Path) -> None:
    """The same file names in the same layout, every file byte for byte (features and their sidecars alike)."""
    got_files, expected_files = _files(got), _files(expected)
    assert sorted(got_files) == sorted(expected_files)
    for name, content in expected_files.items():
        if name.endswith(".npy"):  # the readable check first: equal features, then equal files
            assert np.array_equal(np.load(got / name), np.load(expected / name)), name
        assert got_files[name] == content, name


# --- through torchrun -----------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.distributed
def test_ranks_share_the_extraction_in_step_and_take_turns_in_main_first(frames_dir: Path, tmp_path: Path,
                                                                      one_torch_thread: None) -> None:
    (tmp_path / "extract.py").write_text(LIBRARY_SCRIPT)
    _torchrun(tmp_path / "extract.py", frames_dir, tmp_path / "cache2", "depth", "normal", module=False)
    reports = sorted(line.split() for rank in (0, 1)
                     for line in (tmp_path / f"report-{rank}.txt").read_text().splitlines())
    # in step: 5 and 4 batches per teacher; in main_first: rank 0 computes all 33, rank 1 reads the cache
    assert [r[:3] for r in reports] == [["0", str(2 * 20), "33"], ["1", str(2 * 13), "0"]]
    probe = probe_from_folder(frames_dir)[0]
    single = zoo_features(mini_zoo(["depth", "normal"]), probe, batch_size=4, cache_dir=tmp_path / "cache1")
    assert reports[0][3:] == reports[1][3:] == [hashlib.sha256(a.tobytes()).hexdigest() for a in single.arrays]
    zoo_features(mini_zoo(["class_scene"]), probe, batch_size=4, cache_dir=tmp_path / "cache1")
    _assert_same_tree(tmp_path / "cache2", tmp_path / "cache1")


@pytest.mark.slow
@pytest.mark.distributed
def test_torchrun_features_write_the_single_process_cache_and_directory(frames_dir: Path, tmp_path: Path,
                                                                        one_torch_thread: None,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    layers = ["--layers", "encoder", "encoder.block2", "--batch-size", 4]
    ran = _torchrun("features", *_zoo_args(frames_dir, tmp_path / "cache2", *layers), "--out", tmp_path / "feats2")
    assert main(["features", *_zoo_args(frames_dir, tmp_path / "cache1", *layers), "--out",
                 str(tmp_path / "feats1")]) == 0
    _assert_same_tree(tmp_path / "cache2", tmp_path / "cache1")
    _assert_same_tree(tmp_path / "feats2", tmp_path / "feats1")
    assert len(_files(tmp_path / "cache1")) == 2 * 3 * 2  # (features + sidecar) x teachers x layers; no parts left
    # rank 0 printed what one process prints; rank 1 stayed quiet
    assert ran.stdout.splitlines() == [f"wrote 3 teachers x 33 images x 2 layers to {tmp_path / 'feats2'}"]
    assert capsys.readouterr().out == f"wrote 3 teachers x 33 images x 2 layers to {tmp_path / 'feats1'}\n"
    assert ran.stderr.count("next: rsa-toolkit matrix") == 1


@pytest.mark.slow
@pytest.mark.distributed
def test_torchrun_matrix_with_a_rank_without_images_and_a_warm_cache(frames_dir: Path, tmp_path: Path,
                                                                      one_torch_thread: None,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # one batch of 64 for 33 images: rank 1's shard is empty; depth is already cached, normal and class_scene not
    warm = ["--zoo", "mini", "--tasks", "depth", "--images", str(frames_dir), "--batch-size", "64", "-q"]
    assert main(["features", *warm, "--cache-dir", str(tmp_path / "cache2"), "--out", str(tmp_path / "d")]) == 0
    ran = _torchrun("matrix", *_zoo_args(frames_dir, tmp_path / "cache2", "--batch-size", 64),
                    "--out", tmp_path / "sim2.npz")
    assert main(["matrix", *_zoo_args(frames_dir, tmp_path / "cache1", "--batch-size", 64),
                 "--out", str(tmp_path / "sim1.npz")]) == 0
    _assert_same_tree(tmp_path / "cache2", tmp_path / "cache1")
    with np.load(tmp_path / "sim2.npz") as got, np.load(tmp_path / "sim1.npz") as expected:
        np.testing.assert_array_equal(got["similarity"], expected["similarity"])
    assert ran.stdout.count("3 teachers x 33 images") == 1 and "3 teachers x 33 images" in capsys.readouterr().out


# --- the pure parts -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 5, 33, 64])
@pytest.mark.parametrize("batch_size", [1, 4, 64])
@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_shard_rows_are_whole_batches_covering_the_probe_in_rank_order(n: int, batch_size: int, parts: int) -> None:
    shards = [shard_rows(n, batch_size, parts, index) for index in range(parts)]
    assert shards[0][0] == 0 and shards[-1][1] == n
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(shards, shards[1:]))
    assert all(start % batch_size == 0 or start == n for start, _ in shards)
    batches = [-(-(stop - start) // batch_size) for start, stop in shards]  # the last one may be partial
    assert min(batches) >= 0 and max(batches) - min(batches) <= 1


def test_concatenate_npy_is_np_save_of_the_whole_array(tmp_path: Path) -> None:
    whole = np.random.default_rng(0).standard_normal((11, 3, 2)).astype(np.float32)
    parts = []
    for index, (start, stop) in enumerate([(0, 5), (5, 9), (9, 11)]):
        parts.append(tmp_path / f"part{index}.npy")
        np.save(parts[-1], whole[start:stop])
    concatenate_npy(parts, tmp_path / "joined.npy")
    np.save(tmp_path / "whole.npy", whole)
    assert (tmp_path / "joined.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()
    concatenate_npy(parts[::-1], tmp_path / "reversed.npy")  # rows follow the order of the parts given
    np.testing.assert_array_equal(np.load(tmp_path / "reversed.npy"),
                                  np.concatenate([whole[9:], whole[5:9], whole[:5]]))


def test_write_npy_header_then_rows_is_a_npy_file(tmp_path: Path) -> None:
    rows = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    with (tmp_path / "streamed.npy").open("wb") as fh:
        write_npy_header(fh, rows.shape)
        fh.write(rows[:1].tobytes())
        fh.write(rows[1:].tobytes())
    np.save(tmp_path / "saved.npy", rows)
    assert (tmp_path / "streamed.npy").read_bytes() == (tmp_path / "saved.npy").read_bytes()


@pytest.mark.parametrize("second", [np.zeros((2, 3, 3), np.float32), np.zeros((2, 3, 2), np.float64)])
def test_concatenate_npy_rejects_parts_that_do_not_continue(tmp_path: Path, second: np.ndarray) -> None:
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 2), np.float32))
    np.save(tmp_path / "b.npy", second)
    with pytest.raises(ValueError, match=r"b\.npy: a part of shape \(2, 3, .\) .* does not continue"):
        concatenate_npy([tmp_path / "a.npy", tmp_path / "b.npy"], tmp_path / "joined.npy")


def test_part_files_are_hidden_beside_the_entry() -> None:
    entry = Path("cache/features/ab/abcdef.npy")
    assert part_path(entry, 1) == Path("cache/features/ab/.abcdef.part1.npy")


def test_probe_batches_of_a_slice_are_the_batches_of_the_whole() -> None:
    probe = mini_probe(11)
    whole = dict((tuple(idx), batch) for idx, batch in probe.batches(4, MINI_PREPROCESSING))
    sliced = list(probe.batches(4, MINI_PREPROCESSING, start=4, stop=11))
    assert [idx for idx, _ in sliced] == [[4, 5, 6, 7], [8, 9, 10]]
    assert all(np.array_equal(batch, whole[tuple(idx)]) for idx, batch in sliced)
