"""Reports on one or more runs, in the layout of the seed's tables and figures (Luo et al., ECCV 2020).

``write_report(RUN_DIRS, OUT)`` writes into OUT:

==========================  ===========================================================================================
file                        holds
==========================  ===========================================================================================
``table1_truth.md/.csv``    Table 1: per task rmse, rel, δ<1.25, δ<1.25² (angle for normals, accuracy for classes)
                            against ground truth; rows: the teachers, then each run; plus #params
``table2_teachers.md/.csv`` Table 2: the same against the teachers' outputs (how faithfully each student imitates)
``table3_speed.md/.csv``    Table 3: #params and inference time per image: the n teachers, then each run
                            (KD n-to-n, KD n-to-1, SOKA), and the ratio to the teachers
``curves.html``             seed Fig. 3: per-task distillation losses and loss weights over the steps of every run
                            (plotly, self-contained, works offline)
``predictions-<run>.png``   seed Fig. 2: test frames; per task, the student's, the teacher's and the true output
``report.md``               the three tables, each run's auxiliary choice, and links to the figures
==========================  ===========================================================================================

Runs without ``metrics.json`` are evaluated first (:func:`amalgamate.evaluation.evaluate.evaluate_run`); the tables
and figures read each run's :class:`amalgamate.evaluation.results.Evaluation` back from it.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from rsa_toolkit.files import write_faults
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.progress import stage

from amalgamate.config import METHODS
from amalgamate.evaluation.figures import curves_figure, predictions_figure
from amalgamate.evaluation.results import Evaluation, Scores, StudentScores
from amalgamate.run_dir import RunDir
from amalgamate.run_files import write_bytes

__all__ = ["write_report", "run_label", "truth_table", "teacher_table", "speed_table"]

_METRIC_TITLES = {"rmse": "rmse", "rel": "rel", "delta1": "δ<1.25", "delta2": "δ<1.25²", "angle": "angle°",
                  "angle_11": "<11.25°", "accuracy": "acc", "pair_accuracy": "pair acc", "f_score": "F (ODS)"}


def run_label(metrics: Evaluation) -> str:
    method = METHODS.get(metrics.method)
    label = method.label
    if method.self_coordinated:  # the weighting and the auxiliary are choices
        label += f" ({metrics.weighting}" + (f", aux {metrics.aux})" if metrics.aux else ")")
    return label


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def _vs_truth(scores: StudentScores) -> Scores:
    return scores.vs_truth or {}


def _vs_teacher(scores: StudentScores) -> Scores:
    return scores.vs_teacher


def _columns(runs: list[Evaluation], reference: Callable[[StudentScores], Scores]) -> list[tuple[str, str]]:
    from amalgamate.evaluation.metrics import METRIC_ORDER

    cols: dict[tuple[str, str], None] = {}
    for m in runs:
        for task in m.targets:
            for metric in sorted(reference(m.student[task]), key=METRIC_ORDER.index):
                cols[(task, metric)] = None
    return list(cols)


def _table(rows: list[tuple[str, dict[tuple[str, str], object], int | None]],
           columns: list[tuple[str, str]]) -> tuple[list[str], list[list[str]]]:
    header = ["model", *(f"{task} {_METRIC_TITLES.get(metric, metric)}" for task, metric in columns), "#params"]
    body = [[label, *(_fmt(values.get(c)) for c in columns), _fmt(params)] for label, values, params in rows]
    return header, body


def truth_table(runs: list[Evaluation]) -> tuple[list[str], list[list[str]]]:
    """Table 1: against ground truth; the teachers' row from the first run with ground truth."""
    with_truth = [m for m in runs if m.eval_set.ground_truth]
    if not with_truth:
        return [], []
    columns = _columns(with_truth, _vs_truth)
    teacher_values: dict[tuple[str, str], object] = {}
    teacher_params = 0
    for m in with_truth:
        for task, scores in m.teachers.items():
            for metric, value in scores.items():
                teacher_values.setdefault((task, metric), value)
    seen = {}
    for m in with_truth:
        seen.update(m.parameters.teachers)
    teacher_params = sum(seen.values())
    rows = [(f"teachers ({len(seen)})", teacher_values, teacher_params)]
    for m in with_truth:
        values = {(t, k): v for t in m.targets for k, v in _vs_truth(m.student[t]).items()}
        rows.append((run_label(m), values, m.parameters.student))
    return _table(rows, columns)


def teacher_table(runs: list[Evaluation]) -> tuple[list[str], list[list[str]]]:
    """Table 2: each student against its teachers' outputs."""
    columns = _columns(runs, _vs_teacher)
    rows = [(run_label(m), {(t, k): v for t in m.targets for k, v in m.student[t].vs_teacher.items()},
             m.parameters.student) for m in runs]
    return _table(rows, columns)


def speed_table(runs: list[Evaluation], times: dict[str, float] | None = None) -> tuple[list[str], list[list[str]]]:
    """Table 3: sizes and inference times, the teachers of the first run as the reference. ``times`` (from
    :func:`time_runs`: "teachers" and one entry per run, in order) replaces the times each evaluation measured on its
    own, which other load on the machine may have skewed."""
    header = ["model", "targets", "#params", "ms / image", "params vs teachers", "time vs teachers"]
    first = runs[0]
    teachers_ms = times["teachers"] if times else first.inference_ms_per_image.teachers
    body = [[f"teachers ({len(first.targets)})", ", ".join(first.targets),
             _fmt(first.parameters.teachers_total), _fmt(teachers_ms), "1", "1"]]
    for i, m in enumerate(runs):
        ms = times[str(i)] if times else m.inference_ms_per_image.student
        body.append([run_label(m), ", ".join(m.targets), _fmt(m.parameters.student), _fmt(ms),
                     _fmt(m.parameters.student / first.parameters.teachers_total),
                     _fmt(ms / teachers_ms)])
    return header, body


def time_runs(runs: Sequence[RunDir], batch_size: int = 32, rounds: int = 5,
              device: str | torch.device = "cpu") -> dict[str, float]:
    """Inference ms per image of every run's student and of the first run's teachers, timed together in this process
    (:func:`amalgamate.evaluation.evaluate.time_together`) on one batch of noise at each model's input size (time does
    not depend on the pixels)."""
    from rsa_toolkit.devices import resolve_device

    from amalgamate.evaluation.evaluate import load_student, time_together
    from amalgamate.training.setup import setup_run

    dev = resolve_device(device)
    setup = setup_run(runs[0].config())
    generator = torch.Generator().manual_seed(0)

    def batch(size: int) -> torch.Tensor:
        return (torch.rand(batch_size, 3, size, size, generator=generator) * 2 - 1).to(dev)

    teachers = [(t.teacher.build().eval().to(dev), batch(t.teacher.preprocessing.size)) for t in setup.targets]
    students = [load_student(run)[0].to(dev) for run in runs]
    inputs = [batch(int(s.input_size)) for s in students]
    calls = {"teachers": lambda: [net(x) for net, x in teachers]}
    calls |= {str(i): (lambda s=s, x=x: s(x)) for i, (s, x) in enumerate(zip(students, inputs))}
    with torch.inference_mode():
        return time_together(calls, batch_size, rounds=rounds)


def _markdown(header: list[str], body: list[list[str]]) -> str:
    if not header:
        return "_no run was evaluated against ground truth_\n"
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> Path:
    write_bytes(path, text.encode())
    return path


def _write_csv(path: Path, header: list[str], body: list[list[str]]) -> Path:
    import io

    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows([[c.replace(",", "") if c[:1].isdigit() else c for c in row] for row in body])
    return write_bytes(path, text.getvalue().encode())


# --- the report -----------------------------------------------------------------------------------------------------------

def _slug(label: str, taken: set[str]) -> str:
    base = "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")
    while "--" in base:
        base = base.replace("--", "-")
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


def _evaluation(run: RunDir) -> Evaluation:
    """The run's evaluation, read back from its metrics.json (checked: a damaged file is one line)."""
    record = run.read_json("metrics.json")
    try:
        return Evaluation.from_json(record)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserInputError(f"'{run.file('metrics.json')}' is damaged ({type(exc).__name__}: {exc}); delete it and "
                             f"rewrite it with amalgamate eval {run.path}.") from None


def _check_writable(out: Path) -> None:
    """The report directory, or the nearest existing directory above it, must be writable."""
    where = out
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir() or not os.access(where, os.W_OK | os.X_OK):
        raise UserInputError(f"--out '{out}': cannot write in '{where}' (read-only or no permission); choose "
                             "another --out.")


def _timed(runs: Sequence[RunDir], device: torch.device, progress: bool) -> dict[str, float]:
    stage(f"timing {len(runs)} student(s) and the teachers on {device}", enabled=progress)
    return time_runs(runs, device=device)


def write_report(run_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                 device: str | torch.device = "cpu", progress: bool = False) -> list[Path]:
    """Write the tables and figures of ``run_dirs`` into ``out_dir`` (created), evaluating and timing the models on
    ``device``; returns the paths written. ``progress``: one line on stderr per stage (evaluating a run, timing,
    figures) and the evaluation's progress (:mod:`rsa_toolkit.progress`)."""
    from rsa_toolkit.viz.plots import save_html, save_png

    from rsa_toolkit.devices import resolve_device

    from amalgamate.evaluation.evaluate import evaluate_run

    device = resolve_device(device)  # a bad device stops the report before anything is written
    if not run_dirs:
        raise UserInputError("give at least one run directory to report on.")
    runs = [RunDir(d) for d in run_dirs]
    for run in runs:
        if not run.has_run():
            raise UserInputError(f"'{run.path}' is not an amalgamate run directory (no config.json).")
        run.config(), run.read_json("aux.json")  # damaged files stop the report before any work
        if run.file("metrics.json").is_file():
            _evaluation(run)
        else:  # it will be evaluated: metrics.json is written there
            run.check_writable(what="run directory", fix="make it writable, or evaluate a copy of the run")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"out_dir='{out}' is a file; give a directory for the report.", parameter="out_dir")
    _check_writable(out)  # before evaluating and timing
    metrics = []
    for run in runs:
        if not run.file("metrics.json").is_file():
            stage(f"evaluating run {run.path}", enabled=progress)
            evaluate_run(run.path, device=device, progress=progress)
        metrics.append(_evaluation(run))
    with write_faults(out):
        out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tables = {"table1_truth": ("Table 1: against ground truth", truth_table(metrics)),
              "table2_teachers": ("Table 2: against the teachers' outputs", teacher_table(metrics)),
              "table3_speed": ("Table 3: size and inference time (timed together in this process)",
                               speed_table(metrics, _timed(runs, device, progress)))}
    sections = ["# Amalgamation report", ""]
    for run, m in zip(runs, metrics):
        aux = run.read_json("aux.json")
        sections.append(f"- **{run_label(m)}**: `{run.path}`, targets {', '.join(m.targets)}, "
                        f"{m.model.file} at step {m.model.step}; auxiliary: "
                        f"{aux['chosen'] or 'none'} ({aux['why']}); evaluated on {m.eval_set.images} images "
                        f"({m.eval_set.source})")
    sections.append("")
    for stem, (title, (header, body)) in tables.items():
        sections += [f"## {title}", "", _markdown(header, body)]
        written.append(_write_text(out / f"{stem}.md", f"# {title}\n\n" + _markdown(header, body)))
        if header:
            written.append(_write_csv(out / f"{stem}.csv", header, body))
    stage(f"figures: training curves and predictions in {out}", enabled=progress)
    curves = [(run_label(m), run.log_entries()) for run, m in zip(runs, metrics)]
    with write_faults(out / "curves.html"):
        save_html(curves_figure(curves), out / "curves.html")
    written.append(out / "curves.html")
    sections += ["## Figures", "", "- [training curves](curves.html) (losses and weights per task)"]
    taken: set[str] = set()
    for run, m in zip(runs, metrics):
        if not run.file("examples.npz").is_file():
            continue
        with np.load(run.file("examples.npz")) as data:
            examples = {k: data[k] for k in data.files}
        path = out / f"predictions-{_slug(run_label(m), taken)}.png"
        with write_faults(path):
            save_png(predictions_figure(examples, m, label=run_label(m)), path, dpi=110)
        written.append(path)
        sections.append(f"- ![{run_label(m)}]({path.name})")
    written.append(_write_text(out / "report.md", "\n".join(sections) + "\n"))
    return written
