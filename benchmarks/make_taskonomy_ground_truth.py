"""Regenerate data/taskonomy/*.csv, the Taskonomy transfer ground truth used by ``rsa-toolkit evaluate``.

    python benchmarks/make_taskonomy_ground_truth.py ../shared/reference/taskonomy            # writes data/taskonomy
    python benchmarks/make_taskonomy_ground_truth.py REFERENCE_DIR --out OTHER_DIR

REFERENCE_DIR holds the tables extracted from the Taskonomy release's result pickles (see data/taskonomy/README.md):
rows = source task, columns = target task, under the pickles' key names. This script renames the tasks with
taskonomy_task_name_mapping.csv (affinity_pickle_name -> visualpriors_name, our canonical names), keeps the 20
single-image tasks of rsa_toolkit.tasks, orders rows and columns as the task registry does, and copies every number
as the same text (no float round trip), blank cells staying blank. What it drops is printed.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from rsa_toolkit.tasks import list_tasks

ROOT = Path(__file__).resolve().parents[1]
#: output file -> the reference table it is made from
TABLES = {
    "affinity_first_order.csv": "taskonomy_all_affinities_first_order_matrix.csv",
    "winrate_vs_pixels_16k_first_order.csv": "taskonomy_wins_vs_pixels_16k_first_order_matrix.csv",
}
MAPPING = "taskonomy_task_name_mapping.csv"


def read_table(path: Path) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
    """(source keys, target keys, {(source, target): cell text}) of one reference table."""
    header, *rows = [r for r in csv.reader(path.read_text().splitlines()) if r]
    targets = header[1:]
    cells = {}
    for row in rows:
        if len(row) != len(header):
            raise SystemExit(f"{path}: row '{row[0]}' has {len(row) - 1} cells, the header {len(targets)}.")
        for target, text in zip(targets, row[1:]):
            if text.strip():
                float(text)  # a non-number here means the reference table is not what this script expects
            cells[row[0], target] = text.strip()
    return [r[0] for r in rows], targets, cells


def pickle_key_to_task(reference: Path) -> dict[str, str]:
    with (reference / MAPPING).open(newline="") as fh:
        return {row["affinity_pickle_name"]: row["visualpriors_name"] for row in csv.DictReader(fh)}


def convert(reference: Path, table: str, names: dict[str, str]) -> tuple[str, list[str], list[str]]:
    """The CSV text in our format, and the dropped source and target keys."""
    sources, targets, cells = read_table(reference / table)
    order = [t.name for t in list_tasks()]
    canonical = {key: names[key] for key in {*sources, *targets} if names.get(key) in order}
    by_task = {task: key for key, task in canonical.items()}
    if len(by_task) != len(canonical):
        raise SystemExit(f"{table}: two keys map to the same task: {sorted(canonical)}")
    rows = [t for t in order if by_task.get(t) in sources]
    cols = [t for t in order if by_task.get(t) in targets]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *cols])
    for s in rows:
        writer.writerow([s, *(cells[by_task[s], by_task[t]] for t in cols)])
    dropped_sources = [k for k in sources if k not in canonical]
    dropped_targets = [k for k in targets if k not in canonical]
    return buffer.getvalue(), dropped_sources, dropped_targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="directory with the Taskonomy reference tables and mapping")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "taskonomy", help="default data/taskonomy")
    args = parser.parse_args()
    names = pickle_key_to_task(args.reference)
    args.out.mkdir(parents=True, exist_ok=True)
    for out_name, table in TABLES.items():
        text, dropped_sources, dropped_targets = convert(args.reference, table, names)
        (args.out / out_name).write_text(text)
        n_rows, n_cols = text.count("\n") - 1, text.split("\n", 1)[0].count(",")
        print(f"{out_name}: {n_rows} sources x {n_cols} targets from {table}\n"
              f"  dropped sources: {', '.join(dropped_sources) or '-'}\n"
              f"  dropped targets: {', '.join(dropped_targets) or '-'}")


if __name__ == "__main__":
    main()
