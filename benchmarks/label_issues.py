"""What the suspected label errors add to a run: the check, its table and its gallery.

Run from the repository root on a finished run (the default MNIST run, say)::

    .venv/bin/python benchmarks/label_issues.py reports/default

It reads the run's ``predictions.csv`` (each model's test probabilities, as
the run had them to six decimals) and times, as the median of five in this
process: the check and ``label_issues.csv``'s bytes (the run's
``label_issues`` stage), and drawing the gallery of the first 24 (part of the
run's ``figures`` stage).  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from reportgen.artifacts.label_issues import GALLERY_IMAGES
from reportgen.artifacts.label_table import label_issues_frame
from reportgen.artifacts.tables import csv_bytes
from reportgen.evaluate.label_summary import find_label_issues
from reportgen.figures.label_issues import label_issues_figure
from reportgen.figures.style import render_png


def median_seconds(work: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory")
    args = parser.parse_args(argv)
    table = pd.read_csv(args.run / "predictions.csv", keep_default_na=False)
    models = list(dict.fromkeys(table["model"]))
    columns = [c for c in table.columns if c.startswith("p") and c[1:].isdigit()]
    probabilities = {m: table.loc[table["model"] == m, columns].to_numpy() for m in models}
    first = table[table["model"] == models[0]]
    labels = first["label"].to_numpy()
    classes = [
        str(name) for _, name in sorted(set(zip(first["label"], first["label_name"], strict=True)))
    ]

    def check() -> bytes:
        found = find_label_issues(probabilities, labels, classes=classes)
        return csv_bytes(label_issues_frame(found.rows, models))

    found = find_label_issues(probabilities, labels, classes=classes)
    shown = found.rows[:GALLERY_IMAGES]
    images = np.zeros((len(shown), 28, 28), dtype=np.uint8)  # the pixels do not change the cost

    def gallery() -> bytes:
        return render_png(label_issues_figure(
            images, [r.index for r in shown], [r.label for r in shown],
            [r.suggested for r in shown],
            [[r.evidence[m].p_label for m in models] for r in shown],
            [[r.evidence[m].p_suggested for m in models] for r in shown],
            models=models, classes=classes, total=len(found.rows),
        ))  # fmt: skip

    result = {
        "test_images": len(labels),
        "models": models,
        "suspected": len(found.rows),
        "check_and_table_s": round(median_seconds(check), 4),
        "gallery_s": round(median_seconds(gallery), 4),
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
