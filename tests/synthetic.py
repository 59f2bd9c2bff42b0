"""A synthetic but complete run directory: metrics.json, config.toml, manifest.json, figures.

The metrics are measured with :mod:`reportgen.evaluate` on made-up
predictions and the figures are small fixed PNGs, so nothing needs MNIST,
training or matplotlib.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from reportgen import evaluate, rundir

MODELS = ("baseline", "regularized")
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


def _predictions(accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(10), TEST_SIZE // 10)
    y_pred = y_true.copy()
    wrong = rng.random(TEST_SIZE) > accuracy
    y_pred[wrong] = (y_true[wrong] + rng.choice([1, 5], size=int(wrong.sum()))) % 10
    return y_true, y_pred


def _model_metrics(name: str, seed: int, *, divergence: dict[str, Any] | None) -> dict[str, Any]:
    y_true, y_pred = _predictions(ACCURACY[name], seed)
    matrix = evaluate.confusion(y_true, y_pred)
    errors = evaluate.class_errors(matrix)
    test_accuracy = evaluate.accuracy(y_true, y_pred)
    train_accuracy = min(1.0, test_accuracy + 0.02)
    return {
        "parameters": 235_146 if name == "baseline" else 235_914,
        "epochs": 3,
        "train_accuracy": train_accuracy,
        "val_accuracy": test_accuracy - 0.005,
        "test_accuracy": test_accuracy,
        "train_test_gap": train_accuracy - test_accuracy,
        "test_loss": 0.3125,
        "classification_report": evaluate.classification_report(y_true, y_pred),
        "confusion_matrix": matrix.tolist(),
        "class_errors": errors,
        "worst_classes": evaluate.worst_classes(errors),
        "confused_pairs": evaluate.most_confused_pairs(matrix, count=3),
        "divergence": divergence,
        "accuracy_ci": {
            "level": 0.95,
            "resamples": 1000,
            "low": test_accuracy - 0.018,
            "high": test_accuracy + 0.017,
        },
        "diagnosis": {
            "labels": ["good fit"],
            "summary": "Train and validation loss fall together.",
            "evidence": ["validation loss fell in 2 of 2 epochs"],
        },
        "sample_index": 0,
        "misclassified": [int(i) for i in np.flatnonzero(y_true != y_pred)[:10]],
        "pair_galleries": [
            {
                "true": 4,
                "pred": 9,
                "count": int(matrix[4, 9]),
                "indices": evaluate.pair_indices(y_true, y_pred, true=4, pred=9, limit=8),
                "source": "config",
                "figure": f"{name}_pair_4_as_9",
            },
            {
                "true": 3,
                "pred": 8,
                "count": 0,
                "indices": [],
                "source": "auto",
                "figure": f"{name}_pair_3_as_8",
            },
        ],
        "figures": {
            kind: f"{name}_{kind}"
            for kind in (
                "weights",
                "activations",
                "misclassified",
                "curves",
                "confusion",
                "class_errors",
            )
        },
    }


def make_run(
    root: Path,
    *,
    title: str = "Synthetic MNIST report",
    date: str | None = "2024-03-01",
    divergence: dict[str, Any] | None = None,
) -> Path:
    """Write a complete synthetic run directory at ``root`` and return it."""
    root.mkdir(parents=True)
    # Written out in full (not from the defaults) so the golden file does not follow them.
    date_line = f"date = {json.dumps(date)}\n" if date is not None else ""
    rundir.write_atomic(
        root / "config.toml", CONFIG.format(title=json.dumps(title), date=date_line)
    )

    models = {
        name: _model_metrics(name, seed, divergence=divergence if name == "baseline" else None)
        for seed, name in enumerate(MODELS)
    }
    names = [f"{m}_{kind}" for m in MODELS for kind in models[m]["figures"]]
    names += [f"{m}_pair_{pair}" for m in MODELS for pair in ("4_as_9", "3_as_8")]
    names += ["compare_curves", "lr"]
    for name in names:
        rundir.write_atomic(root / "figures" / f"{name}.png", png(name))
    metrics = {
        "schema": 1,
        "run": {"name": "synthetic", "seed": 7},
        "dataset": {
            "name": "MNIST (torchvision.datasets.MNIST, official IDX files)",
            "train_size": 5_000,
            "val_size": 500,
            "test_size": TEST_SIZE,
            "test_support": [TEST_SIZE // 10] * 10,
        },
        "models": models,
        "comparison": [
            {
                "model": name,
                **{
                    k: m[k]
                    for k in (
                        "train_accuracy",
                        "val_accuracy",
                        "test_accuracy",
                        "train_test_gap",
                        "parameters",
                        "epochs",
                    )
                },
            }
            for name, m in models.items()
        ],
        "significance": {
            "models": list(MODELS),
            "mcnemar": {"b": 12, "c": 41, "p_value": 0.00011},
            "difference": {
                "estimate": 0.03,
                "low": 0.012,
                "high": 0.047,
                "level": 0.95,
                "resamples": 1000,
            },
            "alpha": 0.05,
            "significant": True,
            "verdict": "The regularized model is significantly more accurate than the baseline.",
        },
        "figures": {name: f"figures/{name}.png" for name in sorted(names)},
    }
    rundir.write_json(root / "metrics.json", metrics)
    rundir.write_atomic(root / "history.csv", "model,epoch\nbaseline,1\n")
    rundir.write_atomic(root / "models" / "baseline.pt", b"weights")
    manifest = {
        "schema": 1,
        "run_name": "synthetic",
        "seed": 7,
        "command": ["reportgen", "run", "--out", "somewhere/else"],
        "data_files": {"t10k-images-idx3-ubyte": "ab" * 32, "train-images-idx3-ubyte": "cd" * 32},
        "data_source": "cache",
        "environment": {
            "versions": {"python": "3.11.7", "torch": "2.14.1", "weasyprint": "70.0"},
            "hardware": {"machine": "x86_64", "cpu": "Test CPU", "device": "cpu"},
            "threads": 2,
            "parallel_info": "ATen/Parallel:\n\tat::get_num_threads() : 2\n",
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
        },
        "timings_s": {"train:baseline": 12.345, "train:regularized": 23.456},
        "artifacts": rundir.artifact_hashes(root),
    }
    rundir.write_json(root / rundir.MANIFEST, manifest)
    return root


def rehash(root: Path) -> None:
    """Record every artifact's current hash in the run's manifest, as a consistent run."""
    manifest = json.loads((root / rundir.MANIFEST).read_text())
    manifest["artifacts"] = rundir.artifact_hashes(root)
    rundir.write_json(root / rundir.MANIFEST, manifest)
