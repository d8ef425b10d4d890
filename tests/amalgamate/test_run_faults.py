"""Run state that always resumes, and faults that are one line (issue 17): partial log lines, damaged JSON files,
unreadable checkpoints, stale temporary files, Ctrl-C, full and read-only disks, and a corrupt knowledge cache.

Every run is the tiny zoo (tests/conftest.py) at 4 steps of batch 4, checkpointed every 2 steps. Each fault test
checks the exit code, the message, and that nothing half-written remains (no temporary files, no files outside the
run directory, the previous state intact)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

import amalgamate.run_files
import rsa_toolkit.features.extract
from amalgamate.cli import main
from amalgamate.run_dir import RunDir
from amalgamate.run_files import RunWarning
from amalgamate.training.knowledge import teacher_definition
from amalgamate.training.run import TrainingInterrupted, train
from amalgamate.training.trainer import Trainer
from amalgamate.zoo import mini_source
from rsa_toolkit.errors import FeatureCacheWarning, UserInputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 4


@pytest.fixture(scope="module")
def base(tiny_zoo, tiny_shards, tmp_path_factory):
    """The settings of every run here (the zoo and the shared cache named, so no environment is needed)."""
    cache = tmp_path_factory.mktemp("faults-cache")
    return {"targets": ["depth", "normal"], "aux": "class_scene", "steps": STEPS, "batch_size": 4,
            "train_shard": str(tiny_shards[0]), "eval_shard": str(tiny_shards[1]), "eval_frames": 4,
            "checkpoint_every": 2, "zoo_dir": str(tiny_zoo), "cache_dir": str(cache), "threads": 1}


@pytest.fixture(scope="module")
def whole(base, tmp_path_factory):
    """An uninterrupted, finished run: the reference of every resumed one."""
    run = tmp_path_factory.mktemp("whole") / "run"
    train(run, base)
    return run


@pytest.fixture
def stopped(base, tmp_path):
    """A run stopped after step 3 (checkpoints at steps 2 and 3: checkpoint.prev.pt and checkpoint.pt)."""
    run = tmp_path / "run"
    train(run, base, stop_after=3)
    return run


@pytest.fixture
def finished(whole, tmp_path):
    """A copy of the finished run, to damage."""
    run = tmp_path / "finished"
    shutil.copytree(whole, run)
    return run


def _weights(path: Path) -> dict[str, torch.Tensor]:
    saved = torch.load(path, weights_only=True)
    return saved.get("state_dict", saved.get("model"))


def _same_weights(a: Path, b: Path) -> bool:
    x, y = _weights(a), _weights(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _temps(*dirs: Path) -> list[Path]:
    """Temporary files of atomic writes (``.name.random.ext``) anywhere under ``dirs``."""
    return [p for d in dirs if d.exists() for p in d.rglob(".*") if p.is_file()]


def _one_line(err: str, *parts: str) -> str:
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("amalgamate: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in errors[0], (part, errors[0])
    return errors[0]


def _fail_writes_to(monkeypatch, target: str, code: int) -> None:
    """Every run-directory write helper call for ``target`` (a file name) fails with OSError ``code``."""
    original = amalgamate.run_files.fsync_write
    stem, suffix = os.path.splitext(target)

    def failing(path, data):
        name = Path(path).name
        if name.startswith(f".{stem}.") and name.endswith(suffix):
            raise OSError(code, os.strerror(code))
        return original(path, data)

    monkeypatch.setattr(amalgamate.run_files, "fsync_write", failing)


# --- the log: whole lines -------------------------------------------------------------------------------------------

def test_partial_last_log_line_is_skipped_cut_off_and_the_run_continues(stopped, whole, capsys):
    with open(stopped / "log.jsonl", "ab") as fh:  # killed while writing step 4's line
        fh.write(b'{"losses": {"depth_zbuffer": 0.1')
    assert main(["train", "--resume", str(stopped)]) == 0
    captured = capsys.readouterr()
    assert f"amalgamate: warning: '{stopped / 'log.jsonl'}' line 4 is partial" in captured.err
    assert "resuming from step 3" in captured.out
    assert _log(stopped) == _log(whole)  # steps 1..4 once each, whole lines
    assert _same_weights(stopped / "student.pt", whole / "student.pt")


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "No space left on device; free space or choose another "
                                                         "--out"),
                                          (errno.EROFS, "Read-only file system; choose another --out")])
def test_a_failed_log_write_leaves_no_partial_line(base, tmp_path, monkeypatch, capsys, code, reason):
    original = amalgamate.run_files._append
    calls = {"n": 0}

    def half_then_fail(fd, data):  # the disk fills (or turns read-only) in the middle of step 3's line
        calls["n"] += 1
        if calls["n"] == 3:
            os.write(fd, data[: len(data) // 2])
            raise OSError(code, os.strerror(code))
        return original(fd, data)

    monkeypatch.setattr(amalgamate.run_files, "_append", half_then_fail)
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *_cli(base)]) == 2
    _one_line(capsys.readouterr().err, f"cannot write '{run / 'log.jsonl'}': {reason}.")
    assert (run / "log.jsonl").read_bytes().endswith(b"\n") and [e["step"] for e in _log(run)] == [1, 2]
    assert not _temps(tmp_path)


def test_a_damaged_line_before_the_last_is_one_error(stopped, capsys):
    lines = (stopped / "log.jsonl").read_text().splitlines(keepends=True)
    (stopped / "log.jsonl").write_text(lines[0] + "garbage\n" + "".join(lines[2:]))
    assert main(["train", "--resume", str(stopped)]) == 2
    _one_line(capsys.readouterr().err, f"'{stopped / 'log.jsonl'}' line 2 is damaged", "--overwrite")
    assert torch.load(stopped / "checkpoint.pt", weights_only=True)["step"] == 3  # untouched


# --- damaged JSON files -----------------------------------------------------------------------------------------------

def _cli(base: dict) -> list[str]:
    return ["--targets", "depth", "normal", "--aux", "class_scene", "--steps", str(STEPS), "--batch-size", "4",
            "--train-shard", base["train_shard"], "--checkpoint-every", "2", "--zoo-dir", base["zoo_dir"],
            "--cache-dir", base["cache_dir"], "--threads", "1", "-q"]


@pytest.mark.parametrize("name, damage", [("config.json", b'{"targets": ["depth_zb'), ("aux.json", b"[1, 2]")])
@pytest.mark.parametrize("command", ["resume", "eval", "report"])
def test_damaged_config_or_aux_is_one_line_and_exit_2(stopped, tmp_path, capsys, name, damage, command):
    (stopped / name).write_bytes(damage)
    before = sorted(p.name for p in stopped.iterdir())
    checkpoint = (stopped / "checkpoint.pt").read_bytes()
    argv = {"resume": ["train", "--resume", str(stopped)], "eval": ["eval", str(stopped)],
            "report": ["report", str(stopped), "--out", str(tmp_path / "report")]}[command]
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err, f"'{stopped / name}' is damaged")
    assert ("--overwrite" in line) and ("settings" in line if name == "config.json" else "auxiliary" in line)
    assert sorted(p.name for p in stopped.iterdir()) == before and not (tmp_path / "report").exists()
    assert (stopped / "checkpoint.pt").read_bytes() == checkpoint and not _temps(tmp_path)


def test_damaged_metrics_json_stops_the_report(finished, tmp_path, capsys):
    assert main(["eval", str(finished), "-q"]) == 0
    (finished / "metrics.json").write_text('{"run": "x"}')  # JSON, but not an evaluation
    assert main(["report", str(finished), "--out", str(tmp_path / "report")]) == 2
    _one_line(capsys.readouterr().err, f"'{finished / 'metrics.json'}' is damaged",
              f"rewrite it with amalgamate eval {finished}")
    assert not (tmp_path / "report").exists()


def test_damaged_run_json_stops_the_evaluation(finished, capsys):
    (finished / "run.json").write_bytes(b"\x00\x00\x00")
    assert main(["eval", str(finished)]) == 2
    _one_line(capsys.readouterr().err, f"'{finished / 'run.json'}' is damaged",
              f"amalgamate train --resume {finished}")
    assert not (finished / "metrics.json").exists()


# --- checkpoints: the last two ----------------------------------------------------------------------------------------

def test_the_last_two_checkpoints_are_kept(stopped):
    assert torch.load(stopped / "checkpoint.pt", weights_only=True)["step"] == 3
    assert torch.load(stopped / "checkpoint.prev.pt", weights_only=True)["step"] == 2
    assert not _temps(stopped)


def test_truncated_newest_checkpoint_falls_back_to_the_older(stopped, whole, capsys):
    newest = stopped / "checkpoint.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])
    assert main(["train", "--resume", str(stopped), "--stop-after", "3"]) == 0  # steps 3 again
    captured = capsys.readouterr()
    assert f"amalgamate: warning: '{newest}'" in captured.err and "resuming from the older" in captured.err
    assert torch.load(stopped / "checkpoint.prev.pt", weights_only=True)["step"] == 2  # kept as the older one
    assert torch.load(newest, weights_only=True)["step"] == 3
    assert main(["train", "--resume", str(stopped)]) == 0
    assert f"'{stopped / 'checkpoint.prev.pt'}' (step 2)" in captured.err and "resuming from step 2" in captured.out
    assert _same_weights(stopped / "student.pt", whole / "student.pt") and _log(stopped) == _log(whole)


def test_both_checkpoints_unreadable_is_one_line(stopped, capsys):
    (stopped / "checkpoint.pt").write_bytes(b"")
    (stopped / "checkpoint.prev.pt").write_bytes(b"not a checkpoint at all")
    log = (stopped / "log.jsonl").read_bytes()
    assert main(["train", "--resume", str(stopped)]) == 2
    _one_line(capsys.readouterr().err, "no checkpoint of", f"'{stopped / 'checkpoint.pt'}'",
              f"'{stopped / 'checkpoint.prev.pt'}'", "--overwrite")
    assert (stopped / "log.jsonl").read_bytes() == log and not (stopped / "student.pt").exists()


def test_eval_of_an_unfinished_run_uses_the_older_checkpoint_when_the_newest_is_damaged(stopped):
    (stopped / "checkpoint.pt").write_bytes(b"garbage")
    from amalgamate.evaluation.evaluate import load_student

    with pytest.warns(RunWarning, match="resuming from the older .*checkpoint.prev.pt' \\(step 2\\)"):
        _, origin = load_student(RunDir(stopped))
    assert origin["step"] == 2


# --- stale temporary files --------------------------------------------------------------------------------------------

def test_stale_checkpoint_temp_does_not_block_overwrite_and_is_removed(finished, base, capsys):
    stale = finished / ".checkpoint.k1ll3d.pt"
    stale.write_bytes(b"half a checkpoint")
    assert main(["train", "--out", str(finished), *_cli(base), "--steps", "2", "--overwrite"]) == 0
    assert "is not empty" not in capsys.readouterr().err
    assert not stale.exists() and not _temps(finished)
    assert torch.load(finished / "checkpoint.pt", weights_only=True)["step"] == 2


def test_a_directory_holding_only_a_temp_file_takes_a_new_run(base, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".config.x1.json").write_text("{")
    assert train(run, {**base, "steps": 1}).finished
    assert not _temps(run)


def test_stale_temps_are_removed_on_resume(stopped, whole):
    stale = [stopped / ".checkpoint.abc.pt", stopped / ".log.q9.jsonl"]
    for path in stale:
        path.write_bytes(b"x")
    train(stopped, None, resume=True)
    assert not any(p.exists() for p in stale) and _same_weights(stopped / "student.pt", whole / "student.pt")


# --- Ctrl-C -----------------------------------------------------------------------------------------------------------

def test_keyboard_interrupt_checkpoints_the_last_step_and_resume_finishes_the_same(base, whole, tmp_path,
                                                                                    monkeypatch, capsys):
    original = Trainer.train_step

    def interrupted(self):
        if self.step == 3:  # Ctrl-C before step 4 began
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *_cli(base)]) == 130
    _, err = capsys.readouterr()
    assert err.strip() == f"amalgamate: interrupted after step 3; checkpoint written. Continue with: amalgamate " \
                          f"train --resume {run}"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 3 and not _temps(run)
    monkeypatch.setattr(Trainer, "train_step", original)
    assert main(["train", "--resume", str(run)]) == 0
    assert "resuming from step 3" in capsys.readouterr().out
    assert _same_weights(run / "student.pt", whole / "student.pt") and _log(run) == _log(whole)


def test_ctrl_c_signal_mid_step_lets_the_step_finish(base, whole, tmp_path, monkeypatch):
    original = Trainer.train_step

    def signalled(self):
        if self.step == 0:
            signal.raise_signal(signal.SIGINT)  # delivered in the middle of step 1
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", signalled)
    run = tmp_path / "run"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own (a background job ignores it)
    try:
        with pytest.raises(TrainingInterrupted, match="interrupted after step 1; checkpoint written") as info:
            train(run, base)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, previous)
    assert info.value.step == 1 and torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 1
    monkeypatch.setattr(Trainer, "train_step", original)
    train(run, None, resume=True)
    assert _same_weights(run / "student.pt", whole / "student.pt")


def test_interrupt_inside_a_step_keeps_the_last_checkpoint(base, whole, tmp_path, monkeypatch):
    import amalgamate.training.trainer as trainer_module

    original = trainer_module.image_batch
    calls = {"n": 0}

    def interrupted(*args, **kwargs):  # step 4 has drawn its batch (the data cursor moved) when Ctrl-C comes
        calls["n"] += 1
        if calls["n"] == 1 + 4:  # check_shapes, then steps 1-3, then step 4
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "image_batch", interrupted)
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match="interrupted during step 4; the last checkpoint is step 2. "
                                                  f"Continue with: amalgamate train --resume {run}"):
        train(run, base)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2  # no half-stepped state saved
    monkeypatch.setattr(trainer_module, "image_batch", original)
    train(run, None, resume=True)
    assert _same_weights(run / "student.pt", whole / "student.pt") and _log(run) == _log(whole)


# --- full and read-only disks -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "No space left on device; free space or choose another "
                                                         "--out"),
                                          (errno.EROFS, "Read-only file system; choose another --out")])
@pytest.mark.parametrize("target", ["config.json", "aux.json", "checkpoint.pt", "run.json"])
def test_train_write_faults_are_one_line(base, tmp_path, monkeypatch, capsys, code, reason, target):
    _fail_writes_to(monkeypatch, target, code)
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *_cli(base)]) == 2
    _one_line(capsys.readouterr().err, f"cannot write '{run / target}': {reason}.")
    assert not _temps(tmp_path) and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert not (run / target).exists() and not (run / "student.pt").exists()
    if target == "checkpoint.pt":  # the log stops at the step whose checkpoint failed: --resume starts over cleanly
        assert [e["step"] for e in _log(run)] == [1, 2]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_eval_write_faults_leave_no_partial_metrics(finished, monkeypatch, capsys, code):
    _fail_writes_to(monkeypatch, "metrics.json", code)
    assert main(["eval", str(finished)]) == 2
    _one_line(capsys.readouterr().err, f"cannot write '{finished / 'metrics.json'}': {os.strerror(code)}")
    # written together or not at all: no metrics.csv or examples.npz from this evaluation either
    assert not any((finished / n).exists() for n in ("metrics.json", "metrics.csv", "examples.npz"))
    assert not _temps(finished)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_report_write_faults_are_one_line(finished, tmp_path, monkeypatch, capsys, code):
    assert main(["eval", str(finished), "-q"]) == 0
    capsys.readouterr()
    _fail_writes_to(monkeypatch, "table2_teachers.md", code)
    out = tmp_path / "report"
    assert main(["report", str(finished), "--out", str(out)]) == 2
    _one_line(capsys.readouterr().err, f"cannot write '{out / 'table2_teachers.md'}': {os.strerror(code)}",
              "choose another --out")
    assert not (out / "table2_teachers.md").exists() and not _temps(tmp_path)


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "No space left on device; free space or choose another "
                                                         "--cache-dir"),
                                          (errno.EDQUOT, "Disk quota exceeded; free space or choose another "
                                                         "--cache-dir"),
                                          (errno.EROFS, "Read-only file system; choose another --cache-dir")])
def test_knowledge_cache_write_faults_are_one_line(base, tmp_path, monkeypatch, capsys, code, reason):
    def full(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(rsa_toolkit.features.extract, "write_npy_header", full)
    cache, run = tmp_path / "cache", tmp_path / "run"
    assert main(["train", "--out", str(run), *_cli(base), "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    _one_line(err, f"cannot write '{cache / 'features'}")  # the entry's own folder in the cache
    assert f"': {reason}." in err
    assert not run.exists() and not _temps(cache)
    assert not list(cache.rglob("*.npy")) and sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_read_only_out_is_found_before_any_long_work(base, stopped, finished, tmp_path, monkeypatch, capsys):
    import amalgamate.evaluation.evaluate
    import amalgamate.training.run as run_module

    work = []
    monkeypatch.setattr(run_module, "build_knowledge", lambda *a, **k: work.append("knowledge"))
    monkeypatch.setattr(run_module, "rank_zoo", lambda *a, **k: work.append("ranking"))
    monkeypatch.setattr(amalgamate.evaluation.evaluate, "setup_run", lambda *a, **k: work.append("evaluation"))
    read_only = {tmp_path, stopped, tmp_path / "ro"}
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) not in read_only and
                        real_access(path, mode, **kw))
    new = tmp_path / "new"
    assert main(["train", "--out", str(new), *[a for a in _cli(base) if a not in ("--aux", "class_scene")],
                 "--auto-aux"]) == 2
    _one_line(capsys.readouterr().err, f"--out '{new}': cannot write in '{tmp_path}' (read-only or no permission)")
    assert main(["train", "--resume", str(stopped)]) == 2
    _one_line(capsys.readouterr().err, f"--out '{stopped}': cannot write in '{stopped}'")
    (tmp_path / "ro").mkdir()
    assert main(["report", str(finished), "--out", str(tmp_path / "ro" / "report")]) == 2
    _one_line(capsys.readouterr().err, f"cannot write in '{tmp_path / 'ro'}'", "choose another --out")
    assert work == [] and not new.exists() and not (tmp_path / "ro" / "report").exists()


# --- the knowledge cache ----------------------------------------------------------------------------------------------

def _entry(run: Path, cache: Path, teacher: str, layer: str) -> Path:
    record = json.loads((run / "knowledge.json").read_text())
    key = next(t for t in record["teachers"] if t["name"] == teacher)["cache_keys"][layer]
    return cache / "features" / key[:2] / f"{key}.npy"


@pytest.mark.parametrize("damage", ["same-size overwrite", "truncated", "zero bytes", "garbage"])
def test_corrupt_knowledge_cache_entries_are_recomputed(base, tmp_path, damage):
    cache = tmp_path / "cache"
    settings = {**base, "cache_dir": str(cache), "steps": 2}
    clean = train(tmp_path / "clean", settings)
    assert "depth_zbuffer" in clean.computed_teachers
    entry = _entry(tmp_path / "clean", cache, "depth_zbuffer", "decoder")
    good = entry.read_bytes()
    data = {"same-size overwrite": good[:-64] + bytes(64), "truncated": good[: len(good) // 2], "zero bytes": b"",
            "garbage": os.urandom(977)}[damage]
    entry.write_bytes(data)
    with pytest.warns(FeatureCacheWarning, match=f"feature cache entry '{entry}' \\(teacher 'depth_zbuffer', layer "
                                                  "'decoder'\\) cannot be used"):
        again = train(tmp_path / "again", settings)
    assert again.computed_teachers == ["depth_zbuffer"]  # only the damaged teacher ran
    assert entry.read_bytes() == good  # recomputed exactly
    assert _same_weights(tmp_path / "clean" / "student.pt", tmp_path / "again" / "student.pt")
    assert _log(tmp_path / "clean") == _log(tmp_path / "again") and not _temps(cache)


def test_knowledge_cache_entries_have_fingerprints_and_definition_keys(base, tmp_path, tiny_zoo):
    cache = tmp_path / "cache"
    train(tmp_path / "run", {**base, "cache_dir": str(cache), "steps": 1})
    entry = _entry(tmp_path / "run", cache, "normal", "decoder")
    check = json.loads(entry.with_suffix(".json").read_text())["entry"]  # the feature cache's sidecar
    assert check["bytes"] == entry.stat().st_size and check["dtype"] == "float32" and len(check["blake2b"]) == 64
    assert check["shape"][0] == 12  # the tiny train shard
    teacher = mini_source(tiny_zoo).target("normal").teacher
    import dataclasses

    renamed_net = dataclasses.replace(teacher, layers=(*teacher.layers, "extra"))  # same name and weights
    assert teacher_definition(renamed_net) != teacher_definition(teacher)
    record = json.loads((tmp_path / "run" / "knowledge.json").read_text())
    normal = next(t for t in record["teachers"] if t["name"] == "normal")
    assert normal["definition_sha256"] == teacher_definition(teacher)
    assert normal["cache_keys"]["decoder"] != rsa_toolkit.features.extract.cache_key(teacher, "decoder",
                                                                                     _train_images(base))


def _train_images(base):
    from amalgamate.training.images import shard_frames

    return shard_frames(base["train_shard"])


def test_library_errors_are_user_input_errors(stopped):
    (stopped / "config.json").write_text("{")
    with pytest.raises(UserInputError, match="config.json' is damaged \\(not JSON"):
        train(stopped, None, resume=True)


@pytest.mark.parametrize("command", ["resume", "eval"])
def test_config_json_with_impossible_settings_is_one_line(stopped, capsys, command):
    config = json.loads((stopped / "config.json").read_text())
    (stopped / "config.json").write_text(json.dumps({**config, "targets": 5}))  # JSON, but no run has these settings
    argv = ["train", "--resume", str(stopped)] if command == "resume" else ["eval", str(stopped)]
    assert main(argv) == 2
    _one_line(capsys.readouterr().err, f"'{stopped / 'config.json'}' is damaged", "--overwrite")
    assert not (stopped / "metrics.json").exists() and not (stopped / "student.pt").exists()


def test_an_os_fault_outside_the_writers_is_still_one_line(monkeypatch, capsys):
    import amalgamate.cli

    def full(args):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), "/somewhere/file.txt")

    monkeypatch.setattr(amalgamate.cli, "run_eval", full)
    parser = amalgamate.cli.build_parser()
    monkeypatch.setattr(amalgamate.cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["eval"].set_defaults(run=full)
    assert main(["eval", "x"]) == 2
    assert capsys.readouterr().err.strip() == ("amalgamate: error: cannot write '/somewhere/file.txt': Read-only file "
                                               "system; choose another output location.")
