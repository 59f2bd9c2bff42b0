"""End-to-end runs on the generated dataset (seconds, no network)."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from reportgen.artifacts import manifest as manifest_mod
from reportgen.artifacts.label_table import read_label_issues
from reportgen.artifacts.metrics import read_metrics
from reportgen.data import idx
from reportgen.run import pipeline

from .conftest import (
    N_TEST,
    QUICK_RUN,
    QuickMnist,
    make_digits,
    make_quick_run,
)

BYTE_IDENTICAL = ["metrics.json", "history.csv", "predictions.csv", "comparison.csv",
                  "per_class.csv", "config.toml", "models/baseline.pt", "models/regularized.pt",
                  "report.html", "report.pdf", "summary.md", "summary.json", "model_card.md",
                  "scalars.json", "curves/baseline.csv", "curves/regularized.csv",
                  "confusion/baseline.csv", "confusion/regularized.csv",
                  "label_issues.csv"]  # fmt: skip


@pytest.fixture(scope="module")
def two_runs(
    quick_mnist: QuickMnist, quick_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The session's quick run and a second run with its settings, made here.

    The whole run, PDF and corruptions included, on two threads: every
    artifact a default run writes.
    """
    again = make_quick_run(quick_mnist, tmp_path_factory.mktemp("runs") / "b", *QUICK_RUN)
    return quick_run, again


def test_run_writes_every_artifact(two_runs: tuple[Path, Path]) -> None:
    run, _ = two_runs
    for name in BYTE_IDENTICAL:
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics["models"]) == ["baseline", "regularized"]
    assert metrics["dataset"]["test_size"] == N_TEST
    for m in metrics["models"].values():
        assert sum(c["support"] for c in m["classification_report"]["classes"]) == N_TEST
        assert [sum(row) for row in m["confusion_matrix"]] == metrics["dataset"]["test_support"]
        assert m["train_test_gap"] == pytest.approx(m["train_accuracy"] - m["test_accuracy"])
    history = (run / "history.csv").read_text().splitlines()
    assert history[0] == "model,epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr"
    assert len(history) == 1 + 2 * 2
    predictions = (run / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "model,index,label,label_name,prediction,prediction_name," + ",".join(
        f"p{k}" for k in range(10)
    )
    assert len(predictions) == 1 + 2 * N_TEST
    per_class = pd.read_csv(run / "per_class.csv")
    assert list(per_class["model"]) == ["baseline"] * 10 + ["regularized"] * 10
    assert list(per_class["label"]) == list(range(10)) * 2
    assert not list(run.parent.glob(".*"))  # nothing partial left behind
    # The run is dated in its resolved config, so re-rendering later keeps the bytes.
    assert re.search(r'^date = "\d{4}-\d{2}-\d{2}"$', (run / "config.toml").read_text(), re.M)


def test_a_resumed_run_keeps_the_day_it_started(tmp_path: Path) -> None:
    staging = tmp_path / ".run.partial"
    staging.mkdir()
    assert pipeline._started_on(staging) is None
    (staging / "config.toml").write_text('[run]\ndate = "2025-01-02"\n')
    assert pipeline._started_on(staging) == "2025-01-02"
    (staging / "config.toml").write_text("[run\n")
    assert pipeline._started_on(staging) is None


def test_manifest_covers_every_artifact(two_runs: tuple[Path, Path]) -> None:
    run, _ = two_runs
    manifest = manifest_mod.read_manifest(run)
    assert set(manifest.artifacts) == {
        p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()
    } - {"manifest.json", "run.log"}
    assert manifest_mod.check_artifacts(run, manifest.artifacts) == []
    assert manifest.seed == 0
    env = manifest.environment
    assert env.threads == 2 and env.versions["torch"].startswith("2.")
    assert {"data", "train:baseline", "train:regularized"} <= set(manifest.timings_s)


def test_two_runs_are_byte_identical(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    for name in BYTE_IDENTICAL:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    figures = sorted(p.name for p in (a / "figures").glob("*.png"))
    assert len(figures) >= 2 * 7 + 2
    assert {"robustness.png", "corruptions.png"} <= set(figures)  # corrupted images too
    for name in figures:
        assert (a / "figures" / name).read_bytes() == (b / "figures" / name).read_bytes(), name
    for name in ("baseline", "regularized"):
        sa = torch.load(a / "models" / f"{name}.pt", weights_only=True)
        sb = torch.load(b / "models" / f"{name}.pt", weights_only=True)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_weights_load_into_a_fresh_model(two_runs: tuple[Path, Path]) -> None:
    from reportgen.train.networks import MLP

    run = two_runs[0]
    state = torch.load(run / "models" / "regularized.pt", weights_only=True)
    model = MLP([256, 128], dropout=0.3, batchnorm=True, input_shape=(1, 28, 28), num_classes=10)
    loaded = model.load_state_dict(state)
    assert (loaded.missing_keys, loaded.unexpected_keys) == ([], [])
    # The loaded model is the run's: on the test images it gives the run's predictions.
    images, _ = make_digits(N_TEST, seed=2)
    inputs = (torch.from_numpy(images).float().unsqueeze(1) / 255.0 - idx.MEAN) / idx.STD
    model.eval()
    with torch.no_grad():
        proba = torch.softmax(model(inputs), dim=1).numpy()
    rows = pd.read_csv(run / "predictions.csv")
    rows = rows[rows["model"] == "regularized"]
    assert rows["index"].tolist() == list(range(N_TEST))
    assert rows["prediction"].tolist() == proba.argmax(axis=1).tolist()
    recorded = rows[[f"p{k}" for k in range(10)]].to_numpy()
    np.testing.assert_allclose(recorded, proba, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def cnn_run(quick_mnist: QuickMnist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole run whose two models are CNNs (the regularized one with dropout and batch norm)."""
    out = tmp_path_factory.mktemp("cnn") / "cnn"
    return make_quick_run(
        quick_mnist, out, "models.baseline.kind=cnn", "models.baseline.hidden=[32]",
        "models.regularized.kind=cnn", "models.regularized.hidden=[32]",
        "models.regularized.dropout=0.3", "models.regularized.batchnorm=true",
        "report.label_issues=false",
    )  # fmt: skip


def test_a_cnn_run_trains_evaluates_and_reports(cnn_run: Path) -> None:
    from reportgen.train.networks import CNN, parameter_count

    metrics = json.loads((cnn_run / "metrics.json").read_text())
    assert list(metrics["models"]) == ["baseline", "regularized"]
    html = (cnn_run / "report.html").read_text()
    for name, model in metrics["models"].items():
        assert model["epochs"] == 2 and model["divergence"] is None
        assert model["test_accuracy"] > 0.5, name  # ten classes: chance is 0.1
        assert model["train_accuracy"] > 0.5, name
        fresh = CNN([32], dropout=0.3 if name == "regularized" else 0.0,
                    batchnorm=name == "regularized", input_shape=(1, 28, 28),
                    num_classes=10)  # fmt: skip
        assert model["parameters"] == parameter_count(fresh)
        state = torch.load(cnn_run / "models" / f"{name}.pt", weights_only=True)
        fresh.load_state_dict(state)
        assert state["features.0.0.weight"].shape == (16, 1, 3, 3)
        # Saved in the standard layout, though the network runs channels-last.
        assert all(tensor.is_contiguous() for tensor in state.values())
        assert fresh.features[1][0].weight.is_contiguous(memory_format=torch.channels_last)
        # The first layer's figures are the CNN's: kernels, and the feature maps of one image.
        maps = cnn_run / metrics["figures"][model["figures"]["activations"]]
        assert maps.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert f"first convolutional layer feature maps of the {name} model" in html
        assert f"First convolutional layer kernels of the {name} model" in html
    manifest = manifest_mod.read_manifest(cnn_run)
    assert manifest_mod.check_artifacts(cnn_run, manifest.artifacts) == []
    # report.label_issues = false: no table, null in metrics.json, and the report says so.
    assert metrics["label_issues"] is None and not (cnn_run / "label_issues.csv").exists()
    assert "label_issues" not in manifest.timings_s
    assert "Label checks are switched off for this run (report.label_issues = false)." in html


def test_a_run_checks_its_test_labels(quick_run: Path) -> None:
    manifest = manifest_mod.read_manifest(quick_run)
    found = read_metrics(quick_run, manifest).label_issues
    assert found is not None and "label_issues" in manifest.timings_s
    assert list(found.models) == ["baseline", "regularized"]
    assert all(len(check.thresholds) == 10 for check in found.models.values())
    # The generated digits are labelled right and learnt: nothing is suspected.
    assert (found.count, found.first, found.figure) == (0, [], None)
    assert read_label_issues(quick_run, manifest, list(found.models)) == []
    html = (quick_run / "report.html").read_text()
    assert (
        "No test label is suspected: no model&#39;s confident class differs from a label." in html
    )
    assert '<li><a href="#label_issues">Suspected label errors</a></li>' in html


def test_a_run_reports_the_deeper_evaluation(quick_run: Path) -> None:
    manifest = manifest_mod.read_manifest(quick_run)
    metrics = read_metrics(quick_run, manifest)
    assert {"attributions:baseline", "attributions:regularized"} <= set(manifest.timings_s)
    assert "captum" in manifest.environment.versions
    html = (quick_run / "report.html").read_text()
    for name, model in metrics.models.items():
        calibrated = model.calibration
        assert sum(b.count for b in calibrated.reliability) == metrics.dataset.test_size
        assert sum(b.count for b in calibrated.equal_mass) == metrics.dataset.test_size
        assert calibrated.temperature > 0 and calibrated.verdict.startswith(f"The {name} model")
        assert [r.positives for r in model.one_vs_rest.classes] == metrics.dataset.test_support
        for row in model.classification_report.classes:
            assert row.recall_ci.low <= row.recall_ci.high
        shown = model.attributions
        assert shown is not None and shown.steps == 50
        assert [g.source for g in shown.galleries] == ["misclassified"] + ["pair"] * len(
            model.pair_galleries
        )
        figures = [*(model.figures[k] for k in ("reliability", "roc", "pr")),
                   *(g.figure for g in shown.galleries)]  # fmt: skip
        for figure in figures:
            assert (quick_run / metrics.figures[figure]).read_bytes().startswith(b"\x89PNG")
            assert f'id="fig-{figure}"' in html
        for section in ("calibration", "ranking", "attributions"):
            assert f'id="model-{name}-{section}"' in html
    assert metrics.significance is not None
    assert escape(metrics.significance.class_recall.verdict) in html
