"""Progress lines in a log (no terminal): start, at most one line per interval, end; silent when disabled."""

from __future__ import annotations

import io

import pytest

from rsa_toolkit import progress as progress_module
from rsa_toolkit.progress import progress, stage


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


def test_a_log_gets_a_start_line_timed_lines_and_an_end_line(clock: FakeClock) -> None:
    out = io.StringIO()
    bar = progress(total=30, desc="teacher depth", unit="img", stream=out, interval=10.0)
    for step in range(30):
        clock.now += 1.0  # one image a second: a line after 10 s and after 20 s of work
        bar.update(1)
        if step == 14:
            bar.set_postfix("loss 0.25")
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "teacher depth: started (30 img)"
    assert lines[1] == "teacher depth: 10/30 img (1 img/s, ETA 20 s)"
    assert lines[2] == "teacher depth: 20/30 img (1 img/s, ETA 10 s), loss 0.25"
    assert lines[3] == "teacher depth: done, 30 img in 30 s"
    assert len(lines) == 4


def test_iterating_closes_once_and_yields_everything(clock: FakeClock) -> None:
    out = io.StringIO()
    items = []
    for item in progress(range(5), desc="RDMs", stream=out, interval=10.0):
        items.append(item)
        clock.now += 3.0  # 15 s in all: the start line once it has lasted 10 s, then the end line
    assert items == [0, 1, 2, 3, 4]
    assert out.getvalue().splitlines() == ["RDMs: started (5 it)", "RDMs: 4/5 it (0.333 it/s, ETA 3 s)",
                                           "RDMs: done, 5 it in 15 s"]


def test_work_shorter_than_an_interval_writes_nothing(clock: FakeClock) -> None:
    out = io.StringIO()
    for _ in progress(range(3), desc="RDMs", stream=out, interval=10.0):
        clock.now += 1.0
    assert out.getvalue() == ""


def test_many_short_reporters_still_write_a_line_every_interval(clock: FakeClock) -> None:
    out = io.StringIO()
    for teacher in range(8):  # 8 teachers of 3 s each, none 10 s long: a line after each 10 s of silence
        with progress(total=3, desc=f"teacher {teacher}", unit="img", stream=out, interval=10.0) as bar:
            for _ in range(3):
                clock.now += 1.0
                bar.update(1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "teacher 3: started (3 img)"  # the log's first 10 s of silence end in teacher 3
    assert sum(line.endswith("started (3 img)") for line in lines) == 2  # at 12 s and 24 s of work


def test_disabled_writes_nothing(clock: FakeClock) -> None:
    out = io.StringIO()
    for _ in progress(range(3), desc="x", stream=out, enabled=False):
        clock.now += 60
    stage("ranking", enabled=False, stream=out)
    assert out.getvalue() == ""


def test_stage_is_one_line() -> None:
    out = io.StringIO()
    stage("ranking 20 teachers", stream=out)
    assert out.getvalue() == "ranking 20 teachers\n"


def test_unknown_total_and_long_durations(clock: FakeClock) -> None:
    out = io.StringIO()
    with progress(desc="steps", unit="step", stream=out, interval=600) as bar:
        clock.now += 3725
        bar.update(7)
    lines = out.getvalue().splitlines()
    assert lines[0] == "steps: started"
    assert lines[1].startswith("steps: 7 step (")
    assert lines[-1] == "steps: done, 7 step in 1 h 02 min"
