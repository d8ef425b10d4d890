"""Speed of the Mini-Taskonomy renderer on one core, and the contact sheet of docs/scenes.md.

Measured per frame (best of ``--repeats`` passes over the same ``--frames`` seeds, one thread):

* ``sample_scene``: drawing the scene;
* image only (``tasks=[]``), image + the 17 geometric/semantic labels (every task but the three scikit-image ones),
  each scikit-image label alone (edge_texture: Canny, keypoints2d: Harris, segment_unsup2d: Felzenszwalb) on top
  of the image, and all 20 labels;
* the baseline in the same run: the same ray casting with a Python loop over pixels (each ray cast alone through
  the same intersection code), image geometry only, on a few frames; the speed-up is the ratio.

Target (issue 4): ≥ 30 frames/s at 128 × 128 for the image + the geometric labels.

Writes the results between the ``bench_render`` markers of docs/scenes.md and the contact sheet to
docs/img/scenes_contact_sheet.png (``--out`` / ``--sheet`` to change, ``--quick`` for a smoke run into a temp dir):
    python benchmarks/bench_render.py
    python benchmarks/bench_render.py --quick
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling helper below, when run as a script
from _doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_FPS = 30.0
SKIMAGE_TASKS = ("edge_texture", "keypoints2d", "segment_unsup2d")


def per_frame(fn, items, repeats: int, *, warm_up: bool = True) -> float:
    """Best-of-``repeats`` seconds per item of ``fn`` over ``items`` (after one untimed call, unless told not)."""
    if warm_up:
        fn(items[0])
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter() - t0) / len(items))
    return best


def loop_cast(scene, size: int) -> np.ndarray:
    """Baseline: the first-hit distance of every pixel, one ray at a time (a Python loop over pixels)."""
    from rsa_toolkit.scenes.raycast import camera_rays, intersect_room, intersect_shape

    rays = scene.camera.rotation @ camera_rays(size, float(scene.camera.fov))
    o = np.asarray(scene.camera.position, dtype=np.float64)
    room = np.asarray(scene.room.size, dtype=np.float64)
    out = np.empty(size * size)
    for i in range(size * size):
        d = rays[:, i:i + 1]
        t = intersect_room(o, d, room)[0]
        for shape in scene.shapes:
            t = np.minimum(t, intersect_shape(shape, o, d, t))
        out[i] = t[0]
    return out


def measure(size: int, frames: int, repeats: int, loop_frames: int) -> dict[str, float]:
    from rsa_toolkit.scenes import ALL_TASKS, render, sample_scene
    from rsa_toolkit.scenes.raycast import cast

    seeds = list(range(frames))
    scenes = [sample_scene(s) for s in seeds]
    geometric = [t for t in ALL_TASKS if t not in SKIMAGE_TASKS]
    r = {"sample_scene": per_frame(sample_scene, seeds, repeats),
         "image": per_frame(lambda s: render(s, size, tasks=[]), scenes, repeats),
         "image + 17 labels": per_frame(lambda s: render(s, size, tasks=geometric), scenes, repeats)}
    for task in SKIMAGE_TASKS:
        r[f"image + {task}"] = per_frame(lambda s, t=task: render(s, size, tasks=[t]), scenes, repeats)
    r["all 20 labels"] = per_frame(lambda s: render(s, size), scenes, repeats)
    r["vectorised depth (cast)"] = per_frame(lambda s: cast(s, size), scenes, repeats)
    if loop_frames:
        check = scenes[:loop_frames]
        for s in check:  # the baseline computes the same distances
            np.testing.assert_allclose(loop_cast(s, size), cast(s, size).t, rtol=1e-12)
        r["per-pixel loop depth (baseline)"] = per_frame(lambda s: loop_cast(s, size), check, 1, warm_up=False)
    return r


def report(results: dict[int, dict[str, float]], args: argparse.Namespace) -> list[str]:
    lines = ["", f"Produced by `{' '.join(['python benchmarks/bench_render.py', *sys.argv[1:]])}`; do not edit by hand.", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, one thread used; "
             f"Python {platform.python_version()}, numpy {version('numpy')}, scikit-image {version('scikit-image')}. "
             f"Best of {args.repeats} passes over seeds 0–{args.frames - 1}.", ""]
    sizes = list(results)
    lines += ["| per frame | " + " | ".join(f"{s} × {s}" for s in sizes) + " |",
              "|---|" + "---:|" * len(sizes)]
    for key in results[sizes[0]]:
        cells = [f"{results[s][key] * 1e3:.3g} ms ({1 / results[s][key]:.3g}/s)" if key in results[s] else "—"
                 for s in sizes]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("")
    if 128 in results:
        fps = 1 / results[128]["image + 17 labels"]
        lines.append(f"Target: ≥ {TARGET_FPS:.0f} frames/s at 128 × 128 for the image + the geometric labels: "
                     f"{fps:.0f} frames/s ({fps / TARGET_FPS:.1f}× the target) — "
                     f"{'met' if fps >= TARGET_FPS else 'NOT met'}.")
        loop = results[128].get("per-pixel loop depth (baseline)")
        if loop:
            lines.append(f"Vectorisation: the per-pixel loop casts a 128 × 128 frame's depth "
                         f"{loop / results[128]['vectorised depth (cast)']:.0f}× slower than `cast`.")
    return lines + [""]


def write_sheet(path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from rsa_toolkit.scenes.contact_sheet import contact_sheet

    fig = contact_sheet()
    FigureCanvasAgg(fig)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--frames", type=int, default=100, help="seeds 0..frames-1")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-frames", type=int, default=2, help="frames for the per-pixel loop baseline (0: skip)")
    ap.add_argument("--out", type=Path, default=None, help="markdown with the markers (default docs/scenes.md)")
    ap.add_argument("--sheet", type=Path, default=None,
                    help="contact sheet PNG (default docs/img/scenes_contact_sheet.png)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 and 128 px, 5 frames, into a temp dir")
    args = ap.parse_args()
    if args.quick:
        tmp = Path(tempfile.mkdtemp(prefix="bench_render_"))
        args.sizes, args.frames, args.repeats, args.loop_frames = [64, 128], 5, 1, 1
        args.out, args.sheet = args.out or tmp / "scenes.md", args.sheet or tmp / "sheet.png"
    out = args.out or ROOT / "docs" / "scenes.md"
    sheet = args.sheet or ROOT / "docs" / "img" / "scenes_contact_sheet.png"
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass
    results = {}
    for size in args.sizes:
        results[size] = measure(size, args.frames, args.repeats, args.loop_frames if size <= 128 else 0)
        print(f"{size}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in results[size].items()), file=sys.stderr)
    block = report(results, args)
    write_section(out, "bench_render", block)
    write_sheet(sheet)
    print("\n".join(block))
    print(f"wrote {out} and {sheet}", file=sys.stderr)


if __name__ == "__main__":
    main()
