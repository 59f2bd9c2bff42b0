"""The files of a run that DVC (or any tool reading plain JSON and CSV) takes as they are.

``scalars.json`` is a flat metrics file (see :mod:`reportgen.export.scalars`),
``curves/<model>.csv`` a model's per-epoch history and
``confusion/<model>.csv`` its confusion matrix as one row per cell: the
README's ``dvc.yaml`` names them under ``metrics:`` and ``plots:``.
"""

from __future__ import annotations

import pandas as pd

from reportgen.artifacts.layout import RunPaths
from reportgen.artifacts.metrics import Metrics
from reportgen.artifacts.tables import confusion_frame, csv_bytes, curves_frame
from reportgen.core import fileio
from reportgen.export.scalars import scalars


def write_dvc_files(paths: RunPaths, metrics: Metrics, history: pd.DataFrame) -> None:
    """Write ``scalars.json`` and each model's ``curves`` and ``confusion`` tables."""
    fileio.write_json(paths.scalars, scalars(metrics))
    for name, model in metrics.models.items():
        fileio.write_atomic(paths.curves(name), csv_bytes(curves_frame(history, name)))
        if model.confusion_matrix is not None:
            matrix = confusion_frame(model.confusion_matrix, metrics.dataset.classes)
            fileio.write_atomic(paths.confusion(name), csv_bytes(matrix))
