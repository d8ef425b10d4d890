"""Replace one generated section of a markdown file, between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, so
hand-written text around it survives a re-run; the file is replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(path: Path, name: str, lines: list[str]) -> None:
    start, end = markers(name)
    text = path.read_text() if path.exists() else f"{start}\n{end}\n"
    if start not in text or end not in text:
        raise SystemExit(f"{path}: the markers {start} / {end} are missing; add them where the results go.")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(head + "\n".join([start, *lines, end]) + tail)
    os.replace(tmp, path)
