"""Amalgamation speed: a training step with cached vs live teachers, and inference of the n-to-1 student vs its n
teachers vs the n single-task KD students (the seed's Table 3), on the shipped mini zoo.

(a) Step time. The same SOKA run (``--aux`` fixed, so no ranking; no KD warm-up, so every timed step is a full SOKA
step) twice in temporary directories: with the teachers' knowledge cached on disk (the cache is filled first,
outside the timed loop) and with ``live_teachers`` (the target teachers and the auxiliary run on every batch). The
figure is ``run.json``'s ``seconds_this_session`` (the training loop alone) over the steps; the two runs alternate
``--repeats`` times and the best of each is kept.

(b) Inference. For each target set: the n teachers, the n-to-1 student and the n-to-n ensemble (parameters matched
to the n-to-1 student) on the same batch of 64 px frames, eval mode under ``torch.inference_mode``, timed together
in interleaved rounds after a warm-up (:func:`amalgamate.evaluation.evaluate.time_together`: every model under the
same load), with their parameters and forward GFLOPs per frame (``torch.utils.flop_counter``). Timing does not
depend on the weights, so untrained students are timed.

Writes the ``amalgamate_steps`` and ``amalgamate_inference`` sections of docs/performance.md (atomically). Run on
idle cores (~5 min on 2):
    python benchmarks/bench_amalgamate.py
    python benchmarks/bench_amalgamate.py --steps 10 --repeats 1 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc_section import write_section  # noqa: E402

from amalgamate import train  # noqa: E402
from amalgamate.evaluation.evaluate import time_per_image, time_together  # noqa: E402
from amalgamate.student import build_student, count_parameters  # noqa: E402
from rsa_toolkit.zoo.mini.net import INPUT_SIZE, build_teacher_net  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_SETS = (("depth_zbuffer", "normal"), ("depth_zbuffer", "edge_texture", "normal"))  # --targets depth normal [edge2d]


def step_seconds(tmp: Path, *, live: bool, targets: tuple[str, ...], aux: str, steps: int, batch: int,
                 frames: int, tag: str) -> float:
    # kd_warmup 0: with the default 50-step warm-up every timed step (30 by default) was a plain distillation step,
    # without the competition's gradient norms and the guidance, so the figure was a KD step's, not SOKA's
    settings = {"targets": list(targets), "aux": aux, "steps": steps, "batch_size": batch, "train_frames": frames,
                "live_teachers": live, "cache_dir": str(tmp / "cache"), "checkpoint_every": 10 * steps,
                "kd_warmup": 0, "seed": 0}
    train(tmp / f"run-{tag}", settings, overwrite=True)
    summary = json.loads((tmp / f"run-{tag}" / "run.json").read_text())
    return summary["seconds_this_session"] / steps


def teachers_forward_seconds(targets: tuple[str, ...], aux: str, batch: int, repeats: int) -> float:
    """What live knowledge adds to a step at best: the target teachers and the auxiliary on one batch."""
    torch.manual_seed(0)
    x = torch.rand(batch, 3, INPUT_SIZE, INPUT_SIZE) * 2 - 1
    nets = [build_teacher_net(t).eval() for t in (*targets, aux)]
    with torch.inference_mode():
        return time_per_image(lambda: [net(x) for net in nets], 1, repeats=repeats) / 1000.0


def gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 1e9 / len(x)


def inference_rows(targets: tuple[str, ...], batch: int, rounds: int) -> list[dict[str, float | str]]:
    """The n teachers, the KD n-to-n students and the n-to-1 student, timed together in interleaved rounds."""
    torch.manual_seed(0)
    x = torch.rand(batch, 3, INPUT_SIZE, INPUT_SIZE) * 2 - 1
    models = {"n teachers": [build_teacher_net(t).eval() for t in targets],
              "KD n-to-n students": [build_student(targets, method="kd-n-to-n").eval()],
              "n-to-1 student": [build_student(targets).eval()]}
    with torch.inference_mode():
        ms = time_together({name: (lambda nets=nets: [net(x) for net in nets]) for name, nets in models.items()},
                           batch, rounds=rounds)
        rows = [{"model": name, "ms": ms[name], "ratio": ms[name] / ms["n teachers"],
                 "params": sum(count_parameters(n) for n in nets), "gflops": sum(gflops(n, x[:1]) for n in nets)}
                for name, nets in models.items()]
    return rows


def step_section(args: argparse.Namespace) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        step_rows = []
        for targets in TARGET_SETS:
            common = dict(targets=targets, aux=args.aux, steps=args.steps, batch=args.batch_size, frames=args.frames)
            step_seconds(tmp, live=False, tag="fill", **common | {"steps": 1})  # fills the cache, untimed
            cached, live = [], []
            for _ in range(args.repeats):
                cached.append(step_seconds(tmp, live=False, tag="cached", **common))
                live.append(step_seconds(tmp, live=True, tag="live", **common))
            teachers = teachers_forward_seconds(targets, args.aux, args.batch_size, args.repeats)
            step_rows.append((targets, min(cached), min(live), teachers))
            print(f"{'+'.join(targets)}: cached {min(cached):.3f} s/step, live {min(live):.3f} s/step, "
                  f"{min(live) / min(cached):.2f}x", flush=True)
    return [
        f"**Training step, cached vs live teachers** (SOKA with GradNorm, auxiliary {args.aux}, batch "
        f"{args.batch_size} at 64 px, {args.steps} steps, best of {args.repeats}; target: cached ≥ 3× faster):",
        "",
        "| targets | cached s/step | live s/step | live / cached | teachers' forward, s/batch | (cached + teachers) / "
        "cached |",
        "|---|---|---|---|---|---|",
        *[f"| {', '.join(t)} | {c:.3f} | {v:.3f} | **{v / c:.2f}×** | {f:.3f} | {(c + f) / c:.2f}× |"
          for t, c, v, f in step_rows],
    ]


def inference_section(args: argparse.Namespace) -> list[str]:
    rounds = max(args.repeats, 10)
    lines = [
        f"**Inference per frame** (batch {args.batch_size}; the three models of a row group timed together, best of "
        f"{rounds} interleaved rounds; target: n-to-1 student ≤ 0.5× the n teachers; the seed's Table 3 has 0.51 for "
        "3 tasks):",
        "",
        "| targets | model | ms / frame | × teachers | parameters | GFLOP / frame |",
        "|---|---|---|---|---|---|",
    ]
    for targets in TARGET_SETS:
        for r in inference_rows(targets, args.batch_size, rounds):
            print(f"{'+'.join(targets)} {r['model']}: {r['ms']:.2f} ms/frame ({r['ratio']:.2f}x)", flush=True)
            lines.append(f"| {', '.join(targets)} | {r['model']} | {r['ms']:.2f} | **{r['ratio']:.2f}×** | "
                         f"{r['params']:,} | {r['gflops']:.3f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per timed run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=512, help="mini train frames (the cache's size)")
    parser.add_argument("--aux", default="segment_semantic")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", nargs="+", choices=("steps", "inference"), default=["steps", "inference"])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    for part, make in (("steps", step_section), ("inference", inference_section)):
        if part not in args.parts:
            continue
        load_start = os.getloadavg()
        body = make(args)
        load_end = os.getloadavg()
        lines = [
            f"Measured {time.strftime('%Y-%m-%d')} by `python benchmarks/bench_amalgamate.py --parts {part}` on "
            f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads; load average (1, 5, 15 min) at start {' '.join(f'{v:.2f}' for v in load_start)}, at end "
            f"{' '.join(f'{v:.2f}' for v in load_end)}.",
            "",
            *body,
        ]
        if args.no_write:
            print("\n".join(lines))
        else:
            write_section(ROOT / "docs" / "performance.md", f"amalgamate_{part}", lines)
            print(f"wrote docs/performance.md (section amalgamate_{part})")


if __name__ == "__main__":
    main()
