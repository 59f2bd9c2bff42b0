"""Figures of the deeper evaluation: titled with class names, the worst classes named, rendered."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure

from reportgen.core.text import truncate
from reportgen.evaluate import calibration, ranking
from reportgen.evaluate.probabilities import softmax
from reportgen.figures import attribution, evaluation, style

from .conftest import make_digits

NAMES = [f"class name {k}" for k in range(12)]


def suptitle(fig: Figure) -> str:
    assert fig._suptitle is not None
    return fig._suptitle.get_text()


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text"))]


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def probabilities(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), labels] += rng.uniform(0, 6, n)
    return softmax(logits), labels


def test_reliability_shows_counts_on_a_log_axis_and_both_temperatures() -> None:
    proba, labels = probabilities(3_000, 10, 0)
    confidence, correct = calibration.top_class(proba, labels)
    bins = calibration.equal_width_bins(confidence, correct)
    mass = calibration.equal_mass_bins(confidence, correct)
    fig = evaluation.reliability_figure(bins, mass, mass, model="m", temperature=1.5)
    assert suptitle(fig) == "m: calibration on the test set"
    ax_rel, ax_count, ax_errors = fig.axes
    assert ax_rel.get_ylim() == (0.0, 1.0)
    assert ax_count.get_yscale() == "log" and ax_errors.get_xscale() == "log"
    shown = {f"{c:,}" for c in bins.count if c}
    assert shown <= set(texts(fig))  # every bin's count is written on its bar
    assert any(t.startswith("after T = 1.50 (ECE ") for t in legend_texts(fig))
    assert style.render_png(fig).startswith(b"\x89PNG")


@pytest.mark.parametrize("kind", ["roc", "pr"])
def test_curves_highlight_the_worst_classes_by_name(kind: str) -> None:
    proba, labels = probabilities(2_000, 12, 1)
    proba[labels == 5] = np.roll(proba[labels == 5], 1, axis=1)  # class 5 ranked badly
    ranked = ranking.rankings(proba, labels)
    if kind == "roc":
        lines, micro = ranking.roc_curves(proba, labels)
        areas = [r.auc for r in ranked.classes]
        fig = evaluation.roc_figure(lines, micro, areas, model="m", classes=NAMES)
        assert fig.axes[0].get_xscale() == "log"
    else:
        lines, micro = ranking.pr_curves(proba, labels)
        areas = [r.average_precision for r in ranked.classes]
        fig = evaluation.pr_figure(lines, micro, areas, model="m", classes=NAMES)
        assert fig.axes[1].get_xlim()[0] == pytest.approx(0.8)
    worst = evaluation.worst(areas, count=3)
    assert worst[0] == 5
    legend = legend_texts(fig)
    assert legend[0].startswith("class name 5 (")  # named, never by index
    assert [text.split(" (")[0] for text in legend[:3]] == [NAMES[k] for k in worst]
    assert "other classes" in legend and "micro-average" in legend
    assert "(lowest 3 highlighted)" in suptitle(fig)
    grey = [line for line in fig.axes[0].lines if line.get_color() == evaluation.OTHERS]
    assert len(grey) == 1  # the legend entry of the others, drawn as one collection:
    (others,) = fig.axes[0].collections
    segments = others.get_segments()
    assert len(segments) == 12 - 3  # the other nine
    first = lines[min(set(range(12)) - set(worst))]
    assert first is not None and len(segments[0]) == 2 * len(first.x) - 1  # as steps
    assert segments[0][1].tolist() == [max(first.x[1], segments[0][0][0]), first.y[0]]
    style.render_png(fig)


def test_long_class_names_are_shortened() -> None:
    # Panel titles cut class names to evaluation.NAME_CHARS characters.
    assert truncate("Ankle boot", evaluation.NAME_CHARS) == "Ankle boot"
    assert truncate("a very long class name indeed", evaluation.NAME_CHARS) == "a very long…"
    assert truncate("a very long class name indeed", 9) == "a very l…"


@pytest.mark.parametrize("rgb", [False, True])
def test_attributions_draw_image_and_two_maps_per_image(rgb: bool) -> None:
    images, _ = make_digits(5, seed=2)
    if rgb:
        images = np.stack([images, images // 2, 255 - images], axis=-1)  # [N, H, W, 3]
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(2, 5, 28, 28))
    fig = attribution.attribution_figure(
        images, maps[0], maps[1], np.arange(5) * 7, ["four"] * 5, ["nine"] * 5,
        model="m", title="true four predicted as nine", total=9,
    )  # fmt: skip
    assert suptitle(fig) == "m: attributions, true four predicted as nine (first 5 of 9 shown)"
    (ax,) = fig.axes  # every panel an image on one hidden Axes, not an Axes each
    assert len(ax.images) == 15
    titles = [text.get_text() for text in ax.texts]
    assert titles[:3] == ["test image\n#0", "nine\n(predicted)", "four\n(true)"]
    limit = np.abs(maps[:, 0]).max()
    drawn = ax.images[1].get_array()
    assert np.array_equal(drawn, attribution.map_colours(maps[0, 0], images[0], limit))
    # Centred at 0: a zero attribution on ink is white; no ink at all is grey.
    blank = images[0].reshape(28, 28, -1).max(axis=-1) == 0
    assert (drawn[blank] == attribution.NO_INK).all()
    zero = attribution.map_colours(np.zeros((28, 28)), images[0], limit)
    assert (zero[~blank][:, :3] > 0.95).all()
    # No line over a map (Agg's blending is not exact): the one collection frames the panels.
    (frames,) = ax.collections
    edges = [path.get_extents() for path in frames.get_paths()]
    edges = [(box.x0, box.x1, box.y0, box.y1) for box in edges]
    assert np.allclose(edges, [image.get_extent() for image in ax.images])
    style.render_png(fig)


def test_nothing_to_attribute_says_so() -> None:
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    fig = attribution.attribution_figure(
        empty, np.zeros((0, 28, 28)), np.zeros((0, 28, 28)), [], [], [],
        model="m", title="misclassified test images", total=0,
    )  # fmt: skip
    assert "no image to attribute" in texts(fig)
    with pytest.raises(ValueError, match="same length"):
        attribution.attribution_figure(
            make_digits(2, seed=1)[0], np.zeros((1, 28, 28)), np.zeros((2, 28, 28)), [0, 1],
            ["a", "b"], ["c", "d"], model="m", title="t", total=2,
        )  # fmt: skip
    with pytest.raises(ValueError, match="uint8"):
        attribution.attribution_figure(
            np.zeros((1, 28, 28)), np.zeros((1, 28, 28)), np.zeros((1, 28, 28)), [0],
            ["a"], ["b"], model="m", title="t", total=1,
        )  # fmt: skip


def test_perfect_precision_curves_still_get_a_zoom_band() -> None:
    y = np.repeat(np.arange(3), 20)
    proba = np.eye(3)[y] * 0.9 + 0.1 / 3  # every class ranked perfectly
    pr, micro = ranking.pr_curves(proba, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns about an empty y range
        fig = evaluation.pr_figure(pr, micro, [1.0, 1.0, 1.0], model="m",
                                           classes=["a", "b", "c"])  # fmt: skip
    low, high = fig.axes[1].get_ylim()
    assert low <= evaluation.MIN_ZOOM_TOP < 1.0 < high
