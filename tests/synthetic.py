"""A synthetic but complete run directory, built through the metrics contract.

``metrics.json`` is made with the same :mod:`reportgen.artifacts.metrics`
types, the same :mod:`reportgen.evaluate` functions and the same figure
names as a real run, from made-up predictions, and the manifest with the
same :class:`~reportgen.artifacts.manifest.RunManifest`, so the fixture
cannot drift from what runs write; the figures are small fixed PNGs, so
nothing needs MNIST, training or matplotlib.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reportgen.artifacts import layout
from reportgen.artifacts.catalogue import figure_name, kinds
from reportgen.artifacts.manifest import (
    EnvironmentFacts,
    RunManifest,
    artifact_hashes,
    read_any_manifest,
)
from reportgen.artifacts.metrics import (
    DATASET_NAME,
    SCHEMA,
    DataFingerprint,
    DatasetInfo,
    Metrics,
    RunInfo,
)
from reportgen.artifacts.model_metrics import (
    AccuracyInterval,
    AttributedImage,
    AttributionGallery,
    Attributions,
    CurveDiagnosis,
    Divergence,
    ModelMetrics,
    PairGallery,
)
from reportgen.artifacts.significance import (
    DifferenceInterval,
    McNemarTest,
    Significance,
)
from reportgen.core import fileio
from reportgen.data.idx import MNIST_CLASSES, MNIST_FILES
from reportgen.evaluate import assemble, calibration, classification, per_class, ranking
from reportgen.evaluate.label_summary import LabelFindings, find_label_issues
from reportgen.evaluate.probabilities import softmax

MODELS = ("baseline", "regularized")
HISTORY = (  # history.csv as a run writes it: every column, one epoch per model
    "model,epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr\n"
    "baseline,1,0.5,0.9,0.55,0.89,0.001\n"
    "regularized,1,0.6,0.88,0.5,0.9,0.001\n"
)
# (model, seed, 0: labels / 1: predictions): the labels, then each model's predictions.
CLASS_RECALL_INPUTS = (("baseline", 0, 0), ("baseline", 0, 1), ("regularized", 1, 1))
ACCURACY = {"baseline": 0.90, "regularized": 0.93}
TEST_SIZE = 1_000
CONFIG = """seed = 7

[run]
name = "synthetic"
title = {title}
author = "Test Author"
{date}
[data]
root = "data"
batch_size = 64

[train]
epochs = 3
optimizer = "adam"
lr = 0.001

[models.baseline]
hidden = [256, 128]

[models.regularized]
hidden = [256, 128]
dropout = 0.3
batchnorm = true
weight_decay = 0.0001
scheduler = "step"
step_size = 5
gamma = 0.5
"""

# A fixed zlib stream (a 24×16 RGB stripe pattern) rather than matplotlib output, so the
# figures' bytes, and the SHA-256 values the golden file shows, never change.
PNG_IDAT = bytes.fromhex(
    "78da6360e01291d330b2710b884ac9ab68ea99b660d5967d272edd7946b2f8a841a3068d1a346a106506010068fc059f"
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(text: str) -> bytes:
    """Return a small, fixed PNG whose tEXt chunk names it (so every figure differs)."""
    header = struct.pack(">IIBBBBB", 24, 16, 8, 2, 0, 0, 0)  # 24×16, 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"tEXt", b"Title\0" + text.encode("ascii"))
        + _chunk(b"IDAT", PNG_IDAT)
        + _chunk(b"IEND", b"")
    )


def _predictions(
    accuracy: float, seed: int, size: int = TEST_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(10), size // 10)
    y_pred = y_true.copy()
    wrong = rng.random(size) > accuracy
    y_pred[wrong] = (y_true[wrong] + rng.choice([1, 5], size=int(wrong.sum()))) % 10
    return y_true, y_pred


def _logits(y_pred: np.ndarray, seed: int) -> np.ndarray:
    """Return made-up float64 logits whose argmax is ``y_pred``: confident, with some spread."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(y_pred), 10))
    logits[np.arange(len(y_pred)), y_pred] += 4.0 + rng.exponential(2.0, size=len(y_pred))
    return logits


def _attributions(
    name: str, galleries: list[PairGallery], misclassified: list[int]
) -> Attributions:
    """Return made-up attribution summaries for the grid and each gallery (regions in turn)."""
    regions = ["top centre", "centre", "top centre", "bottom left", None]

    def images(indices: list[int], true: int, pred: int) -> list[AttributedImage]:
        return [
            AttributedImage(index=i, true=true, pred=pred, region=regions[k % len(regions)],
                            region_share=0.0 if regions[k % len(regions)] is None else 0.4)
            for k, i in enumerate(indices[:12])
        ]  # fmt: skip

    shown = [
        AttributionGallery(source="misclassified", true=None, pred=None,
                           figure=figure_name("misclassified_attributions", name),
                           images=images(misclassified, 4, 9))
    ]  # fmt: skip
    shown += [
        AttributionGallery(source="pair", true=g.true, pred=g.pred,
                           figure=figure_name("pair_attributions", name, true=g.true, pred=g.pred),
                           images=images(g.indices, g.true, g.pred))
        for g in galleries
    ]  # fmt: skip
    return Attributions(method="integrated-gradients", baseline="black", steps=50, galleries=shown)


def model_metrics(
    name: str, seed: int, *, divergence: Divergence | None = None, level: float = 0.95
) -> ModelMetrics:
    """Return one model's metrics, measured on made-up predictions of the given accuracy."""
    y_true, y_pred = _predictions(ACCURACY[name], seed)
    matrix = classification.confusion(y_true, y_pred, num_classes=10)
    errors = classification.class_errors(matrix)
    test_accuracy = classification.accuracy(y_true, y_pred)
    train_accuracy = min(1.0, test_accuracy + 0.02)
    test_logits = _logits(y_pred, seed)
    y_val, val_pred = _predictions(ACCURACY[name], seed + 10, size=500)
    calibrated = calibration.calibrate(test_logits, y_true, _logits(val_pred, seed + 20), y_val)
    misclassified = classification.misclassified_indices(y_true, y_pred, limit=10)
    finite = divergence is None or divergence.finite_logits  # else nothing from probabilities
    galleries = classification.pair_galleries(
        matrix,
        y_true,
        y_pred,
        configured=[(4, 9)],
        auto=1,
        limit=8,
        figure=lambda true, pred: figure_name("pair", name, true=true, pred=pred),
    )
    return ModelMetrics(
        parameters=235_146 if name == "baseline" else 235_914,
        epochs=3,
        train_accuracy=train_accuracy,
        val_accuracy=test_accuracy - 0.005,
        test_accuracy=test_accuracy,
        train_test_gap=train_accuracy - test_accuracy,
        test_loss=calibrated.nll if finite else None,
        classification_report=classification.classification_report(
            y_true, y_pred, num_classes=10, resamples=200, seed=seed
        ),
        confusion_matrix=matrix.tolist(),
        class_errors=errors,
        worst_classes=classification.worst_classes(errors, names=MNIST_CLASSES),
        confused_pairs=classification.most_confused_pairs(matrix, count=3),
        divergence=divergence,
        accuracy_ci=AccuracyInterval(
            level=level, resamples=1000, low=test_accuracy - 0.018, high=test_accuracy + 0.017
        ),
        diagnosis=CurveDiagnosis(
            labels=["good fit"],
            summary="Train and validation loss fall together.",
            evidence=["validation loss fell in 2 of 2 epochs"],
        ),
        sample_index=0,
        misclassified=misclassified,
        pair_galleries=galleries,
        figures={
            kind.kind: figure_name(kind.kind, name)
            for kind in kinds("model")
            if kind.applies(len(MNIST_CLASSES))
        },
        calibration=assemble.calibration_metrics(name, calibrated) if finite else None,
        one_vs_rest=(
            assemble.one_vs_rest(ranking.rankings(softmax(test_logits), y_true)) if finite else None
        ),
        attributions=_attributions(name, galleries, misclassified) if finite else None,
    )


def label_findings() -> LabelFindings:
    """Return the suspected label errors of the synthetic models' made-up probabilities."""
    y_true = _predictions(ACCURACY[MODELS[0]], 0)[0]
    probabilities = {name: softmax(_logits(_predictions(ACCURACY[name], seed)[1], seed))
                     for seed, name in enumerate(MODELS)}  # fmt: skip
    return find_label_issues(probabilities, y_true, classes=MNIST_CLASSES)


def metrics(*, divergence: Divergence | None = None, level: float = 0.95) -> Metrics:
    """Return the synthetic run's whole ``metrics.json`` (``divergence`` is the baseline's)."""
    models = {
        name: model_metrics(name, seed, divergence=divergence if seed == 0 else None, level=level)
        for seed, name in enumerate(MODELS)
    }
    suspected = label_findings().metrics
    return Metrics(
        schema=SCHEMA,
        run=RunInfo(name="synthetic", seed=7),
        dataset=DatasetInfo(
            name=DATASET_NAME,
            kind="mnist",
            classes=list(MNIST_CLASSES),
            image_shape=(1, 28, 28),
            mean=[0.1307],
            std=[0.3081],
            fingerprint=DataFingerprint(
                method="idx-sha256", sha256={n: f.sha256 for n, f in MNIST_FILES.items()}
            ),
            train_size=5_000,
            val_size=500,
            test_size=TEST_SIZE,
            test_support=[TEST_SIZE // 10] * 10,
        ),
        models=models,
        comparison=assemble.comparison_rows(models),
        significance=Significance(
            models=MODELS,
            mcnemar=McNemarTest(b=12, c=41, p_value=0.00011),
            difference=DifferenceInterval(
                estimate=0.03, low=0.012, high=0.047, level=level, resamples=1000
            ),
            alpha=0.05,
            significant=True,
            verdict="The regularized model is significantly more accurate than the baseline.",
            class_recall=assemble.class_recall(
                per_class.recall_differences(
                    *(_predictions(ACCURACY[m], seed)[i] for m, seed, i in CLASS_RECALL_INPUTS),
                    names=MODELS,
                    class_names=MNIST_CLASSES,
                    resamples=200,
                    seed=7,
                )
            ),
        ),
        figures=assemble.figure_paths(models, suspected),
        label_issues=suspected,
    )


def edited(edit: Callable[[dict[str, Any]], object], document: Metrics | None = None) -> Metrics:
    """Return ``document`` (default: :func:`metrics`) changed by ``edit`` on its JSON data.

    The result is validated again, as a reader of metrics.json would: an edit
    that breaks the contract fails here.
    """
    data = (document or metrics()).dump()
    edit(data)
    return Metrics.model_validate_json(json.dumps(data))


def write_metrics(root: Path, document: Metrics) -> None:
    """Write ``metrics.json`` and record its new hash, as a consistent (if edited) run."""
    document.write(root / "metrics.json")
    rehash(root)


def rehash(root: Path) -> None:
    """Record every artifact's current hash in the run's manifest."""
    manifest = read_any_manifest(root)
    manifest.model_copy(update={"artifacts": artifact_hashes(root)}).write(root / layout.MANIFEST)


def make_run(
    root: Path,
    *,
    title: str = "Synthetic MNIST report",
    date: str | None = "2024-03-01",
    divergence: Divergence | None = None,
    level: float = 0.95,
) -> Path:
    """Write a complete synthetic run directory at ``root`` and return it."""
    root.mkdir(parents=True)
    # Written out in full (not from the defaults) so the golden file does not follow them.
    date_line = f"date = {json.dumps(date)}\n" if date is not None else ""
    fileio.write_atomic(
        root / "config.toml", CONFIG.format(title=json.dumps(title), date=date_line)
    )
    document = metrics(divergence=divergence, level=level)
    for name, rel in document.figures.items():
        fileio.write_atomic(root / rel, png(name))
    document.write(root / "metrics.json")
    fileio.write_atomic(root / "history.csv", HISTORY)
    fileio.write_atomic(root / "models" / "baseline.pt", b"weights")
    RunManifest(
        run_name="synthetic",
        seed=7,
        command=["reportgen", "run", "--out", "somewhere/else"],
        data_files={"t10k-images-idx3-ubyte": "ab" * 32, "train-images-idx3-ubyte": "cd" * 32},
        data_source="cache",
        environment=EnvironmentFacts(
            versions={"python": "3.11.7", "torch": "2.14.1", "weasyprint": "70.0"},
            hardware={"machine": "x86_64", "cpu": "Test CPU", "device": "cpu"},
            threads=2,
            parallel_info="ATen/Parallel:\n\tat::get_num_threads() : 2\n",
            git_commit="0123456789abcdef0123456789abcdef01234567",
        ),
        timings_s={"train:baseline": 12.345, "train:regularized": 23.456},
        artifacts=artifact_hashes(root),
    ).write(root / layout.MANIFEST)
    return root
