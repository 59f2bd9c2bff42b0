"""Figures: every function returns a labelled Figure, PNG bytes are reproducible, and the
figure stage draws exactly what metrics.json lists from the run's own predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from sklearn.metrics import recall_score

from reportgen.artifacts import catalogue, layout
from reportgen.config.loading import load_config
from reportgen.config.schema import ModelSection
from reportgen.core.errors import ConfigError
from reportgen.data.idx import MNIST_CLASSES
from reportgen.data.sources import SOURCES
from reportgen.data.tensors import Dataset, Split
from reportgen.evaluate import assemble, classification, confusion, layers
from reportgen.evaluate import outcome as outcome_mod
from reportgen.figures import checks, classes, galleries, placed, pool, style, training
from reportgen.figures import jobs as jobs_mod
from reportgen.figures import network as network_mod
from reportgen.figures import panels as panels_mod
from reportgen.figures.builders import BUILDERS
from reportgen.run import stages
from reportgen.train.loop import EpochRecord
from reportgen.train.networks import CNN, MLP, build

from .conftest import make_digits
from .test_confusion import planted as planted_confusion

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MNIST_NET: dict[str, Any] = {"input_shape": (1, 28, 28), "num_classes": 10}
DIGITS = list(MNIST_CLASSES)
GREY = (1, 28, 28)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return make_digits(60, seed=3)


@pytest.fixture(scope="module")
def labels() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 400)
    y_pred = np.where(rng.random(400) < 0.85, y_true, rng.integers(0, 10, 400))
    return y_true, y_pred


def history_frame(models: tuple[str, ...] = ("baseline", "regularized"), epochs: int = 4):
    rows = []
    for m, name in enumerate(models):
        for epoch in range(1, epochs + 1):
            rows.append({
                "model": name, "epoch": epoch, "train_loss": 0.5 / epoch + 0.01 * m,
                "train_accuracy": 0.9 + 0.02 * epoch, "val_loss": 0.4 / epoch + 0.02 * m,
                "val_accuracy": 0.88 + 0.02 * epoch, "lr": 1e-3 * 0.5 ** (epoch // 2),
            })  # fmt: skip
    return pd.DataFrame(rows)


def runs_history(runs: tuple[str, ...] = ("r1", "r2", "r3")) -> pd.DataFrame:
    """The validation curves of several runs, as ``compare`` reads them from history.csv."""
    return pd.DataFrame(
        [
            {"run": run, "model": model, "epoch": epoch, "val_loss": 1 / epoch, "val_accuracy": 0.9}
            for run in runs
            for model in ("baseline", "regularized")
            for epoch in (1, 2)
        ]
    )


def suptitle(fig: Figure) -> str:
    assert fig._suptitle is not None
    return fig._suptitle.get_text()


def visible_axes(fig: Figure) -> list:
    return [ax for ax in fig.get_axes() if ax.get_visible() and ax.get_label() != "<colorbar>"]


def panel_titles(fig: Figure) -> list[str]:
    """Return the title of every panel: each chart's Axes, each image of a grid."""
    charts = [ax.get_title() for ax in visible_axes(fig) if ax.get_label() != placed.GRID_LABEL]
    return charts + [title for title, _ in placed.image_panels(fig)]


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text"))]


# --------------------------------------------------------------------------- every figure


def all_figures(digits: tuple[np.ndarray, np.ndarray]) -> dict[str, Figure]:
    images, labels_ = digits
    rng = np.random.default_rng(1)
    history = history_frame()
    return {
        "weights": network_mod.weights_figure(rng.normal(size=(32, 784)), model="m", count=10,
                                          unit="Neuron", image_shape=GREY),
        "activations": network_mod.activations_figure(
            images[0], rng.normal(size=64), np.maximum(rng.normal(size=64), 0),
            model="m", index=0, label=int(labels_[0]), prediction=3, classes=DIGITS,
        ),
        "feature_maps": network_mod.feature_maps_figure(
            images[0], rng.random((16, 28, 28)), model="m", index=0, label=1, prediction=1,
            classes=DIGITS,
        ),
        "layer_output": network_mod.layer_output_figure(
            images[0], rng.normal(size=40), model="m", index=0, label=1, prediction=1,
            classes=DIGITS, layer="head.fc",
        ),
        "misclassified": galleries.misclassified_figure(
            images[:7], labels_[:7], (labels_[:7] + 1) % 10, rng.random(7), model="m", total=12,
            classes=DIGITS,
        ),
        "pair": galleries.pair_figure(
            images[:5], np.arange(5) * 3, rng.random(5), model="m", true=4, pred=9, total=5,
            classes=DIGITS,
        ),
        "curves": training.curves_figure(history[history.model == "baseline"], model="m"),
        "confusion": classes.confusion_figure(rng.integers(0, 30, (10, 10)), model="m",
                                              classes=DIGITS),
        "class_errors": classes.class_errors_figure(rng.random(10) / 10, model="m", worst=[2],
                                                    classes=DIGITS),
        "confused_classes": classes.confused_classes_figure(rng.integers(0, 30, (10, 10)),
                                                            model="m", classes=DIGITS),
        "compare_curves": training.compare_curves_figure(history),
        "lr": training.lr_figure(history),
        "compare_history": training.compare_history_figure(runs_history()),
    }  # fmt: skip


EVALUATION = ("reliability", "roc", "pr", "attribution")
SWEEP = ("seed_dots", "averaged_curves", "effect")
SECTIONS = ("label_issues", "robustness", "corruptions")  # checked in their own test files
DATA = ("duplicates", "class_balance")  # checked in test_data_figures.py
EXPECTED = {
    # kind: (visible axes, words in the title)
    "weights": (10, "first-layer weights of neurons 0–9"),
    "activations": (3, "first hidden layer for test image #0"),
    "feature_maps": (17, "first convolution's feature maps"),
    "layer_output": (2, "module ‘head.fc’ for test image #0"),
    "misclassified": (7, "misclassified test images (first 7 of 12, lowest test index first)"),
    "pair": (5, "true 4 predicted as 9 (5 test images, 5 shown)"),
    "curves": (2, "training curves"),
    "confusion": (2, "confusion matrix"),
    "class_errors": (1, "per-class error rate (worst: 2)"),
    "confused_classes": (1, "the 10 most confused classes of 10"),
    "compare_curves": (2, "Regularization impact"),
    "lr": (1, "Learning rate per epoch"),
    "compare_history": (2, "Validation curves of every run"),
}


def test_every_builder_of_the_registry_is_checked_here() -> None:
    variants = [
        kind.for_network(network)
        for kind in catalogue.FIGURES.values()
        for network in ("mlp", "cnn", "python")
    ]
    # The deeper evaluation's figures are checked in test_evaluation_figures.py, the
    # sweep's in test_sweep.py, the sections' in their own test files.
    used = {v.builder for v in variants}
    assert used - set(EVALUATION) - set(SWEEP) - set(SECTIONS) - set(DATA) == set(EXPECTED)
    assert used >= set(EVALUATION) | set(SWEEP) | set(SECTIONS) | set(DATA)
    assert used <= set(BUILDERS)


def test_each_figure_is_titled_labelled_and_rendered(digits: tuple[np.ndarray, np.ndarray]) -> None:
    for kind, fig in all_figures(digits).items():
        n_axes, title = EXPECTED[kind]
        assert isinstance(fig, Figure), kind
        assert len(panel_titles(fig)) == n_axes, kind
        assert title in suptitle(fig), kind
        if n_axes > 1:  # a single chart is titled by the figure
            assert all(panel_titles(fig)), f"{kind}: an untitled panel"
        for ax in visible_axes(fig):
            if ax.axison and ax.xaxis.get_visible():  # charts, not image panels, need labels
                assert ax.get_xlabel() and ax.get_ylabel(), f"{kind}: {ax.get_title()}"
        assert style.render_png(fig).startswith(PNG_SIGNATURE)


def test_weights_use_a_symmetric_diverging_scale() -> None:
    weights = np.zeros((12, 784))
    weights[3, 5], weights[7, 9] = 0.2, -0.5
    fig = network_mod.weights_figure(weights, model="m", count=12, unit="Neuron", image_shape=GREY)
    clims = {image.get_clim() for _, image in placed.image_panels(fig)}
    assert clims == {(-0.5, 0.5)}
    assert panel_titles(fig)[:3] == ["Neuron 0", "Neuron 1", "Neuron 2"]


def test_conv_kernels_are_drawn_as_kernels() -> None:
    found = layers.image_layer_weights(CNN([16], **MNIST_NET), GREY)
    assert found is not None
    _, kernels, unit = found
    assert unit == "Kernel"
    fig = network_mod.weights_figure(kernels, model="cnn", count=4, unit="Kernel", image_shape=GREY)
    assert panel_titles(fig) == [f"Kernel {k}" for k in range(4)]
    assert placed.image_panels(fig)[0][1].get_array().shape == (3, 3)


def test_misclassified_titles_show_truth_prediction_and_probability(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    images, _ = digits
    fig = galleries.misclassified_figure(images[:2], [4, 3], [9, 5], [0.87, 0.5], model="m",
                                         total=2, classes=DIGITS)  # fmt: skip
    assert panel_titles(fig) == [
        "True: 4\nPred: 9\np=0.87",
        "True: 3\nPred: 5\np=0.50",
    ]


def test_pair_without_examples_says_so() -> None:
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    fig = galleries.pair_figure(empty, [], [], model="m", true=4, pred=9, total=0, classes=DIGITS)
    assert "no test image of 4 was predicted as 9" in texts(fig)
    assert "true 4 predicted as 9" in suptitle(fig)


def test_nothing_misclassified_says_so() -> None:
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    fig = galleries.misclassified_figure(empty, [], [], [], model="m", total=0, classes=DIGITS)
    assert "no test image was misclassified" in texts(fig)


def test_history_without_epochs_says_so() -> None:
    empty = history_frame().iloc[:0]
    for fig in (training.curves_figure(empty, model="m"), training.compare_curves_figure(empty),
                training.lr_figure(empty)):  # fmt: skip
        assert checks.NO_EPOCH in texts(fig)


def test_lr_axis_is_logarithmic_only_across_decades() -> None:
    history = history_frame(epochs=3)
    assert visible_axes(training.lr_figure(history))[0].get_yscale() == "linear"
    history["lr"] = [1e-1, 1e-2, 1e-3] * 2
    assert visible_axes(training.lr_figure(history))[0].get_yscale() == "log"


def test_compare_curves_draw_train_solid_and_validation_dashed() -> None:
    fig = training.compare_curves_figure(history_frame())
    ax_loss = visible_axes(fig)[0]
    styles = [(line.get_color(), line.get_linestyle()) for line in ax_loss.get_lines()]
    assert styles == [
        (style.model_color(0), "-"), (style.model_color(0), "--"),
        (style.model_color(1), "-"), (style.model_color(1), "--"),
    ]  # fmt: skip


def test_class_error_bars_are_one_minus_sklearn_recall(
    labels: tuple[np.ndarray, np.ndarray],
) -> None:
    y_true, y_pred = labels
    errors = classification.class_errors(classification.confusion(y_true, y_pred, num_classes=10))
    fig = classes.class_errors_figure(
        [row.error_rate for row in errors],
        model="m",
        worst=classification.worst_classes(errors, names=DIGITS),
        classes=DIGITS,
    )
    heights = [bar.get_height() for bar in visible_axes(fig)[0].patches]
    recall = recall_score(y_true, y_pred, labels=list(range(10)), average=None, zero_division=0)
    assert heights == pytest.approx(1 - recall)


def test_confusion_counts_rows_sum_to_supports(labels: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, y_pred = labels
    matrix = classification.confusion(y_true, y_pred, num_classes=10)
    fig = classes.confusion_figure(matrix, model="m", classes=DIGITS)
    counts_mesh, percent_mesh = (ax.collections[0] for ax in visible_axes(fig))
    drawn = np.ma.filled(counts_mesh.get_array(), 0).reshape(10, 10)
    assert drawn.sum(axis=1).tolist() == np.bincount(y_true, minlength=10).tolist()
    percent = np.ma.filled(percent_mesh.get_array(), 0).reshape(10, 10)
    assert percent.sum(axis=1) == pytest.approx(np.full(10, 100.0))


@pytest.mark.parametrize(
    ("draw", "message"),
    [
        (lambda d: galleries.misclassified_figure(d[:3], [1, 2], [3, 4, 5], [0.1] * 3, model="m",
                                                total=3, classes=DIGITS),
         "images, labels, predictions, confidence must have the same length; got images 3, "
         "labels 2"),
        (lambda d: galleries.pair_figure(d[:2].astype(float), [1, 2], [0.5, 0.5], model="m",
                                       true=1, pred=2, total=2, classes=DIGITS),
         r"images must be uint8 pixels \[N, H, W\] \(grey\) or \[N, H, W, 3\] \(RGB\); "
         r"got float64 of shape \(2, 28, 28\)"),
        (lambda d: network_mod.activations_figure(d[0], np.ones(5), np.ones(4), model="m", index=0,
                                              label=0, prediction=0, classes=DIGITS),
         "same length"),
        (lambda d: classes.confusion_figure(np.ones((3, 4)), model="m", classes=DIGITS),
         "square"),
        (lambda d: network_mod.weights_figure(np.ones((4, 10)), model="m", count=4, unit="Neuron",
                                          image_shape=GREY),
         "weights rows have 10 inputs, which do not reshape to the image's 1×28×28 = 784"),
        (lambda d: classes.class_errors_figure([0.1, 0.2], model="m", worst=[5],
                                               classes=["a", "b"]),
         r"worst classes \[5\]"),
        (lambda d: training.curves_figure(pd.DataFrame({"epoch": [1]}), model="m"),
         "history lacks column"),
    ],
)  # fmt: skip
def test_bad_inputs_are_refused(digits: tuple[np.ndarray, np.ndarray], draw, message) -> None:
    with pytest.raises(ValueError, match=message):
        draw(digits[0])


# --------------------------------------------------------------------------- reproducible bytes

DETERMINISTIC_FIGURE = """
import numpy as np
import pandas as pd
from reportgen.figures import galleries, style, training
rng = np.random.default_rng(5)
images = rng.integers(0, 256, size=(10, 28, 28)).astype(np.uint8)
history = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3, "epoch": [1, 2, 3] * 2,
                        "train_loss": rng.random(6), "val_loss": rng.random(6),
                        "train_accuracy": rng.random(6), "val_accuracy": rng.random(6)})
built = [
    galleries.misclassified_figure(images, np.arange(10), (np.arange(10) + 3) % 10,
                                   np.linspace(0.2, 0.9, 10), model="m", total=10,
                                   classes=[str(k) for k in range(10)]),
    training.compare_curves_figure(history),
]
png = b"".join(style.render_png(fig) for fig in built)
"""


def test_png_bytes_are_reproducible_in_process_and_in_a_fresh_one(tmp_path: Path) -> None:
    # The pipeline saves each figure once, right after building it: the same data drawn
    # into a new figure must give the same bytes, here and in a new process.
    scope: dict = {}
    exec(DETERMINISTIC_FIGURE, scope)
    first = scope["png"]
    exec(DETERMINISTIC_FIGURE, scope)
    assert scope["png"] == first
    out = tmp_path / "png"
    code = DETERMINISTIC_FIGURE + f"\nopen({str(out)!r}, 'wb').write(png)\n"
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=120)
    assert out.read_bytes() == first


def _pid_figure() -> Figure:
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.suptitle(str(os.getpid()))
    return fig


def test_figures_drawn_in_worker_processes_have_the_same_bytes(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    images = digits[0]
    rng = np.random.default_rng(1)
    history = history_frame()
    Job = pool.FigureJob
    jobs = [
        Job("weights", "weights", (rng.normal(size=(32, 784)),),
            {"model": "m", "count": 10, "unit": "Neuron", "image_shape": GREY}),
        Job("confusion", "confusion", (rng.integers(0, 30, (10, 10)),),
            {"model": "m", "classes": DIGITS}),
        Job("pair", "pair", (images[:5], np.arange(5) * 3, rng.random(5)),
            {"model": "m", "true": 4, "pred": 9, "total": 5, "classes": DIGITS}),
        Job("compare_curves", "compare_curves", (history,)),
        Job("lr", "lr", (history,)),
    ]  # fmt: skip
    here = [pool.draw_png(job) for job in jobs]
    # A job names its builder; drawing it is drawing the figure that builder returns.
    direct = network_mod.weights_figure(jobs[0].args[0], **jobs[0].kwargs)
    assert here[0] == style.render_png(direct)
    assert pool.draw_all(jobs, workers=2) == here
    assert pool.draw_all(jobs, workers=1) == here
    assert all(png.startswith(PNG_SIGNATURE) for png in here)


def test_draw_all_draws_in_other_processes_only_when_given_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Forked workers inherit the registry, so a builder added here is drawn there too.
    monkeypatch.setitem(BUILDERS, "pid", _pid_figure)
    job = pool.FigureJob("pid", "pid")
    in_this_process = pool.draw_png(job)
    assert pool.draw_all([job, job], workers=1) == [in_this_process] * 2
    assert in_this_process not in pool.draw_all([job, job], workers=2)


def test_png_has_no_software_stamp() -> None:
    png = style.render_png(training.lr_figure(history_frame()))
    assert b"Software" not in png
    assert b"matplotlib" not in png.lower()


# --------------------------------------------------------------------------- the figures' inputs


def test_first_layer_readouts_match_the_model() -> None:
    torch.manual_seed(0)
    model = MLP([16, 8], batchnorm=True, **MNIST_NET)
    found = layers.image_layer_weights(model, GREY)
    assert found is not None
    name, weights, unit = found
    assert (name, weights.shape, unit) == ("hidden.0.0", (16, 784), "Neuron")
    assert np.array_equal(weights, model.hidden[0][0].weight.detach().numpy())
    pre, post = layers.first_activations(model, torch.randn(1, 28, 28))
    assert pre.shape == post.shape == (16,)
    assert np.array_equal(post, np.maximum(pre, 0))
    assert not model.training  # activations are read in eval mode
    _, maps_post = layers.first_activations(CNN([8], **MNIST_NET), torch.randn(1, 28, 28))
    assert maps_post.shape == (16, 28, 28)
    assert layers.image_layer_weights(torch.nn.Linear(2, 2), GREY) is None
    with pytest.raises(TypeError, match="expected an MLP or CNN"):
        layers.first_activations(torch.nn.Linear(2, 2), torch.randn(1, 28, 28))


def outcome(
    name: str, kind: str, dataset: Dataset, seed: int, *, sample: int
) -> outcome_mod.ModelOutcome:
    """A model with made-up (but self-consistent) predictions, as the figure stage sees it."""
    torch.manual_seed(seed)
    model = build(kind, [16], dropout=0.0, batchnorm=False, **MNIST_NET)
    rng = np.random.default_rng(seed)
    y = dataset.test.y.numpy()
    logits = (
        rng.normal(size=(len(y), 10)) + 4 * np.eye(10)[np.where(rng.random(len(y)) < 0.7, y, 9)]
    )
    proba = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    history = [
        EpochRecord(e, 0.5 / e, 0.8 + e / 50, 0.4 / e, 0.8 + e / 60, 1e-3) for e in (1, 2, 3)
    ]
    views = layers.layer_views(model, kind, dataset.test.inputs(slice(sample, sample + 1)),
                               image_shape=GREY, layer=None, name=name)  # fmt: skip
    return outcome_mod.ModelOutcome(name, ModelSection(kind=kind), history, None, 0, proba, 0.9,
                                    {}, model, logits, logits, views)  # fmt: skip


def test_figure_stage_draws_every_listed_figure_from_the_predictions(tmp_path: Path) -> None:
    images, y = make_digits(120, seed=4)
    x = torch.from_numpy(images).unsqueeze(1)  # [N, 1, 28, 28] uint8
    info = SOURCES["mnist"].info()
    test = Split(x, torch.from_numpy(y).long(), torch.arange(120), info.mean, info.std)
    dataset = Dataset(test, test, test, info)
    config = load_config(None, [
        "report.confused_pairs=[[4, 9], [1, 7]]", "report.auto_pairs=1", "report.n_weights=4",
        "report.n_misclassified=4", "report.n_pair_examples=3", "report.bootstrap_resamples=100",
    ])  # fmt: skip
    sample = config.report.sample_index
    outcomes = [outcome("baseline", "mlp", dataset, 0, sample=sample),
                outcome("regularized", "cnn", dataset, 1, sample=sample)]  # fmt: skip
    # The baseline's misclassified images are attributed, the regularized model's are not.
    outcomes[0] = stages.stage_attributions(config, outcomes[0], dataset)
    metrics = assemble.build_metrics(config, outcomes, dataset)
    paths = layout.RunPaths(tmp_path)
    jobs = jobs_mod.run_figure_jobs(config, outcomes, dataset, metrics)
    # As the pipeline does: draw every job and write it under its name.
    for job, png in zip(jobs, pool.draw_all(jobs, workers=1), strict=True):
        assert png.startswith(PNG_SIGNATURE)
        paths.figures.mkdir(exist_ok=True)
        paths.figure(job.name).write_bytes(png)
    assert all(job.builder in BUILDERS for job in jobs)

    listed = metrics.figures
    assert {p.stem for p in paths.figures.glob("*.png")} == set(listed)
    # the baseline's attribution figures, and the class balance (no duplicates looked for)
    assert len(listed) == 2 * (9 + 3) + 2 + (1 + 3) + 1
    assert all((tmp_path / rel).is_file() for rel in listed.values())
    for o in outcomes:
        model = metrics.models[o.name]
        assert list(model.figures) == [  # 10 classes: no confused classes sub-matrix
            kind.kind for kind in catalogue.kinds("model") if kind.kind != "confused_classes"
        ]
        assert model.accuracy_ci.low <= model.test_accuracy <= model.accuracy_ci.high
        assert model.misclassified == sorted(model.misclassified)
        assert all(y[i] != o.predictions[i] for i in model.misclassified)
        assert [g.source for g in model.pair_galleries] == ["config", "config", "auto"]
        for gallery in model.pair_galleries:
            assert gallery.figure in listed
            assert all(y[i] == gallery.true for i in gallery.indices)
            assert all(o.predictions[i] == gallery.pred for i in gallery.indices)
    shown = metrics.models["baseline"].attributions
    assert shown is not None and metrics.models["regularized"].attributions is None
    assert [g.figure for g in shown.galleries] == [
        "baseline_misclassified_attributions", "baseline_pair_4_as_9_attributions",
        "baseline_pair_1_as_7_attributions", *(
            f"baseline_pair_{g.true}_as_{g.pred}_attributions"
            for g in metrics.models["baseline"].pair_galleries[2:]
        ),
    ]  # fmt: skip
    assert [i.index for i in shown.galleries[0].images] == metrics.models["baseline"].misclassified
    significance = metrics.significance
    assert significance is not None and significance.models == ("baseline", "regularized")
    assert significance.significant == (significance.mcnemar.p_value < 0.05)
    json.dumps(metrics.dump(), allow_nan=False)  # metrics.json must stay strict JSON


def test_compare_history_draws_every_run_and_model() -> None:
    fig = training.compare_history_figure(runs_history())
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.lines) == len(ax_acc.lines) == 6
    assert [text.get_text() for text in fig.legends[0].get_texts()] == [
        "r1", "r2", "r3", "baseline", "regularized",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="history lacks column"):
        training.compare_history_figure(runs_history().drop(columns="val_loss"))


@pytest.mark.parametrize("kind", list(catalogue.FIGURES))
def test_every_caption_fills_from_the_slots_pages_give(kind: str) -> None:
    slots = {"model": "m", "n": 3, "index": 0, "true": "Shirt", "pred": "T-shirt/top",
             "images": "2 test images", "why": "configured pair", "shown": 2, "steps": 50,
             "evidence": "The evidence lies in the centre.", "order": " Classes reordered.",
             "cut": ": the 20 of 300 classes of highest error rate",
             # the sweep's figures: what the sweep page fills in
             "metric": "Test accuracy", "level": "95%", "point": "lr=0.01", "seeds": 3,
             "key": "train.lr", "severity": 3,
             # the duplicates gallery: what the run page fills in
             "threshold": "0.001", "total": "40"}  # fmt: skip
    for network in ("mlp", "cnn", "python"):
        variant = catalogue.FIGURES[kind].for_network(network)
        layer = {"layer": "features.0"} if network == "python" else {}
        alt, caption = variant.describe(**slots, **layer)
        assert alt and caption.endswith(".") and "{" not in alt + caption
        for mnist_only in ("28×28", "784", "digit", "3×3"):
            assert mnist_only not in alt + caption, (kind, network)
    if kind == "pair":
        assert alt == "Test images of class Shirt that the m model predicted as T-shirt/top"


# ---------------------------------------------------------------- any classes, any images

LONG = "very-long-class-name-number-{}"


def class_names(k: int) -> list[str]:
    """``k`` class names, every third one long and differing from the others only at its end."""
    return [LONG.format(i) if i % 3 == 1 else f"class {i}" for i in range(k)]


def make_images(kind: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, 28, 28) if kind == "grey" else (n, 32, 32, 3)
    return rng.integers(0, 256, size=shape).astype(np.uint8)


def class_figures(k: int, kind: str) -> dict[str, Figure]:
    """Every figure that shows classes or images, for ``k`` classes and grey or RGB images."""
    rng = np.random.default_rng(k)
    names = class_names(k)
    images = make_images(kind, 12)
    shape = GREY if kind == "grey" else (3, 32, 32)
    labels = np.arange(12) % k
    wrong = (labels + 1) % k
    inputs = int(np.prod(shape))
    sample = {"model": "m", "index": 3, "label": 1, "prediction": k - 1, "classes": names}
    return {
        "weights": network_mod.weights_figure(rng.normal(size=(16, inputs)), model="m", count=10,
                                          unit="Neuron", image_shape=shape),
        "kernels": network_mod.weights_figure(rng.normal(size=(8, shape[0], 3, 3)), model="m",
                                          count=8, unit="Kernel", image_shape=shape),
        "activations": network_mod.activations_figure(images[0], rng.normal(size=32),
                                                  np.maximum(rng.normal(size=32), 0), **sample),
        "feature_maps": network_mod.feature_maps_figure(images[0], rng.random((8, 14, 14)),
                                                    **sample),
        "misclassified": galleries.misclassified_figure(images, labels, wrong, rng.random(12),
                                                      model="m", total=20, classes=names),
        "pair": galleries.pair_figure(images[:3], [1, 5, 9], rng.random(3), model="m", true=1,
                                    pred=0, total=3, classes=names),
        "confusion": classes.confusion_figure(rng.integers(0, 9, (k, k)), model="m",
                                              classes=names),
        "class_errors": classes.class_errors_figure(rng.random(k) / 4, model="m", classes=names,
                                                    worst=[1, 0]),
        "confused_classes": classes.confused_classes_figure(rng.integers(1, 9, (k, k)),
                                                            model="m", classes=names),
    }  # fmt: skip


# Grey and colour images each at a small and a large class count (each figure's cost
# grows with the classes; the image kind changes only the galleries).
@pytest.mark.parametrize(("k", "kind"), [(2, "grey"), (10, "rgb"), (25, "grey"), (40, "rgb")])
def test_every_figure_draws_any_classes_and_images_to_the_same_bytes_twice(
    k: int, kind: str
) -> None:
    first = {name: style.render_png(fig) for name, fig in class_figures(k, kind).items()}
    again = {name: style.render_png(fig) for name, fig in class_figures(k, kind).items()}
    assert first == again
    assert all(png.startswith(PNG_SIGNATURE) for png in first.values())
    assert len(set(first.values())) == len(first)  # every figure drew something of its own


@pytest.mark.parametrize("kind", ["grey", "rgb"])
def test_images_are_drawn_grey_on_the_ink_map_or_in_colour_as_they_are(kind: str) -> None:
    images = make_images(kind, 3)
    fig = galleries.misclassified_figure(images, [0, 1, 0], [1, 0, 1], [0.5] * 3, model="m",
                                       total=3, classes=["a", "b"])  # fmt: skip
    drawn = [image for _, image in placed.image_panels(fig)]
    assert all(np.array_equal(image.get_array(), pixels) for image, pixels in zip(drawn, images))
    if kind == "grey":
        assert {(image.get_cmap().name, image.get_clim()) for image in drawn} == {
            (style.DIGIT_CMAP, (0.0, 255.0))
        }


def test_class_names_title_the_panels_and_long_ones_are_cut_but_kept_apart() -> None:
    names = class_names(25)
    images = make_images("rgb", 3)
    fig = galleries.misclassified_figure(images, [4, 7, 2], [7, 4, 3], [0.9, 0.8, 0.7], model="m",
                                       total=3, classes=names)  # fmt: skip
    titles = panel_titles(fig)
    true_4, pred_7 = (line.split(": ", 1)[1] for line in titles[0].split("\n")[:2])
    assert true_4.endswith("…er-4") and pred_7.endswith("…er-7")  # cut in the middle: 4 ≠ 7
    assert titles[2] == "True: class 2\nPred: class 3\np=0.70"
    width = max(len(line) for title in titles for line in title.split("\n"))
    assert width <= panels_mod.panel_chars(5, font_size=7.5)
    # Names that stay apart when cut at the end are cut at the end.
    fashion = ["T-shirt/top", "Trouser", "A-rather-long-name-for-a-bag"]
    fig = galleries.misclassified_figure(images[:1], [2], [0], [0.5], model="m", total=1,
                                       classes=fashion)  # fmt: skip
    true_line = panel_titles(fig)[0].split("\n")[0]
    assert true_line.startswith("True: A-rather-lo") and true_line.endswith("…")


def test_pair_and_sample_titles_name_the_classes() -> None:
    fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt"]
    images = make_images("grey", 2)
    fig = galleries.pair_figure(images, [3, 8], [0.6, 0.7], model="m", true=6, pred=0, total=2,
                              classes=fashion)  # fmt: skip
    assert suptitle(fig) == "m: true Shirt predicted as T-shirt/top (2 test images, 2 shown)"
    empty = galleries.pair_figure(images[:0], [], [], model="m", true=6, pred=0, total=0,
                                classes=fashion)  # fmt: skip
    assert "no test image of Shirt was predicted as T-shirt/top" in texts(empty)
    fig = network_mod.activations_figure(images[0], None, np.ones(4), model="m", index=5, label=6,
                                     prediction=0, classes=fashion)  # fmt: skip
    assert visible_axes(fig)[0].get_title() == "Test image #5\ntrue: Shirt\npred: T-shirt/top"
    fig = network_mod.activations_figure(images[0], None, np.ones(4), model="m", index=5, label=1,
                                     prediction=2, classes=["0", "1", "2"])  # fmt: skip
    assert visible_axes(fig)[0].get_title() == "Test image #5\ntrue 1 · predicted 2"


def tick_texts(labels) -> list[str]:
    return [label.get_text() for label in labels]


def test_confusion_ticks_are_the_class_names_and_adapt_to_many_classes() -> None:
    rng = np.random.default_rng(2)
    ten = classes.confusion_figure(rng.integers(1, 9, (10, 10)), model="m", classes=DIGITS)
    for ax in visible_axes(ten):
        assert tick_texts(ax.get_xticklabels()) == DIGITS
        assert tick_texts(ax.get_yticklabels()) == DIGITS
        assert len(ax.texts) == 100  # every cell annotated
        assert {label.get_rotation() for label in ax.get_xticklabels()} == {0.0}
    names = class_names(25)
    many = classes.confusion_figure(rng.integers(1, 9, (25, 25)), model="m", classes=names)
    axes = visible_axes(many)
    assert axes[0].get_position().y0 > axes[1].get_position().y1  # stacked, full width
    assert many.get_figheight() > 2 * ten.get_figheight()
    for ax in axes:
        shown = tick_texts(ax.get_xticklabels())
        assert shown == tick_texts(ax.get_yticklabels())
        assert len(set(shown)) == 25 and shown[0] == "class 0"
        cut = [name for name in shown if name != names[shown.index(name)]]
        assert cut and all("…" in name and len(name) == 20 for name in cut)
        assert {label.get_rotation() for label in ax.get_xticklabels()} == {90.0}
        assert len(ax.texts) == 0  # no cell values at 25 classes


def test_many_classes_are_reordered_unannotated_on_a_log_scale() -> None:
    matrix = planted_confusion()
    names = class_names(40)
    fig = classes.confusion_figure(matrix, model="m", classes=names)
    order = confusion.confusion_order(matrix)
    (ax,) = visible_axes(fig)
    (image,) = ax.get_images()
    np.testing.assert_array_equal(image.get_array().filled(0), matrix[np.ix_(order, order)])
    assert np.array_equal(image.get_array().mask, matrix[np.ix_(order, order)] == 0)
    assert isinstance(image.norm, LogNorm) and image.norm.vmin == 1
    assert len(ax.texts) == 0  # no cell values
    shown = tick_texts(ax.get_yticklabels())
    assert (
        shown
        == tick_texts(ax.get_xticklabels())
        == [style.short_names(names, classes.STACKED_NAME_CHARS)[i] for i in order]
    )  # every name fits at 40 classes
    assert ax.get_xlabel() == "predicted class" and "40 classes" in suptitle(fig)
    drawn = style.render_png(fig)
    assert drawn == style.render_png(classes.confusion_figure(matrix, model="m", classes=names))
    plain = classes.reordered_confusion_figure(matrix, model="m", classes=names, order=range(40))
    assert style.render_png(plain) != drawn
    same = classes.reordered_confusion_figure(matrix, model="m", classes=names, order=order)
    assert style.render_png(same) == drawn


def test_hundreds_of_classes_name_as_many_ticks_as_fit() -> None:
    k = 300
    matrix = np.eye(k, dtype=int) * 5
    matrix[7, 250] = 3
    names = [f"c{i}" for i in range(k)]
    fig = classes.confusion_figure(matrix, model="m", classes=names)
    (ax,) = visible_axes(fig)
    shown = tick_texts(ax.get_yticklabels())
    order = confusion.confusion_order(matrix)
    assert order[:2] == [7, 250]  # the one confused pair first, then the others by index
    step = len(order) // len(shown) + (len(order) % len(shown) > 0)
    assert 1 < step < 10 and shown == [names[order[i]] for i in range(0, k, step)]
    assert ax.get_ylabel() == f"true class (every {step}th named)"
    sizes = {label.get_fontsize() for label in ax.get_xticklabels()}
    assert sizes == {classes.MIN_TICK_PT}


def test_the_most_confused_classes_are_named_with_their_counts() -> None:
    matrix = planted_confusion()
    names = class_names(40)
    fig = classes.confused_classes_figure(matrix, model="m", classes=names)
    shown = confusion.most_confused_classes(matrix)
    (ax,) = visible_axes(fig)
    assert tick_texts(ax.get_yticklabels()) == style.short_names(
        [names[i] for i in shown], classes.STACKED_NAME_CHARS
    )
    sub = matrix[np.ix_(shown, shown)]
    assert sorted(int(t.get_text()) for t in ax.texts) == sorted(sub[sub > 0].tolist())
    assert suptitle(fig) == f"m: the {len(shown)} most confused classes of 40 (test set)"
    with pytest.raises(ValueError, match="no class is confused with another"):
        classes.confused_classes_figure(np.eye(30, dtype=int), model="m", classes=class_names(30))


def test_confusion_shrinks_cell_values_between_12_and_20_classes() -> None:
    fig = classes.confusion_figure(np.full((15, 15), 3), model="m", classes=class_names(15))
    sizes = {text.get_fontsize() for ax in visible_axes(fig) for text in ax.texts}
    assert sizes == {4.0}


@pytest.mark.parametrize("k", [2, 10, 25])
def test_class_error_bars_follow_the_classes(k: int) -> None:
    rates = np.linspace(0.01, 0.3, k)
    names = class_names(k)
    fig = classes.class_errors_figure(rates, model="m", classes=names, worst=[k - 1, 0])
    ax = visible_axes(fig)[0]
    bars = ax.patches
    if k <= classes.VERTICAL_BAR_CLASSES:
        assert [bar.get_height() for bar in bars] == pytest.approx(rates)
        assert tick_texts(ax.get_xticklabels())[0] == "class 0"
    else:  # horizontal, class 0 on top
        assert [bar.get_width() for bar in bars] == pytest.approx(rates)
        assert tick_texts(ax.get_yticklabels()) == names  # 30 characters fit beside a bar
        assert ax.get_ylim() == (k - 0.5, -0.5)
        assert fig.get_figheight() > 4
    highlight = mpl_color(style.HIGHLIGHT)
    assert [i for i, bar in enumerate(bars) if bar.get_facecolor() == highlight] == [0, k - 1]
    worst = {2: "very-long-class-nam…", 10: "class 9", 25: "class 24"}[k]
    assert suptitle(fig) == f"m: per-class error rate (worst: {worst}, class 0)"


def mpl_color(hex_color: str) -> tuple[float, ...]:
    from matplotlib.colors import to_rgba

    return to_rgba(hex_color)


def test_rgb_weights_are_colour_images_with_zero_at_mid_grey() -> None:
    weights = np.zeros((3, 3 * 4 * 5))
    weights[0, 0] = 0.5  # red of pixel (0, 0)
    weights[1, 20 + 6] = -0.25  # green of pixel (1, 1)
    fig = network_mod.weights_figure(
        weights, model="m", count=3, unit="Neuron", image_shape=(3, 4, 5)
    )
    panels = [image.get_array() for _, image in placed.image_panels(fig)]
    assert [panel.shape for panel in panels] == [(4, 5, 3)] * 3
    assert panels[0][0, 0].tolist() == [1.0, 0.5, 0.5]
    assert panels[1][1, 1].tolist() == [0.5, 0.25, 0.5]
    assert np.all(panels[2] == 0.5)
    assert "mid-grey is 0" in suptitle(fig) and "±0.5" in suptitle(fig)
    assert [ax for ax in fig.get_axes() if ax.get_label() == "<colorbar>"] == []


def test_rgb_kernels_are_colour_kernels_and_grey_ones_keep_the_colour_bar() -> None:
    kernels = np.random.default_rng(0).normal(size=(6, 3, 5, 5))
    fig = network_mod.weights_figure(
        kernels, model="m", count=4, unit="Kernel", image_shape=(3, 9, 9)
    )
    assert panel_titles(fig) == [f"Kernel {k}" for k in range(4)]
    assert placed.image_panels(fig)[0][1].get_array().shape == (5, 5, 3)
    grey = network_mod.weights_figure(kernels[:, :1], model="m", count=4, unit="Kernel",
                                  image_shape=(1, 9, 9))  # fmt: skip
    assert len([ax for ax in grey.get_axes() if ax.get_label() == "<colorbar>"]) == 1


@pytest.mark.parametrize(
    ("weights", "shape", "message"),
    [
        (np.ones((4, 784)), (3, 28, 28), "784 inputs, which do not reshape to the image's "
                                         "3×28×28 = 2352"),
        (np.ones((4, 1, 3, 3)), (3, 32, 32), "take 1 input channels; the image has 3"),
        (np.ones((4, 3, 3)), (3, 32, 32), "have one input channel; the image has 3"),
        (np.ones((4, 4 * 9)), (4, 3, 3), r"C 1 \(grey\) or 3 \(RGB\); got \(4, 3, 3\)"),
        (np.ones(5), (1, 28, 28), "weights must be 2-D or 3-D or 4-D"),
    ],
)  # fmt: skip
def test_weights_that_do_not_map_onto_the_image_are_refused(weights, shape, message) -> None:
    with pytest.raises(ValueError, match=message):
        network_mod.weights_figure(weights, model="m", count=4, unit="Neuron", image_shape=shape)


def test_a_layer_output_is_drawn_as_bars_or_maps_with_its_name() -> None:
    image = make_images("rgb", 1)[0]
    common = {"model": "m", "index": 0, "label": 0, "prediction": 1, "classes": ["a", "b"]}
    bars = network_mod.layer_output_figure(image, np.array([-1.0, 2.0, 0.5]), layer="fc", **common)
    assert len(visible_axes(bars)) == 2
    chart = visible_axes(bars)[1]
    assert chart.get_title() == "Output: 3 units (negative in vermillion)"
    segments = chart.collections[0].get_segments()
    assert [segment[1][1] for segment in segments] == [-1.0, 2.0, 0.5]
    assert suptitle(bars) == "m: module ‘fc’ for test image #0"
    maps = network_mod.layer_output_figure(image, -np.ones((40, 4, 4)), layer="conv", **common)
    assert len(panel_titles(maps)) == 1 + network_mod.MAX_MAPS
    assert suptitle(maps) == "m: module ‘conv’ for test image #0 (first 32 of 40 maps)"
    assert placed.image_panels(maps)[0][1].get_clim() == (-1.0, 0.0)  # negatives shown
    with pytest.raises(ValueError, match=r"\[units\] or \[channels, h, w\] to draw; got shape"):
        network_mod.layer_output_figure(image, np.ones((2, 3)), layer="x", **common)


@pytest.mark.parametrize(
    ("draw", "message"),
    [
        (lambda: galleries.misclassified_figure(make_images("grey", 2), [0, 3], [1, 0], [0.5] * 2,
                                              model="m", total=2, classes=["a", "b"]),
         r"labels \[3\] are not classes: there are 2 class names \(indices 0–1\)"),
        (lambda: galleries.pair_figure(make_images("grey", 1), [0], [0.5], model="m", true=0,
                                     pred=-1, total=1, classes=["a", "b"]),
         r"true and pred \[-1\] are not classes"),
        (lambda: network_mod.activations_figure(make_images("grey", 1)[0], None, np.ones(3),
                                            model="m", index=0, label=0, prediction=9,
                                            classes=["a", "b"]),
         r"label and prediction \[9\] are not classes"),
        (lambda: classes.confusion_figure(np.ones((3, 3), int), model="m", classes=["a", "b"]),
         "classes has 2 names for a confusion matrix of 3 classes"),
        (lambda: classes.class_errors_figure([0.1, 0.2, 0.3], model="m", classes=["a"]),
         "classes has 1 names for error rates of 3 classes"),
        (lambda: galleries.misclassified_figure(np.zeros((1, 8, 8, 4), np.uint8), [0], [1], [0.5],
                                              model="m", total=1, classes=["a", "b"]),
         r"\[N, H, W, 3\] \(RGB\); got uint8 of shape \(1, 8, 8, 4\)"),
        (lambda: network_mod.feature_maps_figure(np.zeros((8, 8, 2), np.uint8), np.ones((2, 3, 3)),
                                             model="m", index=0, label=0, prediction=0,
                                             classes=["a"]),
         r"image must be uint8 pixels \[H, W\] \(grey\) or \[H, W, 3\] \(RGB\)"),
    ],
)  # fmt: skip
def test_classes_and_images_that_do_not_fit_are_refused(draw, message) -> None:
    with pytest.raises(ValueError, match=message):
        draw()


# --------------------------------------------------------------------------- any network


class TinyResNet(torch.nn.Module):
    """A user's network: an RGB stem convolution, one residual block with in-place ReLUs."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.act = torch.nn.ReLU(inplace=True)
        self.block = torch.nn.Sequential(
            torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8)
        )
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.head = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        x = self.act(x + self.block(x))
        return self.head(self.pool(x).flatten(1))


def flat_rgb() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 7), torch.nn.ReLU())


class Tokens(torch.nn.Module):
    """A network whose first layer is an embedding: nothing in it maps onto an image."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(256, 4)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x.long().clamp(0, 255)).mean(dim=(1, 2)))


@pytest.mark.parametrize(
    ("make", "shape", "expected"),
    [
        (lambda: MLP([16, 8], batchnorm=True, **MNIST_NET), GREY,
         ("hidden.0.0", (16, 784), "Neuron")),
        (lambda: CNN([8], **MNIST_NET), GREY, ("features.0.0", (16, 1, 3, 3), "Kernel")),
        (TinyResNet, (3, 32, 32), ("stem", (8, 3, 3, 3), "Kernel")),
        (flat_rgb, (3, 32, 32), ("1", (7, 3072), "Neuron")),
        (flat_rgb, GREY, None),  # a linear layer over other features than this image's
        (TinyResNet, GREY, None),  # a convolution over three channels, on grey images
        (Tokens, GREY, None),
        (lambda: torch.nn.Sequential(torch.nn.Flatten()), GREY, None),  # no parameters
        (lambda: torch.nn.Conv2d(3, 6, 3, groups=3), (3, 8, 8), None),  # per-channel kernels
        (lambda: torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.Conv2d(3, 4, 3)),
         (3, 8, 8), None),  # the first layer with parameters is a normalisation
    ],
)  # fmt: skip
def test_image_layer_weights_finds_the_first_layer_only_where_it_maps_onto_the_image(
    make, shape, expected
) -> None:
    torch.manual_seed(0)
    model = make()
    found = layers.image_layer_weights(model, shape)
    if expected is None:
        assert found is None
        return
    assert found is not None
    name, weights, unit = found
    assert (name, weights.shape, unit) == expected
    assert np.array_equal(weights, dict(model.named_modules())[name].weight.detach().numpy())
    weights[...] = 0  # a copy: drawing can never change the model
    assert dict(model.named_modules())[name].weight.abs().sum() > 0
    fig = network_mod.weights_figure(weights, model="m", count=4, unit=unit, image_shape=shape)
    assert len(panel_titles(fig)) == 4


def test_layer_output_defaults_to_the_first_layer_and_matches_the_built_in_readouts() -> None:
    torch.manual_seed(0)
    mlp = MLP([16, 8], **MNIST_NET)
    mlp.train()
    x = torch.randn(1, 1, 28, 28)
    pre, post = layers.first_activations(mlp, x[0])
    assert not mlp.training
    name, output = layers.layer_output(mlp, x, layer=None)
    assert name == "hidden.0.0" and np.allclose(output, pre)
    name, output = layers.layer_output(mlp, x, layer="hidden.0.1")
    assert name == "hidden.0.1" and np.allclose(output, post)
    cnn = CNN([8], **MNIST_NET)
    maps_pre, _ = layers.first_activations(cnn, x[0])
    name, maps = layers.layer_output(cnn, x, layer=None)
    assert (name, maps.shape) == ("features.0.0", (16, 28, 28))
    assert np.allclose(maps, maps_pre)


def test_layer_output_reads_any_network_before_in_place_operations() -> None:
    torch.manual_seed(0)
    model = TinyResNet()
    x = torch.randn(1, 3, 32, 32)
    name, stem = layers.layer_output(model, x, layer=None)
    assert name == "stem" and stem.shape == (8, 32, 32)
    assert np.allclose(stem, model.stem(x)[0].detach().numpy(), atol=1e-6)
    assert stem.min() < 0  # the in-place ReLU that follows did not change the copy
    assert layers.layer_output(model, x, layer="head")[1].shape == (5,)
    assert layers.layer_output(model, x, layer="block.1")[1].shape == (8, 32, 32)
    # [1, 8, 1, 1] per image is 3-D; a module that gives [batch, c, h] or none has no figure
    assert layers.layer_output(model, x, layer="pool")[1].shape == (8, 1, 1)
    seq = torch.nn.Sequential(torch.nn.Unflatten(1, (4, 6)), torch.nn.Linear(6, 2))
    assert layers.layer_output(seq, torch.randn(1, 24), layer="1") is None
    assert layers.layer_output(torch.nn.Sequential(torch.nn.Flatten()), x, layer=None) is None


def test_an_unknown_layer_is_a_config_error_naming_the_closest_modules() -> None:
    model = TinyResNet()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ConfigError) as error:
        layers.layer_output(model, x, layer="blok.0")
    message = str(error.value)
    assert message.startswith("report.layer: the model has no module 'blok.0'; modules: block.0, ")
    assert "\n" not in message and len(message.split(", ")) == layers.MAX_LAYER_NAMES
    assert error.value.exit_status == 2
    with pytest.raises(ValueError, match=r"a batch of one input; got shape \(2, 3, 32, 32\)"):
        layers.layer_output(model, torch.randn(2, 3, 32, 32), layer=None)


def test_long_worst_class_names_get_a_title_line_of_their_own() -> None:
    names = class_names(25)
    fig = classes.class_errors_figure(np.full(25, 0.1), model="regularized", classes=names,
                                      worst=[1, 4, 7])  # fmt: skip
    first, second = suptitle(fig).split("\n")
    assert first == "regularized: per-class error rate"
    assert second.startswith("(worst: very-long-cla…") and second.count("…") == 3
    renderer = FigureCanvasAgg(fig).get_renderer()
    assert fig._suptitle is not None
    assert fig._suptitle.get_window_extent(renderer).width < fig.bbox.width  # not clipped


def test_class_names_are_drawn_as_written_never_as_math() -> None:
    names = ["$a$", "a", r"cost in $\frac$"]  # as math: an italic a, and an error
    fig = classes.confusion_figure(np.full((3, 3), 2), model="m", classes=names)
    assert style.render_png(fig).startswith(PNG_SIGNATURE)
    ax = visible_axes(fig)[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    widths = [label.get_window_extent(renderer).width for label in ax.get_yticklabels()]
    assert widths[0] > 2 * widths[1]  # "$a$" is drawn with its dollar signs


def test_titles_wrap_only_when_a_line_would_not_fit() -> None:
    images = make_images("grey", 2)
    short = galleries.misclassified_figure(images, [0, 1], [1, 0], [0.5] * 2, model="regularized",
                                         total=1234, classes=["a", "b"])  # fmt: skip
    assert "\n" not in suptitle(short)
    long = galleries.misclassified_figure(images, [0, 1], [1, 0], [0.5] * 2, model="m" * 40,
                                        total=1234, classes=["a", "b"])  # fmt: skip
    assert (
        suptitle(long)
        == "m" * 40 + ": misclassified test images\n(first 2 of 1234, lowest test index first)"
    )
    assert long.get_figheight() == pytest.approx(short.get_figheight() + style.TITLE_LINE_IN)


def test_an_accuracy_axis_never_reads_beyond_100_percent() -> None:
    history = pd.DataFrame({
        "model": ["a"] * 3 + ["b"] * 3, "epoch": [1, 2, 3] * 2,
        "train_loss": [0.3, 0.1, 0.01] * 2, "val_loss": [0.3, 0.2, 0.1] * 2,
        "train_accuracy": [0.6, 1.0, 1.0] * 2, "val_accuracy": [0.5, 0.9, 1.0] * 2,
        "lr": [1e-3] * 6,
    })  # fmt: skip
    for fig in (training.compare_curves_figure(history),
                training.curves_figure(history[history["model"] == "a"], model="a")):  # fmt: skip
        accuracy = visible_axes(fig)[1]
        assert accuracy.get_ylim()[1] <= panels_mod.ACCURACY_TOP
        shown = [t for t in accuracy.get_yticks() if t <= accuracy.get_ylim()[1]]
        assert max(shown) <= 1.0
