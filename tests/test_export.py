"""Where results go next: scalars.json, DVC's tables, the model card, ``export mlflow``.

The MLflow tests log to a real tracking server (``mlflow_server``, one per
session) and read everything back with ``MlflowClient``.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from reportgen.artifacts.manifest import read_manifest
from reportgen.artifacts.metrics import (
    read_metrics,
)
from reportgen.artifacts.model_metrics import (
    Divergence,
)
from reportgen.artifacts.runconfig import read_config
from reportgen.cli.main import main
from reportgen.config.loading import load_config
from reportgen.config.sweepspec import load_sweep
from reportgen.export.model_card import PLACEHOLDER, model_card
from reportgen.export.scalars import MODEL_SCALARS, scalars
from reportgen.export.to_mlflow import FINGERPRINT_TAG, RUN_ARTIFACTS, flatten
from reportgen.sweep.driver import run_sweep
from reportgen.sweep.executors import LocalExecutor

from . import synthetic
from .conftest import QuickMnist
from .sweep_support import accept_files, plain_specs, quick_settings, write_sweep

mlflow = pytest.importorskip("mlflow")


def test_scalars_json_holds_every_scalar_under_its_flat_name(quick_run: Path) -> None:
    metrics = read_metrics(quick_run, read_manifest(quick_run))
    written = json.loads((quick_run / "scalars.json").read_text())
    assert written == scalars(metrics)
    for name, model in metrics.models.items():
        assert written[f"{name}.test_accuracy"] == model.test_accuracy
        assert written[f"{name}.macro_f1"] == model.classification_report.macro_avg.f1
        assert written[f"{name}.ece_scaled"] == model.calibration.ece_scaled
        top_k = {"top_k", "top_k_accuracy", "top_k_accuracy_ci_low", "top_k_accuracy_ci_high"}
        assert model.top_k_accuracy is None  # 10 classes, report.top_k unset: left out
        assert set(MODEL_SCALARS) - top_k == {
            key.split(".", 1)[1] for key in written if key.startswith(f"{name}.")
        }
    assert written["significance.p_value"] == metrics.significance.mcnemar.p_value


def test_top_k_accuracy_is_a_scalar_when_measured() -> None:
    from reportgen.artifacts.model_metrics import (
        TopKAccuracy,
    )

    metrics = synthetic.metrics()
    model = metrics.models["baseline"]
    measured = model.model_copy(
        update={"top_k_accuracy": TopKAccuracy(k=3, value=0.975, low=0.96, high=0.985)}
    )
    metrics = metrics.model_copy(update={"models": {**metrics.models, "baseline": measured}})
    values = scalars(metrics)
    assert (values["baseline.top_k"], values["baseline.top_k_accuracy"]) == (3, 0.975)
    low, high = values["baseline.top_k_accuracy_ci_low"], values["baseline.top_k_accuracy_ci_high"]
    assert (low, high) == (0.96, 0.985)
    assert "regularized.top_k" not in values


@pytest.mark.parametrize(
    ("divergence", "sentence"),
    [
        (
            Divergence(epoch=2, step=310, last_finite_loss=2.302585),
            "- baseline: training diverged in epoch 2.",
        ),
        (
            Divergence(epoch=1, step=4, last_finite_loss=None, finite_logits=False),
            "- baseline: training diverged in epoch 1; its logits are not finite.",
        ),
        (
            Divergence(epoch=None, step=None, last_finite_loss=None, finite_logits=False),
            "- baseline: its logits in eval mode are not finite, although its training loss was.",
        ),
    ],
)
def test_the_model_card_says_how_a_model_diverged(divergence: Divergence, sentence: str) -> None:
    metrics = synthetic.metrics(divergence=divergence)
    card = model_card(load_config(None, []), metrics)
    assert sentence in card.splitlines()
    assert "None" not in card


def test_curves_and_confusion_tables_are_the_runs_numbers(quick_run: Path) -> None:
    metrics = read_metrics(quick_run, read_manifest(quick_run))
    history = pd.read_csv(quick_run / "history.csv")
    for name, model in metrics.models.items():
        curves = pd.read_csv(quick_run / "curves" / f"{name}.csv")
        expected = history[history["model"] == name].drop(columns="model").reset_index(drop=True)
        pd.testing.assert_frame_equal(curves, expected)
        cells = pd.read_csv(
            quick_run / "confusion" / f"{name}.csv", dtype={"actual": str, "predicted": str}
        )
        assert list(cells.columns) == ["actual", "predicted", "count"]
        k = len(metrics.dataset.classes)
        assert len(cells) == k * k
        matrix = cells["count"].to_numpy().reshape(k, k).tolist()
        assert matrix == model.confusion_matrix
        assert list(cells["actual"][::k]) == metrics.dataset.classes


def test_model_card_metadata_parses_and_its_numbers_are_the_runs(quick_run: Path) -> None:
    from huggingface_hub import ModelCard, metadata_load

    card_path = quick_run / "model_card.md"
    metrics = read_metrics(quick_run, read_manifest(quick_run))
    metadata = metadata_load(card_path)
    assert metadata is not None
    assert metadata["library_name"] == "pytorch" and "image-classification" in metadata["tags"]
    card = ModelCard.load(card_path)
    results = {(r.metric_name or ""): r for r in card.data.eval_results}
    assert len(results) == 2 * len(metrics.models)
    for name, model in metrics.models.items():
        accuracy = results[f"{name}: test accuracy"]
        assert (accuracy.task_type, accuracy.dataset_type, accuracy.dataset_split) == (
            "image-classification",
            metrics.dataset.kind,
            "test",
        )
        assert accuracy.metric_type == "accuracy" and accuracy.metric_value == model.test_accuracy
        f1 = results[f"{name}: macro F1"]
        assert f1.metric_value == model.classification_report.macro_avg.f1
    names = [entry["name"] for entry in metadata["model-index"]]
    assert names == [f"{metrics.run.name}/{name}" for name in metrics.models]
    text = card_path.read_text()
    for section in (
        "## Model details",
        "## Intended use",
        "## Training data and procedure",
        "## Evaluation data",
        "## Metrics",
        "## Calibration",
        "## Ethical considerations",
        "## Caveats and recommendations",
    ):
        assert section in text
    assert text.count(PLACEHOLDER) >= 5
    assert str(quick_run.parent) not in text and "/tmp" not in text


# --------------------------------------------------------------------------- MLflow


def _export(run: Path, uri: str, experiment: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["export", "mlflow", str(run), "--tracking-uri", uri,
                 "--experiment", experiment]) == 0  # fmt: skip
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # the MLflow run's id and nothing else (no "View run at" lines)
    return out[0]


def _artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:  # type: ignore[no-untyped-def]
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_export_mlflow_logs_every_metric_param_and_artifact_once(
    quick_run: Path, mlflow_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _export(quick_run, mlflow_server, "quick", capsys)
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    logged = client.get_run(run_id)
    manifest = read_manifest(quick_run)
    metrics = read_metrics(quick_run, manifest)
    config, _ = read_config(quick_run, manifest)

    assert logged.info.status == "FINISHED" and logged.info.run_name == metrics.run.name
    assert logged.data.params == flatten(config.model_dump(mode="json"))
    expected = {key: float(value) for key, value in scalars(metrics).items()}
    final = {k: v for k, v in logged.data.metrics.items() if ".epoch." not in k}
    assert final == expected
    history = pd.read_csv(quick_run / "history.csv")
    for name in metrics.models:
        rows = history[history["model"] == name]
        steps = client.get_metric_history(run_id, f"{name}.epoch.val_accuracy")
        assert [(m.step, m.value) for m in steps] == list(
            zip(rows["epoch"], rows["val_accuracy"], strict=True)
        )
    tags = logged.data.tags
    import hashlib

    assert (
        tags[FINGERPRINT_TAG]
        == hashlib.sha256((quick_run / "manifest.json").read_bytes()).hexdigest()
    )
    assert tags["reportgen.version"] and tags["reportgen.kind"] == "run"
    artifacts = _artifact_paths(client, run_id)
    assert set(RUN_ARTIFACTS) <= artifacts  # the run has a PDF: every listed file is there
    assert {f"figures/{p.name}" for p in (quick_run / "figures").iterdir()} <= artifacts
    assert {"confusion/baseline.csv", "curves/regularized.csv"} <= artifacts

    # Again: the fingerprint finds the first export, and nothing is logged twice.
    assert _export(quick_run, mlflow_server, "quick", capsys) == run_id
    experiment = client.get_experiment_by_name("quick")
    assert len(client.search_runs([experiment.experiment_id])) == 1


@pytest.fixture(scope="module")
def small_sweep(quick_mnist: QuickMnist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep of two runs (seeds 0 and 1) on tiny data."""
    folder = tmp_path_factory.mktemp("export_sweep")
    settings = quick_settings(quick_mnist.root, "data.limit_train=120", "data.limit_test=100",
                              "report.attributions=false", 'run.date="2024-05-06"')  # fmt: skip
    spec = write_sweep(folder / "seeds.toml", seeds=[0, 1], overrides=settings, run_reports="none")
    setup = functools.partial(accept_files, plain_specs(quick_mnist.specs))
    out = folder / "sweep"
    result = run_sweep(load_sweep(spec), out, LocalExecutor(out.absolute(), workers=1, setup=setup))
    assert result.failed == {}
    return out


def test_export_mlflow_of_a_sweep_is_a_parent_with_a_child_per_run(
    small_sweep: Path, mlflow_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parent_id = _export(small_sweep, mlflow_server, "sweep", capsys)
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("sweep").experiment_id
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    assert sorted(run.info.run_name for run in children) == ["base/seed-0", "base/seed-1"]
    for child in children:
        assert child.info.status == "FINISHED" and "baseline.test_accuracy" in child.data.metrics
    parent = client.get_run(parent_id)
    assert parent.data.tags["reportgen.kind"] == "sweep"
    assert {"sweep.html", "sweep.json", "manifest.json"} <= _artifact_paths(client, parent_id)
    assert _export(small_sweep, mlflow_server, "sweep", capsys) == parent_id
    assert len(client.search_runs([experiment])) == 3


def test_export_mlflow_without_a_tracking_uri_says_how_to_give_one(
    quick_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["export", "mlflow", str(quick_run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["reportgen: error: no MLflow tracking server: pass --tracking-uri URI or set "
                   "MLFLOW_TRACKING_URI"]  # fmt: skip


def test_export_mlflow_without_mlflow_says_what_to_install(
    quick_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)
    assert main(["export", "mlflow", str(quick_run), "--tracking-uri", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["reportgen: error: export mlflow needs MLflow's client: "
                   "pip install 'reportgen[mlflow]'"]  # fmt: skip


def test_export_mlflow_refuses_a_changed_run_before_logging(
    quick_run: Path, tmp_path: Path, mlflow_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = shutil.copytree(quick_run, tmp_path / "run")
    (copy / "scalars.json").write_text("{}\n")
    assert main(["export", "mlflow", str(copy), "--tracking-uri", mlflow_server,
                 "--experiment", "tampered"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scalars.json" in err[0] and "refusing to export" in err[0]
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    assert client.get_experiment_by_name("tampered") is None
