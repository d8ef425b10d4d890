"""GPU benchmark (issue 19, item 4), prepared for one NVIDIA GPU (planned: H200, 16 cores, 128 GiB RAM, 64 GiB disk).
It installs and downloads nothing. Each part runs in its own process under its own time limit (a failure, an OOM or
a timeout costs that part only); results.json and gpu_benchmark.md are rewritten after every part; a table last.

* rsa_check: ``similarity_matrix`` on the device vs the numpy default, N = 2,000 x 5 teachers: max abs diff.
* rsa_20k, rsa_50k: ``similarity_matrix(features, device=..., max_memory=...)``, defaults (Spearman of 1 - Pearson
  RDMs, float64), N images x 20 teachers x 2,048 float32 features in memory (bench_rsa's construction drawn with
  torch on the device, timed apart). Timed: the call alone, after a small warm-up call; peak host RSS: VmHWM, reset
  once the features exist. At N = 50,000 an RDM has 1.25e9 entries and the doubled ranks are int64 (2M + 1 > 2^31):
  10 GB per teacher, 200 GB for 20, more than the RAM or the disk. When the defaults cannot hold every teacher, the
  run passes ``keep_rdms=False`` (the plan may then keep just the ranks in memory) and runs the most teachers that
  ``plan_memory`` fits within --max-memory (and the scratch disk) and that the N = 20,000 time, scaled by N^2,
  finishes in the time left; the results say how many and which limit applied.
* extract: images/s of ``extract_features`` (a fresh teacher: load, decoding, preprocessing, forward, writing; and
  loaded) vs a bare forward of the same batches on the device: bench_extract's random-init Taskonomy ResNet-50
  encoder, 512 PNGs of 256 x 256, batch 64, best of 2.
* amalgamate_check: the GPU training path against the CPU reference: the same tiny float64 SOKA run (mini zoo,
  64 frames, 6 steps, GradNorm, auxiliary, adapters) on the CPU and the device: max abs diff of the students'
  parameters and the logged loss weights.
* amalgamate_taskonomy, amalgamate_mini: a SOKA step (targets depth_zbuffer + normal, auxiliary segment_semantic,
  batch 32, kd_warmup=0: guidance and GradNorm in every step) with cached vs live teachers. Taskonomy-size:
  random-init encoders and decoders, 128 seeded PNGs of 256 x 256; mini: the shipped zoo, 256 rendered frames. One
  25-step run each way; a step's time is the median of steps 6-25, each timed around ``Trainer.train_step`` with
  the device synchronised, so a run's fixed costs (filling the cache, the final checkpoint) stay out.

On the GPU machine, from the repository root (about 8 minutes: 450 s for the parts; --parts NAME... reruns some):
    PYTHONPATH=. python3 benchmarks/gpu_benchmark.py --out $OUT
The smoke test on a CPU (tiny sizes, every part's code path with torch on the CPU; ~1 minute on 2 cores):
    PYTHONPATH=. python benchmarks/gpu_benchmark.py --device cpu --smoke --out /tmp/gpu_smoke
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_extract's helpers, in the parts' processes
GB, SEED = 1e9, 0
TARGETS, AUX = ("depth_zbuffer", "normal"), "segment_semantic"
# part -> (time limit in s, time kept for it while earlier parts run); in this order, the largest RSA run last
PARTS = {"rsa_check": (60, 15), "rsa_20k": (120, 30), "extract": (90, 30), "amalgamate_check": (60, 20),
         "amalgamate_taskonomy": (150, 40), "amalgamate_mini": (90, 30), "rsa_50k": (600, 60)}
FULL = {"rsa_check": (2000, 5, 2048), "rsa_20k": (20000, 20, 2048), "rsa_50k": (50000, 20, 2048),
        "extract": dict(images=512, px=256, batch=64, repeats=2), "mini": dict(frames=256, batch=32, steps=25, skip=5),
        "taskonomy": dict(images=128, px=256, batch=32, steps=25, skip=5), "check": dict(frames=64, batch=8, steps=6)}
SMOKE = {"rsa_check": (120, 3, 32), "rsa_20k": (300, 4, 64), "rsa_50k": (400, 4, 64),
         "extract": dict(images=2, px=64, batch=2, repeats=1), "mini": dict(frames=4, batch=4, steps=1, skip=0),
         "taskonomy": dict(images=1, px=64, batch=1, steps=1, skip=0), "check": dict(frames=4, batch=4, steps=2)}


# --- the parent: runs the parts, writes the results after each ------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for results.json, gpu_benchmark.md, logs")
    ap.add_argument("--device", default="cuda", help="torch device (default cuda; cpu for the smoke test)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: every part's code path")
    ap.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    ap.add_argument("--budget-s", type=float, help="seconds for all parts (default 450; --smoke: 3x every limit)")
    ap.add_argument("--max-memory", default="110G", help="the RSA runs' max_memory (default 110G of 128 GiB)")
    ap.add_argument("--scratch", default="", help="out-of-core files (default: the part's temp dir)")
    ap.add_argument("--_part", help=argparse.SUPPRESS)
    ap.add_argument("--_max-teachers", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args._part:
        return run_part(args)
    scale = 3 if args.smoke else 1  # a 2-core CPU runs the smoke test's Taskonomy-size networks slowly
    args.budget_s = args.budget_s or 450.0 * scale
    deadline = time.monotonic() + args.budget_s
    results = {"gpu": None, "device": args.device, "smoke": args.smoke, "budget_s": args.budget_s,
               "max_memory": args.max_memory, "cpus": os.cpu_count(), "load_start": os.getloadavg(),
               "python": sys.version.split()[0], "numpy": np.__version__, "parts": {}, "rsa": []}
    for i, name in enumerate(args.parts):
        later = scale * sum(PARTS[p][1] for p in args.parts[i + 1:])
        limit = min(scale * PARTS[name][0], deadline - time.monotonic() - later)
        results["parts"][name] = launch(args, name, limit, results)
        results["gpu"] = results["gpu"] or results["parts"][name].get("gpu")
        write_results(args.out, results)
    print("\n".join(table(rows(results))))


def launch(args: argparse.Namespace, name: str, limit: float, results: dict) -> dict:
    """One part in a fresh process for at most ``limit`` seconds: its JSON, or why there is none."""
    if limit < 10:
        return {"status": "skipped", "why": f"only {limit:.0f} s left of --budget-s"}
    cmd = [sys.executable, __file__, "--_part", name, "--out", str(args.out), "--device", args.device, "--max-memory",
           args.max_memory, "--scratch", args.scratch] + ["--smoke"] * args.smoke
    if name == "rsa_50k":
        want = (SMOKE if args.smoke else FULL)[name]
        cmd += ["--_max-teachers", str(teachers_in_time(results["rsa"], want[0], want[1], limit))]
    path, log = args.out / f"part_{name}.json", args.out / f"log_{name}.txt"
    path.unlink(missing_ok=True)
    print(f"{name}: up to {limit:.0f} s", flush=True)
    start = time.monotonic()
    # the part's temp dir is removed here even when it is killed; PASSIVE: as bench_extract (OpenMP's spinning)
    with tempfile.TemporaryDirectory(prefix=f"gpu_benchmark_{name}_") as tmp, log.open("w") as f:
        env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "TMPDIR": tmp}
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=limit, env=env).returncode
            status = "ok" if rc == 0 and path.exists() else f"failed (exit {rc})"
        except subprocess.TimeoutExpired:
            status = f"timed out after {limit:.0f} s"
    part = json.loads(path.read_text()) if status == "ok" else {}
    if "rsa" in part:
        results["rsa"].append(part.pop("rsa"))
    tail = log.read_text(errors="replace").strip().splitlines()[-8:] if status != "ok" else []
    return {**part, "status": status, "wall_s": time.monotonic() - start, **({"log_tail": tail} if tail else {})}


def teachers_in_time(done: list[dict], n: int, teachers: int, limit: float) -> int:
    """Teachers that finish within ``limit`` s (less start-up and features), at the per-teacher time of the largest
    finished RSA run times (N / n)^2 and 1.3 for the int64 ranks; all of them without a finished run."""
    if not done:
        return teachers
    last = max(done, key=lambda r: r["n"])
    per_teacher = last["seconds"] / last["teachers"] * (n / last["n"]) ** 2 * 1.3
    return max(2, min(teachers, int((0.8 * limit - 20) / max(per_teacher, 1e-9))))


def write_results(out: Path, results: dict) -> None:
    for path, text in ((out / "results.json", json.dumps(results, indent=1, default=float)),
                       (out / "gpu_benchmark.md", "\n".join(markdown(results)) + "\n")):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(part, figure, value, target met?) of every result; failed, skipped and timed-out parts say so."""
    parts, out = results["parts"], []
    verdict = lambda ok, target: f"{'yes' if ok else 'NO'} ({target})"  # noqa: E731
    for r in results["rsa"]:
        target = verdict(r["seconds"] <= 20, "<= 20 s") if r["n"] == 20000 else "-"
        out.append((f"RSA N={r['n']:,}", f"s, {r['teachers']} teachers, {r['mode']}", f"{r['seconds']:.2f}", target))
    if "max_abs_diff" in parts.get("rsa_check", {}):
        d = parts["rsa_check"]["max_abs_diff"]
        out.append(("RSA check", "max |device - numpy|", f"{d:.1e}", verdict(d <= 1e-9, "<= 1e-9")))
    if "ratio" in (e := parts.get("extract", {})):
        out.append(("extract", "img/s toolkit / bare", f"{e['toolkit_images_s']:.3g} / {e['bare_images_s']:.3g} "
                    f"= {e['ratio']:.2f}", verdict(e["ratio"] >= 1 / 1.1, "issue 3: <= 10 % overhead")))
    if "max_abs_diff" in (c := parts.get("amalgamate_check", {})):
        d = c["max_abs_diff"]
        out.append(("amalgamate check", "max |device - cpu|, float64 run", f"{d:.1e}", verdict(d <= 1e-6, "<= 1e-6")))
    for kind in ("taskonomy", "mini"):
        if "live_over_cached" in (a := parts.get(f"amalgamate_{kind}", {})):
            ok = verdict(a["live_over_cached"] >= 3, ">= 3x") if kind == "taskonomy" else "-"
            out.append((f"amalgamate {kind}", "s/step cached / live",
                        f"{a['cached_s_step']:.3f} / {a['live_s_step']:.3f} = {a['live_over_cached']:.2f}x", ok))
    return out + [(name, "status", p["status"], "-") for name, p in parts.items() if p["status"] != "ok"]


def table(lines: list[tuple[str, ...]]) -> list[str]:
    lines = [("part", "figure", "value", "target met?"), *lines]
    widths = [max(len(r[i]) for r in lines) for i in range(4)]
    return [" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in lines]


def markdown(results: dict) -> list[str]:
    head = (f"GPU benchmark (`benchmarks/gpu_benchmark.py{' --smoke' if results['smoke'] else ''}`) on "
            f"{results['gpu']}, {results['cpus']} CPUs, Python {results['python']}; budget {results['budget_s']:.0f} "
            f"s; RSA max_memory {results['max_memory']}.")
    return [head, "", "| part | figure | value | target met? |", "|---|---|---|---|",
            *[f"| {' | '.join(r)} |" for r in rows(results)], "",
            "| RSA mode | N | teachers | features | time (s) | peak host RSS (GB) | peak GPU (GB) | teachers at once |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *[f"| {r['mode']} | {r['n']:,} | {r['teachers']} | {r['features']} | {r['seconds']:.2f} | "
              f"{r['peak_gb']:.2f} | {r['gpu_peak_gb']:.2f} | {r['jobs']} |" for r in results["rsa"]], "",
            *[f"- `{name}`: " + ", ".join(f"{k} {v}" for k, v in part.items() if k != "log_tail")
              for name, part in results["parts"].items()]]


# --- the parts, each in its own process -----------------------------------------------------------------------------

def run_part(args: argparse.Namespace) -> None:
    import torch

    size, device, name = (SMOKE if args.smoke else FULL), torch.device(args.device), args._part
    if device.type == "cuda":
        torch.zeros(1, device=device)  # the CUDA context exists before any timer or memory budget
    with tempfile.TemporaryDirectory(prefix=f"gpu_benchmark_{name}_") as tmp:
        if name == "rsa_check":
            out = rsa_check(*size[name], device, SEED)
        elif name.startswith("rsa_"):
            out = rsa_run(*size[name], device, SEED, max_memory=args.max_memory,
                          scratch=Path(args.scratch or tempfile.gettempdir()), max_teachers=args._max_teachers)
        elif name == "extract":
            out = extraction(Path(tmp), device, SEED, **size[name])
        elif name == "amalgamate_check":
            out = amalgamation_check(Path(tmp), device, SEED, **size["check"])
        else:
            kind = name.split("_")[1]
            out = amalgamation(Path(tmp), kind, device, SEED, **size[kind])
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{device.type} (no GPU)"
    (args.out / f"part_{name}.json").write_text(json.dumps({**out, "gpu": gpu}, default=float))


def teacher_features(n: int, teachers: int, dim: int, seed: int, device) -> dict[str, np.ndarray]:  # noqa: ANN001
    """``bench_rsa.teacher_features``' construction (a shared latent mixed in different amounts, noise, per-feature
    offsets) drawn with torch on ``device`` in float32 (seconds on a GPU, minutes in numpy), as numpy arrays."""
    import torch

    gen = torch.Generator(device).manual_seed(seed)
    normal = lambda *shape: torch.randn(*shape, generator=gen, device=device)  # noqa: E731
    shared, out = normal(n, 32), {}
    for t in range(teachers):
        mix = 0.2 + 0.8 * t / max(1, teachers - 1)
        x = (mix * shared + (1 - mix) * normal(n, 32)) @ normal(32, dim)
        x += 0.5 * normal(n, dim) + 3.0 * normal(dim)
        out[f"teacher{t:02d}"] = x.cpu().numpy()
    return out


def rsa_check(n: int, teachers: int, dim: int, device, seed: int) -> dict:  # noqa: ANN001
    from rsa_toolkit.rsa.similarity import similarity_matrix

    features = teacher_features(n, teachers, dim, seed, device)
    device_s, on_device = synced(device, lambda: similarity_matrix(features, device=device).matrix)
    numpy_s, numpy = synced(device, lambda: similarity_matrix(features).matrix)
    return {"n": n, "teachers": teachers, "features": dim, "max_abs_diff": float(np.abs(on_device - numpy).max()),
            "device_s": device_s, "numpy_s": numpy_s}


def rsa_run(n: int, teachers: int, dim: int, device, seed: int, *, max_memory: str, scratch: Path,  # noqa: ANN001
            max_teachers: int | None) -> dict:
    """One timed ``similarity_matrix`` on ``device``: as many teachers as the memory plan and the time allow."""
    import torch

    from rsa_toolkit.rsa.similarity import similarity_matrix

    timely = teachers if max_teachers is None else max_teachers
    fits = {keep: teachers_in_memory(n, dim, teachers, max_memory, keep, scratch) for keep in (None, False)}
    keep_rdms = None if fits[None] >= min(teachers, timely) else False  # the defaults, when they hold the run
    run = min(teachers, fits[keep_rdms], timely)
    if run < 2:
        raise SystemExit(f"no memory plan for 2 teachers x {n} images within {max_memory} and {scratch}")
    generate_s, features = synced(device, lambda: teacher_features(n, run, dim, seed, device))
    warm_s, _ = synced(device, lambda: similarity_matrix(teacher_features(500, 2, dim, seed, device), device=device))
    reset_peaks(device)
    seconds, result = synced(device, lambda: similarity_matrix(features, device=device, max_memory=max_memory,
                                                               scratch=scratch, keep_rdms=keep_rdms))
    gpu_peak = torch.cuda.max_memory_allocated(device) / GB if device.type == "cuda" else 0.0
    entry = {"mode": "out of core" if result.memory.out_of_core else "in memory", "n": n, "teachers": run,
             "features": dim, "seconds": seconds, "peak_gb": peak_rss() / GB, "gpu_peak_gb": gpu_peak,
             "jobs": result.memory.n_jobs}
    limit = "memory" if run == fits[keep_rdms] < teachers else "time" if run == timely < teachers else "-"
    return {"rsa": entry, "teachers_wanted": teachers, "teachers_memory": fits[keep_rdms], "teachers_time": timely,
            "limited_by": limit, "keep_rdms": keep_rdms, "plan": result.memory.describe(), "scratch": str(scratch),
            "generate_s": generate_s, "warm_up_s": warm_s}


def teachers_in_memory(n: int, dim: int, want: int, max_memory: str, keep_rdms: bool | None, scratch: Path) -> int:
    """The most teachers (<= want, else 0) that ``plan_memory`` fits in ``max_memory`` less what this process holds,
    the features it will hold and 2 GiB of slack, and, out of core, in 90 % of the scratch disk's free space."""
    from rsa_toolkit.errors import UserInputError
    from rsa_toolkit.rsa.memory import parse_size, plan_memory, resident_memory

    free = shutil.disk_usage(scratch).free
    for t in range(want, 1, -1):
        budget = parse_size(max_memory) - resident_memory() - 4 * t * n * dim - (2 << 30)
        try:
            plan = plan_memory(t, n, dim, budget=max(budget, 1), keep_rdms=keep_rdms)
        except UserInputError:
            continue
        if plan.disk <= 0.9 * free:
            return t
    return 0


def reset_peaks(device) -> None:  # noqa: ANN001
    """Start the peak counters now: the GPU allocator's, and the process's VmHWM (Linux: 5 to clear_refs)."""
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024 if "VmHWM:" in status else 0


def synced(device, fn):  # noqa: ANN001, ANN201
    """(seconds, result) of ``fn()``, the device's queued work finished at both ends."""
    import torch

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - start, out


def extraction(tmp: Path, device, seed: int, *, images: int, px: int, batch: int, repeats: int) -> dict:  # noqa: ANN001
    """Images/s of ``extract_features`` (a fresh teacher; the network loaded) and of the bare forward."""
    from bench_extract import bare_forward, make_inputs

    from rsa_toolkit.features.extract import extract_features
    from rsa_toolkit.images.probe import resolve_probe
    from rsa_toolkit.zoo.teachers import taskonomy_teacher

    weights, folder, (task,) = make_inputs(tmp, 1, images, (px, px), seed)
    probe = resolve_probe(folder)
    teacher = taskonomy_teacher(task, weights)
    encoder = teacher.build().to(device)
    batches = [b.to(device) for _, b in probe.batches(batch, teacher.preprocessing)]
    synced(device, lambda: bare_forward(encoder, batches[:1]))  # warm-up: kernels, allocator
    caches = iter(tmp / f"cache{i}" for i in range(10 ** 6))  # a fresh, empty cache for every extraction
    best, out = dict.fromkeys(("toolkit", "preloaded", "bare"), math.inf), {}
    for _ in range(repeats):
        fresh = taskonomy_teacher(task, weights)  # hashes its file here, outside the timer (as bench_extract)
        runs = {"toolkit": lambda: extract_features(fresh, probe, batch_size=batch, device=device,
                                                    cache_dir=next(caches)),
                "preloaded": lambda: extract_features(teacher, probe, batch_size=batch, device=device,
                                                      cache_dir=next(caches)),
                "bare": lambda: bare_forward(encoder, batches)}
        for key, fn in runs.items():
            seconds, out[key] = synced(device, fn)
            best[key] = min(best[key], seconds)
    bare = np.concatenate([b.float().cpu().numpy() for b in out["bare"]])
    speed = {f"{k}_images_s": images / v for k, v in best.items()}
    return {**speed, "ratio": speed["toolkit_images_s"] / speed["bare_images_s"], "images": images, "px": px,
            "max_abs_diff": float(np.abs(np.asarray(out["toolkit"]["encoder_output"]) - bare).max()),
            "batch": batch, "repeats": repeats, "task": task}


def amalgamation(tmp: Path, kind: str, device, seed: int, *, batch: int, steps: int, skip: int,  # noqa: ANN001
                 images: int = 0, px: int = 0, frames: int = 0) -> dict:
    """Seconds per SOKA step with cached and with live teachers: the median step after the first ``skip``."""
    settings = {"targets": list(TARGETS), "aux": AUX, "batch_size": batch, "device": str(device), "kd_warmup": 0,
                "cache_dir": str(tmp / "cache"), "seed": seed, "steps": steps, "checkpoint_every": 10 * steps}
    start = time.perf_counter()
    if kind == "taskonomy":
        from bench_extract import make_inputs

        (tmp / "pngs").mkdir()  # bench_extract's seeded random PNGs (and no teachers)
        settings |= {"weights_dir": str(taskonomy_weights(tmp / "weights", seed)),
                     "images": str(make_inputs(tmp / "pngs", 0, images, (px, px), seed)[1])}
    else:
        settings |= {"train_frames": frames}
    out = {"steps": steps, "timed_steps": steps - skip, "batch": batch, "inputs_s": time.perf_counter() - start}
    for live, label in ((False, "cached"), (True, "live")):  # the cached run fills its cache before its loop
        start = time.perf_counter()
        times, session = step_times(tmp / f"run-{label}", device, {**settings, "live_teachers": live})
        out |= {f"{label}_s_step": float(np.median(times[skip:])), f"{label}_whole_run_s_step": session / steps,
                f"{label}_run_s": time.perf_counter() - start}
    out["live_over_cached"] = out["live_s_step"] / out["cached_s_step"]
    return out | ({"images": images, "px": px} if kind == "taskonomy" else {"frames": frames})


def amalgamation_check(tmp: Path, device, seed: int, *, frames: int, batch: int, steps: int) -> dict:  # noqa: ANN001
    """The GPU training path against the CPU reference (issue 16, item 6): the same tiny float64 SOKA run (GradNorm,
    auxiliary, adapters, each run's own knowledge cache) on the CPU and on ``device``; the largest difference of the
    students' parameters and of the logged loss weights (rounding only: reductions run in another order)."""
    import torch

    from amalgamate import train

    settings = {"targets": list(TARGETS), "aux": AUX, "batch_size": batch, "kd_warmup": 0, "seed": seed,
                "steps": steps, "checkpoint_every": 10 * steps, "precision": "float64", "train_frames": frames}
    students, weights = {}, {}
    for label, where in (("cpu", "cpu"), ("device", str(device))):
        run = tmp / f"run-{label}"
        train(run, {**settings, "device": where, "cache_dir": str(tmp / f"cache-{label}")}, overwrite=True)
        students[label] = torch.load(run / "student.pt", weights_only=True)["state_dict"]
        weights[label] = [json.loads(line)["weights"] for line in (run / "log.jsonl").read_text().splitlines()]
    parameters = max(float((students["cpu"][k] - students["device"][k]).abs().max()) for k in students["cpu"]
                     if students["cpu"][k].is_floating_point())
    logged = max(abs(a[t] - b[t]) for a, b in zip(weights["cpu"], weights["device"]) for t in a)
    return {"max_abs_diff": max(parameters, logged), "parameters_max_abs_diff": parameters,
            "weights_max_abs_diff": logged, "steps": steps, "frames": frames, "batch": batch}


def step_times(run: Path, device, settings: dict) -> tuple[list[float], float]:  # noqa: ANN001
    """Each step's seconds, timed around ``Trainer.train_step`` (wrapped for this run only), and ``run.json``'s
    ``seconds_this_session`` (the loop plus the final checkpoint and the teachers' loading for their parameter
    count: bench_amalgamate's figure)."""
    from amalgamate import train
    from amalgamate.training.trainer import Trainer

    times, step = [], Trainer.train_step

    def timed(trainer: Trainer) -> dict:
        seconds, entry = synced(device, lambda: step(trainer))
        times.append(seconds)
        return entry

    Trainer.train_step = timed
    try:
        train(run, settings, overwrite=True)
    finally:
        Trainer.train_step = step
    return times, json.loads((run / "run.json").read_text())["seconds_this_session"]


def taskonomy_weights(folder: Path, seed: int) -> Path:
    """Random-init visualpriors checkpoints: encoder and decoder of each target, the auxiliary's encoder."""
    import torch

    from rsa_toolkit.zoo.taskonomy.decoder import build_decoder
    from rsa_toolkit.zoo.taskonomy.net import TaskonomyEncoder
    from rsa_toolkit.zoo.taskonomy.weights import save_visualpriors_checkpoint

    folder.mkdir()
    for i, task in enumerate((*TARGETS, AUX)):
        torch.manual_seed(seed + i)
        save_visualpriors_checkpoint(TaskonomyEncoder(), folder, task, "encoder")
        if task in TARGETS:
            save_visualpriors_checkpoint(build_decoder(task), folder, task, "decoder")
    return folder


if __name__ == "__main__":
    main()
