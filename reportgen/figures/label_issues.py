"""The gallery of suspected label errors: each image, its label, the suggestion, the evidence."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from reportgen.figures.checks import (
    check_array,
    check_class_labels,
    check_images,
    check_same_length,
)
from reportgen.figures.panels import (
    grid_height,
    image_grid,
    message_figure,
    panel_chars,
    panel_side,
)
from reportgen.figures.style import (
    TITLE_LINE_IN,
    new_figure,
    short_names,
    styled,
    wrapped_title,
)

FONT_SIZE = 7.0


@styled
def label_issues_figure(
    images: ArrayLike,
    indices: ArrayLike,
    labels: ArrayLike,
    suggested: ArrayLike,
    p_label: ArrayLike,
    p_suggested: ArrayLike,
    *,
    models: Sequence[str],
    classes: Sequence[str],
    total: int,
    columns: int = 6,
) -> Figure:
    """Draw the first suspected label errors, titled with the label, the suggestion and evidence.

    Parameters
    ----------
    images : array-like of uint8, shape (n, H, W) or (n, H, W, 3)
        The suspected images, grey or RGB, by rank.
    indices : array-like of int, shape (n,)
        Their test positions.
    labels, suggested : array-like of int, shape (n,)
        The given labels and the classes suggested instead.
    p_label, p_suggested : array-like of float, shape (n, models)
        Each model's probability of the given label and of the suggested class.
    models : sequence of str
        The models, in the order of the probabilities' columns.
    classes : sequence of str
        Class names in index order; a name too long for its panel ends in "…".
    total : int
        How many images are suspected in all.
    columns : int, default 6
        Panels per row.

    Returns
    -------
    Figure
        The gallery, or one sentence when nothing is suspected.
    """
    pixels = check_images(images, "images")
    positions = check_array(indices, "indices", ndim=1)
    given = check_array(labels, "labels", ndim=1)
    instead = check_array(suggested, "suggested", ndim=1)
    of_label = check_array(p_label, "p_label", ndim=2)
    of_suggested = check_array(p_suggested, "p_suggested", ndim=2)
    check_same_length(images=pixels, indices=positions, labels=given, suggested=instead,
                      p_label=of_label, p_suggested=of_suggested)  # fmt: skip
    check_class_labels(classes, given, "labels")
    check_class_labels(classes, instead, "suggested")
    if of_label.shape[1] != len(models) or of_suggested.shape[1] != len(models):
        raise ValueError(f"p_label and p_suggested need one column per model ({len(models)})")
    title = "Suspected label errors"
    if len(pixels) == 0:
        return message_figure(new_figure(1.0), "no test label is suspected", title=title)
    columns = min(columns, len(pixels))
    rows = math.ceil(len(pixels) / columns)
    # A panel's title: "#position label", "→ suggested", then one line per model, in the
    # order the figure's title names them: "p(label) → p(suggested)".
    chars = panel_chars(max(columns, 6), font_size=FONT_SIZE)
    names = short_names(classes, max(4, chars - len("#00000 ")))
    named = short_names(models, 24)
    whose = (f"of the {named[0]} model" if len(named) == 1
             else "of " + ", then ".join(named))  # fmt: skip
    title = wrapped_title(
        f"{title} (first {len(pixels)} of {total}, strongest evidence first).",
        "Each image: test position and given label, → the suggested class,",
        f"then p(label) → p(suggested) {whose}",
    )
    titles = [
        "\n".join(
            [f"#{index} {names[label]}", f"→ {names[better]}"]
            + [f"{p:.2f} → {q:.2f}" for p, q in zip(ps, qs, strict=True)]
        )
        for index, label, better, ps, qs in zip(
            positions, given, instead, of_label, of_suggested, strict=True
        )
    ]
    aspect = pixels.shape[1] / pixels.shape[2]
    more = TITLE_LINE_IN * title.count("\n")
    lines = 2 + len(models)
    fig = new_figure(
        grid_height(rows, max(columns, 6), title_lines=lines, title_size=FONT_SIZE, aspect=aspect)
        + more
    )
    image_grid(fig, pixels, titles, columns=columns, side=panel_side(max(columns, 6)),
               title_size=FONT_SIZE)  # fmt: skip
    fig.suptitle(title)
    return fig
