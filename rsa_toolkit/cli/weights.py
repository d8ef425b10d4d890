"""``rsa-toolkit weights fetch``: download the visualpriors Taskonomy checkpoints (the only command that downloads)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # rsa_toolkit.zoo imports torch: loaded only when the command runs, not for every command's parser
    from rsa_toolkit.zoo.taskonomy.fetch import FetchProgress

_PARTS = ("encoder", "decoder")  # fetch.FETCH_PARTS (pinned by a test)
_DEFAULT_TIMEOUT = 60.0  # fetch.DEFAULT_TIMEOUT (pinned by a test)
_EXAMPLE = "rsa-toolkit weights fetch --tasks depth normal --dest ~/taskonomy"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser("weights", help="fetch the Taskonomy checkpoints (visualpriors release)",
                       description="Taskonomy checkpoint files. 'weights fetch' is the only rsa-toolkit command that "
                                   "downloads anything.",
                       epilog=f"example: {_EXAMPLE}")
    w.set_defaults(run=lambda args: _print_help(w))
    actions = w.add_subparsers(title="actions", metavar="ACTION")

    f = actions.add_parser(
        "fetch", help="download checkpoints into a folder, resumable, checked against their sha256",
        description="Download the visualpriors checkpoint files {task}_{encoder|decoder}-<sha256>.pth into DEST "
                    "from the visualpriors release (github.com/alexsax/visual-prior; see --base-url). A file "
                    "already in DEST with the right sha256 is skipped; an interrupted download resumes from "
                    "DEST/.<file name>.part; every file is checked against the sha256 in its name before it "
                    "appears in DEST. No other command downloads.",
        epilog=f"example: {_EXAMPLE} && rsa-toolkit matrix --weights-dir ~/taskonomy --images PROBE_DIR "
               f"--out sim.png")
    f.add_argument("--tasks", nargs="+", required=True, metavar="TASK",
                   help="tasks to fetch (names or aliases, e.g. depth normal), or 'all' for the 20 tasks")
    f.add_argument("--dest", required=True, metavar="DIR",
                   help="folder for the files (created if missing); pass it to --weights-dir afterwards")
    f.add_argument("--parts", nargs="+", default=["encoder"], choices=_PARTS, metavar="PART",
                   help="encoder (default: what RSA needs) and/or decoder")
    f.add_argument("--base-url", default=None, metavar="URL",
                   help="folder URL holding the files, e.g. a mirror (default: visualpriors' folder "
                        "https://github.com/alexsax/visual-prior/raw/networks/assets/pytorch/)")
    f.add_argument("--timeout", type=float, default=_DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"give up when the server stalls this long (default {_DEFAULT_TIMEOUT:g}); run again to "
                        f"resume")
    f.add_argument("--quiet", "-q", action="store_true", help="no progress or hints")
    f.set_defaults(run=run_fetch)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from rsa_toolkit.zoo.taskonomy.fetch import VISUALPRIORS_BASE_URL, fetch_weights

    tasks = None if [t.lower() for t in args.tasks] == ["all"] else args.tasks
    display = _Progress(sys.stderr, quiet=args.quiet, live=not args.quiet and sys.stderr.isatty())
    paths = fetch_weights(args.dest, tasks, parts=args.parts, base_url=args.base_url or VISUALPRIORS_BASE_URL,
                          timeout=args.timeout, progress=display)
    if not args.quiet:
        dest = shlex.quote(str(args.dest))
        counts = f"{display.fetched} downloaded, {display.present} already present"
        print(f"{len(paths)} checkpoint file{'s' if len(paths) != 1 else ''} in {args.dest} ({counts}); next: "
              f"rsa-toolkit matrix --weights-dir {dest} --images PROBE_DIR --out sim.png", file=sys.stderr)
    return 0


class _Progress:
    """Prints one line per file on ``stream`` (bytes, rate); on a terminal also a live line while it downloads."""

    def __init__(self, stream: TextIO, *, quiet: bool, live: bool) -> None:
        self.stream, self.quiet, self.live = stream, quiet, live
        self.fetched = self.present = 0
        self._started = self._last_draw = 0.0

    def __call__(self, step: FetchProgress) -> None:
        if step.event == "present":
            self.present += 1
            self._say(f"{step.name}: already present (sha256 ok)")
        elif step.event == "not_released":
            task, part = step.name.rsplit("_", 1)
            self._say(f"{task}: visualpriors released no {part}; skipped")
        elif step.event == "start":
            self._started = self._last_draw = time.monotonic()
            if step.resumed_from:
                self._say(f"{step.name}: resuming at {_size(step.resumed_from)}")
        elif step.event == "data" and self.live and not self.quiet:
            now = time.monotonic()
            if now - self._last_draw >= 0.25:
                self._last_draw = now
                of = f" / {_size(step.total)}" if step.total else ""
                self.stream.write(f"\r{step.name}: {_size(step.done)}{of} "
                                  f"{self._rate(step.done - step.resumed_from, now)}\x1b[K")
                self.stream.flush()
        elif step.event == "done":
            self.fetched += 1
            now = time.monotonic()
            got = step.done - step.resumed_from
            if got == 0:  # an earlier run had fetched every byte but stopped before the check and the rename
                self._say(f"{step.name}: {_size(step.done)} (all from an earlier run), sha256 ok")
                return
            resumed = f", {_size(step.resumed_from)} from an earlier run" if step.resumed_from else ""
            self._say(f"{step.name}: {_size(step.done)} (fetched {_size(got)} at {self._rate(got, now)}{resumed}), "
                      f"sha256 ok")

    def _rate(self, nbytes: int, now: float) -> str:
        elapsed = now - self._started
        return f"{_size(nbytes / elapsed)}/s" if elapsed > 0 else "-"

    def _say(self, line: str) -> None:
        if not self.quiet:
            self.stream.write(("\r" if self.live else "") + line + ("\x1b[K" if self.live else "") + "\n")
            self.stream.flush()


def _size(nbytes: float | None) -> str:
    if nbytes is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} GB"
