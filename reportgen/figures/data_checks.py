"""Figures of the data themselves: the gallery of train–test duplicate pairs, the class balance."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from numpy.typing import ArrayLike

from reportgen.artifacts.catalogue import MANY_CLASSES
from reportgen.figures.checks import check_array, check_class_count, check_images, check_same_length
from reportgen.figures.panels import grid_height, image_grid, message_figure, panel_side
from reportgen.figures.placed import FRAME_COLOR, FRAME_WIDTH
from reportgen.figures.style import (
    HIGHLIGHT,
    OKABE_ITO,
    TITLE_LINE_IN,
    new_figure,
    short_names,
    styled,
    wrapped_title,
)

SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}


@styled
def duplicates_figure(
    test_images: ArrayLike,
    matched_images: ArrayLike,
    test_indices: ArrayLike,
    matched_indices: ArrayLike,
    distances: ArrayLike,
    *,
    splits: Sequence[str],
    total: int,
    pairs_per_row: int = 4,
) -> Figure:
    """Draw each test image beside its duplicate in the training or validation split.

    Parameters
    ----------
    test_images, matched_images : array-like of uint8, shape (n, H, W) or (n, H, W, 3)
        The pairs' test images and their duplicates, in the order to show them.
    test_indices, matched_indices : array-like of int, shape (n,)
        Their positions in the test split and in the duplicate's split.
    distances : array-like of float, shape (n,)
        1 − cosine of each pair (0: the same pixels).
    splits : sequence of str, length n
        Each duplicate's split, "train" or "val".
    total : int
        How many pairs were found in all.
    pairs_per_row : int, default 4
        Pairs side by side in one row (two panels each).

    Returns
    -------
    Figure
        The pairs, or one sentence when there are none.
    """
    test = check_images(test_images, "test_images")
    matched = check_images(matched_images, "matched_images")
    test_at = check_array(test_indices, "test_indices", ndim=1)
    matched_at = check_array(matched_indices, "matched_indices", ndim=1)
    far = check_array(distances, "distances", ndim=1)
    check_same_length(test_images=test, matched_images=matched, test_indices=test_at,
                      matched_indices=matched_at, distances=far)  # fmt: skip
    if len(splits) != len(test):
        raise ValueError(f"splits has {len(splits)} entries for {len(test)} pairs")
    title = "Test images and their duplicates in the training or validation split"
    if len(test) == 0:
        return message_figure(new_figure(1.0), "no duplicate was found", title=title)
    columns = 2 * min(pairs_per_row, len(test))
    interleaved = np.empty((2 * len(test), *test.shape[1:]), dtype=test.dtype)
    interleaved[0::2], interleaved[1::2] = test, matched
    titles = []
    for t, m, d, split in zip(test_at, matched_at, far, splits, strict=True):
        titles.append(f"test #{t}")
        titles.append(f"{split} #{m}\n" + ("same pixels" if d == 0 else f"d = {d:.4f}"))
    rows = math.ceil(len(interleaved) / columns)
    title = wrapped_title(title, f"({len(test)} of {total} pairs shown)")
    more = TITLE_LINE_IN * title.count("\n")
    aspect = test.shape[1] / test.shape[2]
    fig = new_figure(grid_height(rows, max(columns, 6), title_lines=2, aspect=aspect) + more)
    # The duplicate's frame in the highlight colour.
    frames = [(FRAME_COLOR, FRAME_WIDTH), (HIGHLIGHT, 1.0)] * len(test)
    image_grid(fig, interleaved, titles, columns=columns, side=panel_side(max(columns, 6)),
               frames=frames)  # fmt: skip
    fig.suptitle(title)
    return fig


@styled
def class_balance_figure(
    train: ArrayLike,
    val: ArrayLike,
    test: ArrayLike,
    *,
    classes: Sequence[str],
    under_share: float,
) -> Figure:
    """Draw each class's share of the training, validation and test images.

    Parameters
    ----------
    train, val, test : array-like of int, shape (k,)
        Images per class of each split.
    classes : sequence of str, length k
        Class names in index order.
    under_share : float
        A class under this share of the mean per class is under-represented:
        a dashed line marks it.

    Returns
    -------
    Figure
        Grouped bars per class up to
        :data:`~reportgen.artifacts.catalogue.MANY_CLASSES` classes; above, one
        line per split over the classes ordered by their training share, so
        that 300 classes stay readable.
    """
    counts = {name: check_array(values, name, ndim=1).astype(np.float64)
              for name, values in (("train", train), ("val", val), ("test", test))}  # fmt: skip
    k = len(counts["train"])
    for name, values in counts.items():
        check_class_count(classes, len(values), f"{name} counts")
    shares = {name: values / values.sum() if values.sum() else values
              for name, values in counts.items()}  # fmt: skip
    line = under_share / k
    percent = PercentFormatter(xmax=1.0, decimals=1 if k <= 50 else 2)
    title = wrapped_title("Images per class", "as a share of each split")
    more = TITLE_LINE_IN * title.count("\n")
    fig = new_figure(2.6 + more)
    ax = fig.subplots()
    colors = dict(zip(SPLIT_NAMES, OKABE_ITO[:3], strict=False))
    if k <= MANY_CLASSES:
        width = 0.8 / 3
        positions = np.arange(k)
        for offset, (name, share) in enumerate(shares.items()):
            ax.bar(positions + (offset - 1) * width, share, width=width, color=colors[name],
                   label=f"{SPLIT_NAMES[name]} ({int(counts[name].sum()):,})")  # fmt: skip
        names = short_names(classes, 10 if k <= 12 else 6)
        ax.set_xticks(positions, names, rotation=0 if k <= 12 else 45,
                      ha="center" if k <= 12 else "right")  # fmt: skip
        ax.set_xlabel("class")
        ax.grid(axis="x", visible=False)
    else:
        order = np.argsort(-shares["train"], kind="stable")
        ranks = np.arange(1, k + 1)
        # Training as a line (it sets the order), the others as dots around it.
        for name, share in shares.items():
            look = ({"linewidth": 1.2, "zorder": 3} if name == "train"
                    else {"linestyle": "none", "marker": ".", "markersize": 2.5})  # fmt: skip
            ax.plot(ranks, share[order], color=colors[name], **look,
                    label=f"{SPLIT_NAMES[name]} ({int(counts[name].sum()):,})")  # fmt: skip
        ax.set_xlim(1, k)
        ax.set_xlabel(f"class, by its share of the training images ({k} classes)")
    ax.axhline(line, color=HIGHLIGHT, linestyle="--", linewidth=0.9,
               label=f"under-represented below ({under_share:g} × mean)")  # fmt: skip
    ax.set_ylabel("share of the split")
    ax.yaxis.set_major_formatter(percent)
    ax.set_ylim(0, max(float(max(s.max(initial=0.0) for s in shares.values())) * 1.15, line * 1.5))
    handles, labels = ax.get_legend_handles_labels()
    last = [label.startswith("under-represented") for label in labels]  # the dashed line last
    shown = sorted(range(len(labels)), key=lambda i: last[i])
    ax.legend([handles[i] for i in shown], [labels[i] for i in shown], loc="lower right",
              bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=7)  # fmt: skip
    fig.suptitle(title, x=0.02, ha="left")
    return fig
