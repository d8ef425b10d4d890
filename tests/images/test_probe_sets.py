"""The built-in skimage set holds every suitable photo the scikit-image wheel ships (nothing downloaded), and small
probe sets warn: a SmallProbeSetWarning in the library, one ``warning:`` line naming --bootstrap in the CLI."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsa_toolkit.images.probe import (SKIMAGE_IMAGES, SMALL_PROBE_SET, SmallProbeSetWarning, probe_by_name,
                                      resolve_probe)

SKIMAGE_DATA = Path(importlib.util.find_spec("skimage").origin).parent / "data"
EXCLUDED = {"cell.png", "ihc.png", "retina.jpg", "microaneurysms.png", "clock_motion.png", "text.png", "page.png",
            "chessboard_GRAY.png", "chessboard_RGB.png", "color.png", "phantom.png", "logo.png", "horse.png",
            "multipage.tif", "multipage_rgb.tif", "no_time_for_that_tiny.gif"}


def test_skimage_set_is_every_suitable_shipped_photo():
    with pytest.warns(SmallProbeSetWarning):
        probe = probe_by_name("skimage")
    assert len(probe) == len(SKIMAGE_IMAGES) == 13
    assert {"motorcycle_left.png", "motorcycle_right.png", "moon.png"} <= set(probe.ids)
    shipped = {p.name for p in SKIMAGE_DATA.iterdir() if p.suffix.lower() in {".png", ".jpg", ".tif", ".gif"}}
    assert set(probe.ids) | EXCLUDED == shipped  # every shipped image is either used or excluded with a reason
    assert not set(probe.ids) & EXCLUDED
    for path in probe.paths:
        with Image.open(path) as im:
            assert min(im.size) >= 256 and im.mode in ("RGB", "L")


def _folder(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        Image.fromarray(np.full((4, 4, 3), i, dtype=np.uint8)).save(root / f"{i:03d}.png")
    return root


def test_small_sets_warn_and_large_ones_do_not(tmp_path):
    with pytest.warns(SmallProbeSetWarning, match=r"has 3 images \(fewer than 50\).*--bootstrap B"):
        resolve_probe(_folder(tmp_path / "three", 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallProbeSetWarning)
        assert len(resolve_probe(_folder(tmp_path / "fifty", SMALL_PROBE_SET))) == SMALL_PROBE_SET


def test_the_cli_prints_the_warning_as_one_line(tmp_path, capsys, monkeypatch):
    from rsa_toolkit.cli import main as cli_main

    def probe_only(args):  # any command that opens a probe set
        from rsa_toolkit.cli._sources import open_probe

        open_probe(args)
        return 0

    parser = cli_main.build_parser
    monkeypatch.setattr(cli_main, "build_parser", lambda: _with_command(parser(), probe_only))
    assert cli_main.main(["probe-only", "--images", str(_folder(tmp_path / "few", 4))]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("rsa-toolkit: warning: probe set ") and "--bootstrap" in err[0]


def _with_command(parser, run):
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    p = sub.add_parser("probe-only")
    p.add_argument("--images")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=run)
    return parser
