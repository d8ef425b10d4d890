"""One forward, many layers (issue 18.4): one teacher tapped at 3 layers against 3 teachers tapped at one layer each.

Same network and weights, the same probe images (seeded random PNGs), a fresh cache directory per run, wall-clock
best of --repeats:

* (a) ``extract_features(teacher, probe, layers=[l1, l2, l3])``: one forward pass per batch, hooks on all three;
* (b) three single-layer teachers, ``extract_features(teacher_i, probe, layers=[l_i])`` one after another: three
  passes (each stops after its own layer, so the early layers' passes are partial).

Both write the same three cache entries (checked byte for byte). The ratio a / b is written to docs/performance.md
under "One forward, many layers", with the machine's load average before and after (shared machines vary).

    python benchmarks/bench_layers.py --quick              # a small CNN, 16 images
    python benchmarks/bench_layers.py --net taskonomy      # the Taskonomy encoder (ResNet-50), block2/block4/output
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc_section import write_section  # noqa: E402

from rsa_toolkit.features.extract import extract_features  # noqa: E402
from rsa_toolkit.images.probe import probe_from_folder  # noqa: E402
from rsa_toolkit.zoo.teachers import Teacher, module_teacher  # noqa: E402


def _cnn() -> nn.Module:
    blocks, channels = [], 3
    for width in (32, 64, 96, 128, 160, 192):
        blocks += [nn.Conv2d(channels, width, 3, stride=2 if width in (32, 96, 160) else 1, padding=1), nn.ReLU()]
        channels = width
    return nn.Sequential(*blocks)


def _teacher(net: str) -> tuple[Teacher, list[str]]:
    torch.manual_seed(0)
    if net == "taskonomy":
        from rsa_toolkit.images.preprocess import taskonomy_preprocessing
        from rsa_toolkit.zoo.taskonomy.encoder import TaskonomyEncoder

        model = TaskonomyEncoder().eval()  # random weights: the speed is the architecture's, as taskonomy_teacher runs it
        teacher = Teacher(name="taskonomy", layers=("block2", "block4", "encoder_output"),
                          default_layer="encoder_output", preprocessing=taskonomy_preprocessing("depth_zbuffer"),
                          weights_sha256="bench", build=lambda: model,
                          run=lambda m, x, layers: m.forward_taps(x, layers), source="bench")
        return teacher, ["block2", "block4", "encoder_output"]
    return module_teacher("cnn", _cnn(), preprocessing="imagenet"), ["3", "7", "11"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--net", choices=("cnn", "taskonomy"), default="cnn")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="16 images, 2 repeats")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md as it is")
    args = parser.parse_args()
    if args.quick:
        args.images, args.repeats = 16, 2
    torch.set_num_threads(os.cpu_count() or 1)
    teacher, layers = _teacher(args.net)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "probe"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.images):
            Image.fromarray((rng.random((256, 256, 3)) * 255).astype(np.uint8)).save(folder / f"img{i:03d}.png")
        probe = probe_from_folder(folder)[0]
        runs = iter(range(10**6))

        def fresh() -> Path:
            return Path(tmp) / f"cache{next(runs)}"

        def together() -> dict[str, np.ndarray]:
            return extract_features(teacher, probe, layers=layers, batch_size=args.batch_size, cache_dir=fresh())

        def separately() -> dict[str, np.ndarray]:
            out = {}
            for layer in layers:
                out |= extract_features(teacher, probe, layers=[layer], batch_size=args.batch_size, cache_dir=fresh())
            return out

        together()  # warm-up: threads, allocator, page cache
        times: dict[str, list[float]] = {"together": [], "separately": []}
        results = {}
        for _ in range(args.repeats):
            for name, run in (("together", together), ("separately", separately)):
                start = time.perf_counter()
                results[name] = run()
                times[name].append(time.perf_counter() - start)
        for layer in layers:
            np.testing.assert_array_equal(results["together"][layer], results["separately"][layer])
    load_after = os.getloadavg()
    a, b = min(times["together"]), min(times["separately"])
    command = "python benchmarks/bench_layers.py " + shlex.join(sys.argv[1:])
    lines = [
        f"`{command.strip()}` — {args.net}, layers {', '.join(layers)}; {args.images} images of 256×256, batch "
        f"{args.batch_size}, best of {args.repeats}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after (a shared machine: indicative).",
        "",
        "| run | seconds |",
        "|---|---|",
        f"| (a) one teacher, 3 layers, one forward per batch | {a:.2f} |",
        f"| (b) 3 teachers, one layer each (3 forwards, each stopping at its layer) | {b:.2f} |",
        f"| ratio a / b | **{a / b:.2f}** |",
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section(ROOT / "docs" / "performance.md", f"bench_layers_{args.net}", lines)


if __name__ == "__main__":
    main()
