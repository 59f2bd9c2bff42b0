"""The figure catalogue: every kind of figure, its name in a run, its alt text and caption.

:data:`FIGURES` is the one list of figure kinds, of a run, a comparison and a
sweep: which function draws each (by name: the functions live in
:mod:`reportgen.figures`, and this module imports no matplotlib, so building
metrics or an email does not load it), how a figure is named in a run, and
the alt text and caption every page shows with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# Above this many classes the confusion matrix is drawn in an order that puts confused
# classes together, without cell values, and a model gets its "confused_classes" figure.
MANY_CLASSES = 25

# "attribution": one per model and "pair_attribution" one per confused pair, when
# report.attributions is on; "section": one per run, drawn only when a section of the
# report that can be switched off found something to show (metrics.figures lists it then);
# "robustness": the corruption section's, when report.robustness is on; "data": one per
# run, drawn from the data (not the models) when metrics.json names it.
Scope = Literal[
    "run",
    "model",
    "pair",
    "compare",
    "sweep",
    "attribution",
    "pair_attribution",
    "section",
    "robustness",
    "data",
]


@dataclass(frozen=True)
class FigureKind:
    """One kind of figure: its scope, which function draws it, and how a page describes it.

    ``alt`` and ``caption`` are :meth:`str.format` templates; the page showing
    the figure fills the slots its kind uses: ``{model}``, ``{n}`` (units,
    images or classes shown), ``{order}`` (how the classes are ordered, from a
    space, or empty), ``{cut}`` (which classes a bounded per-class figure shows, from a
    colon, or empty), ``{index}`` (the test image), ``{true}`` and ``{pred}``
    (class names), ``{images}`` (the pair's test images, counted), ``{why}``,
    ``{shown}``, and for a network of the user's (``python`` variants)
    ``{layer}`` (the module drawn, as ``named_modules()`` names it).
    """

    kind: str
    scope: Scope  # one figure per run, model, confused pair, comparison or sweep
    builder: str  # the drawing function: a key of reportgen.figures.builders.BUILDERS
    alt: str
    caption: str
    cnn: FigureKind | None = None  # the variant for a CNN, whose first layer is convolutional
    python: FigureKind | None = None  # the variant for a network of the user's (model.factory)
    # Drawn only for data of more classes than this (0: always); a run with fewer lists no
    # figure of this kind, as one without confused pairs lists no pair gallery.
    more_classes_than: int = 0
    # Drawn only for a run of more models than this: a figure that sets the models side by
    # side says nothing the model's own figures do not about one model.
    more_models_than: int = 0

    def for_network(self, network: str) -> FigureKind:
        """Return the variant of this kind for a network of ``network`` kind ("mlp", "cnn", …)."""
        if network == "python" and self.python is not None:
            return self.python
        return self.cnn if network == "cnn" and self.cnn is not None else self

    def applies(self, num_classes: int) -> bool:
        """Return whether a run on data of ``num_classes`` classes draws this kind of figure."""
        return num_classes > self.more_classes_than

    def describe(self, **slots: Any) -> tuple[str, str]:
        """Return the alt text and caption with ``slots`` filled in."""
        return self.alt.format(**slots), self.caption.format(**slots)


FIGURES: dict[str, FigureKind] = {
    figure.kind: figure
    for figure in (
        FigureKind(
            "compare_curves", "run", "compare_curves",
            "Train and validation loss and accuracy per epoch of every model, on shared axes",
            "Regularization impact: train and validation loss (left) and accuracy (right) per "
            "epoch of every model on shared axes.",
            more_models_than=1,
        ),
        FigureKind(
            "lr", "run", "lr",
            "Learning rate per epoch of every model",
            "Learning rate used in each epoch, per model.",
        ),
        FigureKind(
            "weights", "model", "weights",
            "First-layer weights of {n} neurons of the {model} model drawn as images",
            "First-layer weights of the {model} model: the input weights of each of {n} "
            "neurons reshaped to the image's shape.",
            cnn=FigureKind(
                "weights", "model", "weights",
                "First convolutional layer kernels of the {model} model",
                "First convolutional layer of the {model} model: its kernels (up to {n} shown).",
            ),
            python=FigureKind(
                "weights", "model", "weights",
                "Weights of the first layer ({layer}) of the {model} model drawn as images",
                "First layer ({layer}) of the {model} model: up to {n} of its neurons' input "
                "weights reshaped to the image's shape, or of its convolution kernels.",
            ),
        ),
        FigureKind(
            "activations", "model", "activations",
            "Test image {index} and the first hidden layer activations of the {model} model",
            "Test image {index} and the activations it produces in the first hidden layer of "
            "the {model} model.",
            cnn=FigureKind(
                "activations", "model", "feature_maps",
                "Test image {index} and the first convolutional layer feature maps of the "
                "{model} model",
                "Test image {index} and the feature maps it produces in the first convolutional "
                "layer of the {model} model.",
            ),
            python=FigureKind(
                "activations", "model", "layer_output",
                "Test image {index} and the output of module {layer} of the {model} model",
                "Test image {index} and the output it produces in module {layer} of the {model} "
                "model: one bar per unit, or one map per channel.",
            ),
        ),
        FigureKind(
            "misclassified", "model", "misclassified",
            "Grid of {n} misclassified test images of the {model} model with true and "
            "predicted classes",
            "The first {n} misclassified test images of the {model} model, each titled with "
            "its true class, the predicted class and the probability the model gave it.",
        ),
        FigureKind(
            "curves", "model", "curves",
            "Loss and accuracy per epoch of the {model} model, train against validation",
            "Training curves of the {model} model: train and validation loss and accuracy per "
            "epoch.",
        ),
        FigureKind(
            "confusion", "model", "confusion",
            "Confusion matrix heatmaps of the {model} model on the test set",
            "Confusion matrix of the {model} model on the test set: rows are true classes, "
            "columns predictions.{order}",
        ),
        FigureKind(
            "confused_classes", "model", "confused_classes",
            "Confusion matrix of the {n} classes in the most confused pairs of the {model} "
            "model, with class names and counts",
            "The {n} classes in the most confused pairs of the {model} model, in the order of "
            "the matrix above: rows are true classes, columns predictions, each cell the test "
            "images it counts (log colour scale; empty cells are none).",
            more_classes_than=MANY_CLASSES,
        ),
        FigureKind(
            "class_errors", "model", "class_errors",
            "Bar chart of the per-class test error rate of the {model} model",
            "Per-class error rate (1 − recall) of the {model} model on the test set{cut}.",
        ),
        FigureKind(
            "reliability", "model", "reliability",
            "Reliability diagram of the {model} model with the number of test images per "
            "confidence bin, and equal-mass bins before and after temperature scaling",
            "Calibration of the {model} model on the test set. Left: accuracy against "
            "top-class confidence in equal-width bins (the gap to the diagonal hatched in "
            "vermillion), and below, the test images in each bin on a log scale. Right: "
            "equal-mass bins before and after temperature scaling, as error rate against "
            "1 − confidence on log axes, so that confidences near 100% spread out; on the "
            "diagonal the model is calibrated, above it over-confident.",
        ),
        FigureKind(
            "roc", "model", "roc",
            "One-vs-rest ROC curves per class of the {model} model on a log false-positive axis",
            "One-vs-rest ROC curves of the {model} model, one per class, with the "
            "false-positive rate on a log scale so that near-perfect curves stay apart; the "
            "classes with the lowest AUC are in colour, the others grey.",
        ),
        FigureKind(
            "pr", "model", "pr",
            "One-vs-rest precision–recall curves per class of the {model} model",
            "One-vs-rest precision–recall curves of the {model} model over the whole range "
            "(left) and zoomed on high recall (right); the classes with the lowest average "
            "precision are in colour, the others grey.",
        ),
        FigureKind(
            "misclassified_attributions", "attribution", "attribution",
            "Misclassified test images of the {model} model beside Integrated Gradients maps "
            "toward the predicted and the true class",
            "Why the {model} model chose the wrong class: each misclassified image, then "
            "Integrated Gradients toward the predicted class and toward the true class (red "
            "raises the class’s score, blue lowers it, grey is no ink; black-image baseline, "
            "{steps} steps). "
            "Red ink in the middle map that is blue in the right one pushed the model toward "
            "the wrong class. {evidence}",
        ),
        FigureKind(
            "pair_attributions", "pair_attribution", "attribution",
            "Test images of {true} that the {model} model predicted as {pred}, beside "
            "Integrated Gradients maps toward {pred} and toward {true}",
            "Why the {model} model read {true} as {pred}: each image, then Integrated Gradients "
            "toward {pred} (predicted) and toward {true} (true); red raises the class’s score, "
            "blue lowers it, grey is no ink (black-image baseline, {steps} steps). {evidence}",
        ),
        FigureKind(
            "pair", "pair", "pair",
            "Test images of class {true} that the {model} model predicted as {pred}",
            "True {true}, predicted {pred}: {images} of the {model} model ({why}); {shown} "
            "shown.",
        ),
        FigureKind(
            "label_issues", "section", "label_issues",
            "Gallery of the {n} test images whose labels the models doubt most, each with its "
            "given label, the suggested class and every model's probability of both",
            "Suspected label errors, strongest evidence first: the first {n} of {images}. "
            "Each image is titled with its test position, its given label and the class the "
            "models suggest, then each model's probability of the label and of the "
            "suggestion.",
        ),
        FigureKind(
            "robustness", "robustness", "robustness",
            "Accuracy of every model against the severity of each corruption, one small panel "
            "per corruption",
            "Accuracy under corruption: one panel per corruption, accuracy against severity "
            "(0: the clean images) for every model, on {images}; the bands are {level} "
            "bootstrap intervals.",
        ),
        FigureKind(
            "corruptions", "robustness", "corruptions",
            "Test image {index} clean and under each corruption at severity {severity}",
            "Test image {index}, clean and under each corruption at severity {severity} (the "
            "severity of the paired tests); the noise differs from image to image.",
        ),
        FigureKind(
            "duplicates", "data", "duplicates",
            "Test images beside their exact or near duplicates in the training or validation "
            "split",
            "Each test image (framed grey) beside its duplicate (framed in vermillion), titled "
            "with their positions and the distance d = 1 − cosine of the aligned 16 × 16 grids "
            "(near duplicates are at most {threshold}); {shown} of {total} shown.",
        ),
        FigureKind(
            "class_balance", "data", "class_balance",
            "Share of each class in the training, validation and test images",
            "Each class’s share of the training, validation and test images{order}; the dashed "
            "line is half the mean share, below which a class is under-represented.",
        ),
        FigureKind(
            "compare_history", "compare", "compare_history",
            "Validation loss and validation accuracy per epoch of every model of every run",
            "Validation loss (left) and validation accuracy (right) per epoch: one colour per "
            "run, one line style per model.",
        ),
        FigureKind(
            "seed_dots", "sweep", "seed_dots",
            "{metric} of every seed, per point and model, with mean, standard deviation and "
            "bootstrap interval",
            "{metric} per seed (open dots), per point and model: the bar with whiskers is the "
            "mean ± one standard deviation over seeds, the band the {level} bootstrap interval "
            "of the mean. Every seed is shown; none is selected.",
        ),
        FigureKind(
            "averaged_curves", "sweep", "averaged_curves",
            "Validation loss and accuracy per epoch of point {point}, averaged over seeds",
            "Point {point}: validation loss (left) and accuracy (right) per epoch, the mean over "
            "{seeds} seeds as a line and ± one standard deviation as a band.",
        ),
        FigureKind(
            "effect", "sweep", "effect",
            "{metric} against {key}, one line per model, with the spread over seeds",
            "{metric} against {key}: the mean over seeds ± one standard deviation per line, "
            "each seed a small dot.",
        ),
    )
}  # fmt: skip


def kinds(scope: Scope) -> list[FigureKind]:
    """Return the figure kinds of one scope, in the order pages show them."""
    return [figure for figure in FIGURES.values() if figure.scope == scope]


def run_kinds(models: int) -> list[FigureKind]:
    """Return the figure kinds of a run of ``models`` models (one figure each), in page order."""
    return [figure for figure in kinds("run") if models > figure.more_models_than]


def figure_name(kind: str, model: str = "", *, true: int = 0, pred: int = 0) -> str:
    """Return a figure's name in a run: ``lr``, ``baseline_weights``, ``baseline_pair_4_as_9``."""
    scope = FIGURES[kind].scope
    if scope in ("model", "attribution"):
        return f"{model}_{kind}"
    if scope == "pair":
        return f"{model}_pair_{true}_as_{pred}"
    if scope == "pair_attribution":
        return f"{model}_pair_{true}_as_{pred}_attributions"
    return kind
