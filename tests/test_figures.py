"""Figures: every function returns a labelled Figure, PNG bytes are reproducible, and the
figure stage draws exactly what metrics.json lists from the run's own predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.metrics import recall_score

from reportgen import evaluate, evaluation_figures, figures, measure, pipeline, rundir
from reportgen.config import ModelSection, load_config
from reportgen.data import Dataset, Split, mnist_info
from reportgen.models import CNN, MLP, build
from reportgen.train import EpochRecord

from .conftest import make_digits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text"))]


# --------------------------------------------------------------------------- every figure


def all_figures(digits: tuple[np.ndarray, np.ndarray]) -> dict[str, Figure]:
    images, labels_ = digits
    rng = np.random.default_rng(1)
    history = history_frame()
    return {
        "weights": figures.weights_figure(rng.normal(size=(32, 784)), model="m", count=10),
        "activations": figures.activations_figure(
            images[0], rng.normal(size=64), np.maximum(rng.normal(size=64), 0),
            model="m", index=0, label=int(labels_[0]), prediction=3,
        ),
        "feature_maps": figures.feature_maps_figure(
            images[0], rng.random((16, 28, 28)), model="m", index=0, label=1, prediction=1
        ),
        "misclassified": figures.misclassified_figure(
            images[:7], labels_[:7], (labels_[:7] + 1) % 10, rng.random(7), model="m", total=12
        ),
        "pair": figures.pair_figure(
            images[:5], np.arange(5) * 3, rng.random(5), model="m", true=4, pred=9, total=5
        ),
        "curves": figures.curves_figure(history[history.model == "baseline"], model="m"),
        "confusion": figures.confusion_figure(rng.integers(0, 30, (10, 10)), model="m"),
        "class_errors": figures.class_errors_figure(rng.random(10) / 10, model="m", worst=[2]),
        "compare_curves": figures.compare_curves_figure(history),
        "lr": figures.lr_figure(history),
        "compare_history": figures.compare_history_figure(runs_history()),
    }  # fmt: skip


EVALUATION = ("reliability", "roc", "pr", "attribution")
EXPECTED = {
    # kind: (visible axes, words in the title)
    "weights": (10, "first-layer weights of neurons 0–9"),
    "activations": (3, "first hidden layer for test image #0"),
    "feature_maps": (17, "first convolution's feature maps"),
    "misclassified": (7, "misclassified test images (first 7 of 12, lowest test index first)"),
    "pair": (5, "true 4 predicted as 9 (5 test images, 5 shown)"),
    "curves": (2, "training curves"),
    "confusion": (2, "confusion matrix"),
    "class_errors": (1, "per-class error rate (worst: 2)"),
    "compare_curves": (2, "Regularization impact"),
    "lr": (1, "Learning rate per epoch"),
    "compare_history": (2, "Validation curves of every run"),
}


def test_every_builder_of_the_registry_is_checked_here() -> None:
    variants = [v for kind in figures.FIGURES.values() for v in (kind, kind.for_network("cnn"))]
    # The deeper evaluation's figures are checked in test_evaluation_figures.py.
    deeper = {getattr(evaluation_figures, f"{name}_figure") for name in EVALUATION}
    assert {v.build for v in variants} - deeper == {
        getattr(figures, f"{name}_figure") for name in EXPECTED
    }
    assert {v.build for v in variants} >= deeper


def test_each_figure_is_titled_labelled_and_rendered(digits: tuple[np.ndarray, np.ndarray]) -> None:
    for kind, fig in all_figures(digits).items():
        n_axes, title = EXPECTED[kind]
        assert isinstance(fig, Figure), kind
        assert len(visible_axes(fig)) == n_axes, kind
        assert title in suptitle(fig), kind
        for ax in visible_axes(fig):
            if len(visible_axes(fig)) > 1:  # a single chart is titled by the figure
                assert ax.get_title(), f"{kind}: an untitled panel"
            if ax.xaxis.get_visible():  # charts, not image panels, need axis labels
                assert ax.get_xlabel() and ax.get_ylabel(), f"{kind}: {ax.get_title()}"
        assert figures.render_png(fig).startswith(PNG_SIGNATURE)


def test_weights_use_a_symmetric_diverging_scale() -> None:
    weights = np.zeros((12, 784))
    weights[3, 5], weights[7, 9] = 0.2, -0.5
    fig = figures.weights_figure(weights, model="m", count=12)
    clims = {ax.get_images()[0].get_clim() for ax in visible_axes(fig)}
    assert clims == {(-0.5, 0.5)}
    assert [ax.get_title() for ax in visible_axes(fig)][:3] == ["Neuron 0", "Neuron 1", "Neuron 2"]


def test_conv_kernels_are_drawn_as_kernels() -> None:
    kernels = CNN([16]).first_layer().weight.detach().numpy()
    fig = figures.weights_figure(kernels, model="cnn", count=4, unit="Kernel")
    assert [ax.get_title() for ax in visible_axes(fig)] == [f"Kernel {k}" for k in range(4)]
    assert visible_axes(fig)[0].get_images()[0].get_array().shape == (3, 3)


def test_misclassified_titles_show_truth_prediction_and_probability(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    images, _ = digits
    fig = figures.misclassified_figure(images[:2], [4, 3], [9, 5], [0.87, 0.5], model="m", total=2)
    assert [ax.get_title() for ax in visible_axes(fig)] == [
        "True: 4, Pred: 9\np=0.87",
        "True: 3, Pred: 5\np=0.50",
    ]


def test_pair_without_examples_says_so() -> None:
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    fig = figures.pair_figure(empty, [], [], model="m", true=4, pred=9, total=0)
    assert "no test image of 4 was predicted as 9" in texts(fig)
    assert "true 4 predicted as 9" in suptitle(fig)


def test_nothing_misclassified_says_so() -> None:
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    fig = figures.misclassified_figure(empty, [], [], [], model="m", total=0)
    assert "no test image was misclassified" in texts(fig)


def test_history_without_epochs_says_so() -> None:
    empty = history_frame().iloc[:0]
    for fig in (figures.curves_figure(empty, model="m"), figures.compare_curves_figure(empty),
                figures.lr_figure(empty)):  # fmt: skip
        assert figures.NO_EPOCH in texts(fig)


def test_lr_axis_is_logarithmic_only_across_decades() -> None:
    history = history_frame(epochs=3)
    assert visible_axes(figures.lr_figure(history))[0].get_yscale() == "linear"
    history["lr"] = [1e-1, 1e-2, 1e-3] * 2
    assert visible_axes(figures.lr_figure(history))[0].get_yscale() == "log"


def test_compare_curves_draw_train_solid_and_validation_dashed() -> None:
    fig = figures.compare_curves_figure(history_frame())
    ax_loss = visible_axes(fig)[0]
    styles = [(line.get_color(), line.get_linestyle()) for line in ax_loss.get_lines()]
    assert styles == [
        (figures.model_color(0), "-"), (figures.model_color(0), "--"),
        (figures.model_color(1), "-"), (figures.model_color(1), "--"),
    ]  # fmt: skip


def test_class_error_bars_are_one_minus_sklearn_recall(
    labels: tuple[np.ndarray, np.ndarray],
) -> None:
    y_true, y_pred = labels
    errors = evaluate.class_errors(evaluate.confusion(y_true, y_pred))
    fig = figures.class_errors_figure(
        [row.error_rate for row in errors], model="m", worst=evaluate.worst_classes(errors)
    )
    heights = [bar.get_height() for bar in visible_axes(fig)[0].patches]
    recall = recall_score(y_true, y_pred, labels=list(range(10)), average=None, zero_division=0)
    assert heights == pytest.approx(1 - recall)


def test_confusion_counts_rows_sum_to_supports(labels: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, y_pred = labels
    matrix = evaluate.confusion(y_true, y_pred)
    fig = figures.confusion_figure(matrix, model="m")
    counts_mesh, percent_mesh = (ax.collections[0] for ax in visible_axes(fig))
    drawn = np.ma.filled(counts_mesh.get_array(), 0).reshape(10, 10)
    assert drawn.sum(axis=1).tolist() == np.bincount(y_true, minlength=10).tolist()
    percent = np.ma.filled(percent_mesh.get_array(), 0).reshape(10, 10)
    assert percent.sum(axis=1) == pytest.approx(np.full(10, 100.0))


@pytest.mark.parametrize(
    ("draw", "message"),
    [
        (lambda d: figures.misclassified_figure(d[:3], [1, 2], [3, 4, 5], [0.1] * 3, model="m",
                                                total=3),
         "images, labels, predictions, confidence must have the same length; got images 3, "
         "labels 2"),
        (lambda d: figures.pair_figure(d[:2].astype(float), [1, 2], [0.5, 0.5], model="m",
                                       true=1, pred=2, total=2), "uint8"),
        (lambda d: figures.activations_figure(d[0], np.ones(5), np.ones(4), model="m", index=0,
                                              label=0, prediction=0), "same length"),
        (lambda d: figures.confusion_figure(np.ones((3, 4)), model="m"), "square"),
        (lambda d: figures.weights_figure(np.ones((4, 10)), model="m"), "10 is not a square"),
        (lambda d: figures.class_errors_figure([0.1, 0.2], model="m", worst=[5]),
         r"worst classes \[5\]"),
        (lambda d: figures.curves_figure(pd.DataFrame({"epoch": [1]}), model="m"),
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
from reportgen import figures
rng = np.random.default_rng(5)
images = rng.integers(0, 256, size=(10, 28, 28)).astype(np.uint8)
history = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3, "epoch": [1, 2, 3] * 2,
                        "train_loss": rng.random(6), "val_loss": rng.random(6),
                        "train_accuracy": rng.random(6), "val_accuracy": rng.random(6)})
built = [
    figures.misclassified_figure(images, np.arange(10), (np.arange(10) + 3) % 10,
                                 np.linspace(0.2, 0.9, 10), model="m", total=10),
    figures.compare_curves_figure(history),
]
png = b"".join(figures.render_png(fig) for fig in built)
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
    Job = figures.FigureJob
    jobs = [
        Job("weights", figures.weights_figure, (rng.normal(size=(32, 784)),),
            {"model": "m", "count": 10}),
        Job("confusion", figures.confusion_figure, (rng.integers(0, 30, (10, 10)),),
            {"model": "m"}),
        Job("pair", figures.pair_figure, (images[:5], np.arange(5) * 3, rng.random(5)),
            {"model": "m", "true": 4, "pred": 9, "total": 5}),
        Job("compare_curves", figures.compare_curves_figure, (history,)),
        Job("lr", figures.lr_figure, (history,)),
    ]  # fmt: skip
    here = [figures.draw_png(job) for job in jobs]
    assert figures.draw_all(jobs, workers=2) == here
    assert figures.draw_all(jobs, workers=1) == here
    assert all(png.startswith(PNG_SIGNATURE) for png in here)


def test_draw_all_draws_in_other_processes_only_when_given_workers() -> None:
    job = figures.FigureJob("pid", _pid_figure)
    in_this_process = figures.draw_png(job)
    assert figures.draw_all([job, job], workers=1) == [in_this_process] * 2
    assert in_this_process not in figures.draw_all([job, job], workers=2)


def test_png_has_no_software_stamp() -> None:
    png = figures.render_png(figures.lr_figure(history_frame()))
    assert b"Software" not in png
    assert b"matplotlib" not in png.lower()


# --------------------------------------------------------------------------- the figures' inputs


def test_first_layer_readouts_match_the_model() -> None:
    torch.manual_seed(0)
    model = MLP([16, 8], batchnorm=True)
    weights = evaluate.first_layer_weights(model)
    assert weights.shape == (16, 784)
    pre, post = evaluate.first_activations(model, torch.randn(784))
    assert pre.shape == post.shape == (16,)
    assert np.array_equal(post, np.maximum(pre, 0))
    assert not model.training  # activations are read in eval mode
    _, maps_post = evaluate.first_activations(CNN([8]), torch.randn(784))
    assert maps_post.shape == (16, 28, 28)
    with pytest.raises(TypeError, match="expected an MLP or CNN"):
        evaluate.first_layer_weights(torch.nn.Linear(2, 2))


def outcome(name: str, kind: str, dataset: Dataset, seed: int) -> pipeline.ModelOutcome:
    """A model with made-up (but self-consistent) predictions, as the figure stage sees it."""
    torch.manual_seed(seed)
    model = build(kind, [16], dropout=0.0, batchnorm=False)
    rng = np.random.default_rng(seed)
    y = dataset.test.y.numpy()
    logits = (
        rng.normal(size=(len(y), 10)) + 4 * np.eye(10)[np.where(rng.random(len(y)) < 0.7, y, 9)]
    )
    proba = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    history = [
        EpochRecord(e, 0.5 / e, 0.8 + e / 50, 0.4 / e, 0.8 + e / 60, 1e-3) for e in (1, 2, 3)
    ]
    return pipeline.ModelOutcome(name, ModelSection(kind=kind), history, None, 0, proba, 0.9,
                                 {}, model, logits, logits)  # fmt: skip


def test_figure_stage_draws_every_listed_figure_from_the_predictions(tmp_path: Path) -> None:
    images, y = make_digits(120, seed=4)
    x = torch.from_numpy(images.reshape(120, -1).astype(np.float32) / 255)
    test = Split(x, torch.from_numpy(y).long(), torch.arange(120))
    dataset = Dataset(test, test, test, images, mnist_info())
    config = load_config(None, [
        "report.confused_pairs=[[4, 9], [1, 7]]", "report.auto_pairs=1", "report.n_weights=4",
        "report.n_misclassified=4", "report.n_pair_examples=3", "report.bootstrap_resamples=100",
    ])  # fmt: skip
    outcomes = [outcome("baseline", "mlp", dataset, 0), outcome("regularized", "cnn", dataset, 1)]
    # The baseline's misclassified images are attributed, the regularized model's are not.
    outcomes[0] = pipeline.stage_attributions(config, outcomes[0], dataset)
    metrics = measure.build_metrics(config, outcomes, dataset, y.astype(np.int64))
    paths = rundir.RunPaths(tmp_path)
    pipeline.stage_figures(config, outcomes, dataset, metrics, paths)

    listed = metrics.figures
    assert {p.stem for p in paths.figures.glob("*.png")} == set(listed)
    assert len(listed) == 2 * (9 + 3) + 2 + (1 + 3)  # the baseline's attribution figures
    assert all((tmp_path / rel).is_file() for rel in listed.values())
    for o in outcomes:
        model = metrics.models[o.name]
        assert list(model.figures) == [kind.kind for kind in figures.kinds("model")]
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
    fig = figures.compare_history_figure(runs_history())
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.lines) == len(ax_acc.lines) == 6
    assert [text.get_text() for text in fig.legends[0].get_texts()] == [
        "r1", "r2", "r3", "baseline", "regularized",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="history lacks column"):
        figures.compare_history_figure(runs_history().drop(columns="val_loss"))


@pytest.mark.parametrize("kind", list(figures.FIGURES))
def test_every_caption_fills_from_the_slots_pages_give(kind: str) -> None:
    slots = {"model": "m", "n": 3, "index": 0, "true": 4, "pred": 9, "images": "2 test images",
             "why": "configured pair", "shown": 2, "steps": 50,
             "evidence": "The evidence lies in the centre."}  # fmt: skip
    for variant in (figures.FIGURES[kind], figures.FIGURES[kind].for_network("cnn")):
        alt, caption = variant.describe(**slots)
        assert alt and caption.endswith(".") and "{" not in alt + caption
