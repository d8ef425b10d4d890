"""Distributed training (issue 8): ``torchrun`` with 2 gloo processes on the CPU takes the steps one process takes on
the same global batch, and a run killed under DDP resumes under DDP.

Tolerance. The two runs do the same arithmetic in a different order: each rank sums half the batch, the means are
averaged by an all-reduce, BatchNorm's statistics are all-reduced sums, and DDP averages gradients bucket by bucket.
In float32 this reordering is not a small perturbation here: the first Adam step is ~``lr * sign(g)``, and a few
ill-conditioned entries (BatchNorm channels of tiny variance) move by 3% after one step (measured), as much as a real
bug would (the BatchNorm parameters left out of the optimiser moved them by 2e-3). So the comparison runs in float64
(``precision = "float64"``), where the measured differences after 4 steps are 8e-12 in the parameters, 3e-13
relative in the losses and 2e-11 relative in GradNorm's gradient norms; we allow 1e-9, a hundred times that and six
orders of magnitude below one step's update (``lr`` = 1e-3).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from amalgamate.training.data_parallel import GlobalBatchNorm, average_gradients, global_batchnorm, local_share
from amalgamate.training.run import train
from rsa_toolkit.distributed import shard_bounds

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LR = 1e-3
PARAM_ATOL = 1e-9
LOSS_RTOL = 1e-9


def _env(tiny_zoo: Path, root: Path) -> dict[str, str]:
    return {**os.environ, "RSA_TOOLKIT_MINI_ZOO": str(tiny_zoo), "RSA_TOOLKIT_CACHE": str(root / "cache"),
            "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.fixture
def env(tiny_zoo, tmp_path):
    return _env(tiny_zoo, tmp_path)


@pytest.fixture(scope="module")
def soka_reference(tmp_path_factory, tiny_zoo, tiny_shards) -> Path:
    """The one-process SOKA run (the default method) that the soka DDP tests compare with, trained once for the
    module: ``one/`` its run directory, ``cache/`` the feature cache it filled with the teachers' knowledge."""
    root = tmp_path_factory.mktemp("soka-reference")
    _single(_env(tiny_zoo, root), "--out", str(root / "one"), "--config", str(_config(root, tiny_shards)))
    return root


def _one_process_soka(reference: Path, tmp_path: Path) -> Path:
    """The shared one-process SOKA run, its warm cache copied to this test's cache as if the run had been trained
    here: the DDP run then finds the teachers' knowledge cached, as when each test trained its own reference."""
    shutil.copytree(reference / "cache", tmp_path / "cache")
    return reference / "one"


def _config(tmp_path: Path, tiny_shards, **changes) -> Path:
    settings = {"targets": ["depth", "normal"], "aux": "class_scene", "steps": 4, "batch_size": 4, "lr": LR,
                "train_shard": str(tiny_shards[0]), "checkpoint_every": 2, "threads": 1, "precision": "float64",
                **changes}
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items() if v is not None]
    if settings.get("method", "soka") == "soka":  # past the KD warm-up, with GradNorm's weights moving
        lines += ["kd_warmup = 1", "[gradnorm]", "warmup = 1"]
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own session, so that a hang kills torchrun's workers too, not only torchrun."""
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _torchrun(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "-m", "amalgamate", "train", "--quiet", *args], env)
    assert done.returncode == 0 or not check, done.stderr[-3000:]
    return done


def _single(env: dict[str, str], *args: str) -> None:
    done = _run([sys.executable, "-m", "amalgamate", "train", "--quiet", *args], env)
    assert done.returncode == 0, done.stderr[-3000:]


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _assert_same_run(one: Path, two: Path) -> None:
    a = torch.load(one / "student.pt", weights_only=True)["state_dict"]
    b = torch.load(two / "student.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=PARAM_ATOL, msg=key)
        else:
            assert torch.equal(a[key], b[key]), key
    log_a, log_b = _log(one), _log(two)
    assert [e["step"] for e in log_a] == [e["step"] for e in log_b]
    for ea, eb in zip(log_a, log_b):
        for field in ("losses", "weights", "grad_norms"):
            if field in ea:
                for task in ea[field]:
                    assert eb[field][task] == pytest.approx(ea[field][task], rel=LOSS_RTOL), (field, task, ea["step"])


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("method", ["soka", "kd"])
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path, tiny_shards, env, method, request):
    config = _config(tmp_path, tiny_shards, method=method, **({} if method == "soka" else {"aux": None}))
    if method == "soka":  # the same one-process run as test_a_run_killed_under_ddp_resumes_under_ddp's
        one = _one_process_soka(request.getfixturevalue("soka_reference"), tmp_path)
    else:
        one = tmp_path / "one"
        _single(env, "--out", str(one), "--config", str(config))
    _torchrun(env, "--out", str(tmp_path / "two"), "--config", str(config))
    _assert_same_run(one, tmp_path / "two")
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["processes"] == 2 and run["finished"]
    assert not list((tmp_path / "two").glob("*.tmp*"))  # rank 0 alone wrote, atomically


@pytest.mark.slow
@pytest.mark.distributed
def test_a_run_killed_under_ddp_resumes_under_ddp(tmp_path, tiny_shards, env, soka_reference):
    config = _config(tmp_path, tiny_shards)
    one = _one_process_soka(soka_reference, tmp_path)
    _torchrun(env, "--out", str(tmp_path / "two"), "--config", str(config), "--stop-after", "2")
    assert not (tmp_path / "two" / "student.pt").exists() and len(_log(tmp_path / "two")) == 2
    _torchrun(env, "--out", str(tmp_path / "two"), "--resume")
    _assert_same_run(one, tmp_path / "two")


@pytest.mark.slow
@pytest.mark.distributed
def test_a_global_batch_that_does_not_split_evenly_is_refused(tmp_path, tiny_shards, env):
    config = _config(tmp_path, tiny_shards, batch_size=5)
    done = _torchrun(env, "--out", str(tmp_path / "odd"), "--config", str(config), check=False)
    assert done.returncode != 0  # torchrun reports its workers' exit code 2 as a failure of its own
    assert "must split evenly over the 2 processes" in done.stderr
    assert not (tmp_path / "odd").exists()


# --- the pieces, in one process ---------------------------------------------------------------------------------

def test_local_share_is_the_whole_batch_in_one_process():
    idx = np.array([3, 5, 8, 13])
    np.testing.assert_array_equal(local_share(idx), idx)
    assert [shard_bounds(10, 3, r) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]


def test_global_batchnorm_is_batchnorm_in_one_process_and_keeps_its_state():
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    plain[1].running_mean.uniform_()
    converted = global_batchnorm(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)))
    converted.load_state_dict(plain.state_dict())
    assert isinstance(converted[1], GlobalBatchNorm) and converted.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(5, 3, 8, 8)
    torch.testing.assert_close(converted(x), plain(x), rtol=0, atol=0)
    torch.testing.assert_close(converted[1].running_var, plain[1].running_var, rtol=0, atol=0)


def test_average_gradients_is_the_identity_in_one_process():
    assert not dist.is_initialized()
    g = [torch.ones(3), None, torch.full((2, 2), 2.0)]
    average_gradients(g)
    assert g[0].tolist() == [1.0, 1.0, 1.0] and g[2].sum() == 8.0


def test_single_process_training_is_unchanged_by_the_distributed_code(tmp_path, tiny_shards, env, monkeypatch):
    """A plain run never joins a process group and never wraps the student."""
    monkeypatch.setenv("RSA_TOOLKIT_MINI_ZOO", env["RSA_TOOLKIT_MINI_ZOO"])
    monkeypatch.setenv("RSA_TOOLKIT_CACHE", env["RSA_TOOLKIT_CACHE"])
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    result = train(tmp_path / "plain", {"targets": ["depth", "normal"], "aux": "class_scene", "steps": 2,
                                        "batch_size": 4, "train_shard": str(tiny_shards[0])})
    assert result.finished and not dist.is_initialized()
    assert json.loads((tmp_path / "plain" / "run.json").read_text())["processes"] == 1


def test_global_batchnorm_keeps_the_parameter_objects_an_optimiser_holds():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    before = [id(p) for p in model.parameters()] + [id(b) for b in model.buffers()]
    global_batchnorm(model)
    assert [id(p) for p in model.parameters()] + [id(b) for b in model.buffers()] == before
