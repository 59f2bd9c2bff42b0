"""Which function draws each kind of figure: the catalogue's builder names, resolved.

:data:`reportgen.artifacts.catalogue.FIGURES` names each kind's drawing
function by a key of :data:`BUILDERS`, so the catalogue stays free of
matplotlib; a test checks that every name it uses is here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from matplotlib.figure import Figure

from reportgen.artifacts.catalogue import FigureKind
from reportgen.figures.attribution import attribution_figure
from reportgen.figures.classes import (
    class_errors_figure,
    confused_classes_figure,
    confusion_figure,
)
from reportgen.figures.data_checks import class_balance_figure, duplicates_figure
from reportgen.figures.evaluation import pr_figure, reliability_figure, roc_figure
from reportgen.figures.galleries import misclassified_figure, pair_figure
from reportgen.figures.label_issues import label_issues_figure
from reportgen.figures.network import (
    activations_figure,
    feature_maps_figure,
    layer_output_figure,
    weights_figure,
)
from reportgen.figures.panels import notice_figure
from reportgen.figures.robustness import corruptions_figure, robustness_figure
from reportgen.figures.sweep import averaged_curves_figure, effect_figure, seed_dots_figure
from reportgen.figures.training import (
    compare_curves_figure,
    compare_history_figure,
    curves_figure,
    lr_figure,
)

BUILDERS: dict[str, Callable[..., Figure]] = {
    "compare_curves": compare_curves_figure,
    "lr": lr_figure,
    "weights": weights_figure,
    "activations": activations_figure,
    "feature_maps": feature_maps_figure,
    "layer_output": layer_output_figure,
    "misclassified": misclassified_figure,
    "curves": curves_figure,
    "confusion": confusion_figure,
    "confused_classes": confused_classes_figure,
    "class_errors": class_errors_figure,
    "reliability": reliability_figure,
    "roc": roc_figure,
    "pr": pr_figure,
    "attribution": attribution_figure,
    "pair": pair_figure,
    "label_issues": label_issues_figure,
    "compare_history": compare_history_figure,
    "seed_dots": seed_dots_figure,
    "averaged_curves": averaged_curves_figure,
    "effect": effect_figure,
    "robustness": robustness_figure,
    "corruptions": corruptions_figure,
    "duplicates": duplicates_figure,
    "class_balance": class_balance_figure,
    "notice": notice_figure,  # a sentence instead of a figure that cannot apply
}


def builder(kind: FigureKind) -> Callable[..., Figure]:
    """Return the function that draws figures of ``kind``."""
    return BUILDERS[kind.builder]


def draw(name: str, /, *args: Any, **kwargs: Any) -> Figure:
    """Return the figure the builder ``name`` draws from ``args`` and ``kwargs``."""
    return BUILDERS[name](*args, **kwargs)
