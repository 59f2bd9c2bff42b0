"""The figures drawn from the data: the duplicate pairs' gallery and the class balance."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.artifacts.catalogue import MANY_CLASSES
from reportgen.evaluate import class_balance
from reportgen.figures import style
from reportgen.figures.data_checks import class_balance_figure, duplicates_figure
from reportgen.figures.placed import image_panels
from reportgen.report.page import PNG_SIGNATURE


def test_class_counts_and_the_under_represented_classes() -> None:
    counts = {
        "train": class_balance.class_counts([0, 0, 0, 1, 1, 1, 2, 3, 3, 3], num_classes=4),
        "test": class_balance.class_counts([], num_classes=4),
    }
    assert counts == {"train": [3, 3, 1, 3], "test": [0, 0, 0, 0]}
    # The training mean is 2.5 a class: class 2 (1 image) is below half of it, none other.
    scarce = class_balance.under_represented(counts, share=0.5)
    assert [(s.split, s.label, s.images, s.mean) for s in scarce] == [("train", 2, 1, 2.5)]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\]"):
        class_balance.class_counts([4], num_classes=4)


@pytest.mark.parametrize("k", [10, 300])
def test_class_balance_figure(k: int) -> None:
    rng = np.random.default_rng(0)
    train, val, test = (rng.integers(20, 60, k) for _ in range(3))
    fig = class_balance_figure(train, val, test, classes=[f"c{i}" for i in range(k)],
                               under_share=0.5)  # fmt: skip
    (ax,) = fig.axes
    # Few classes: three bars per class; many: one line per split plus the threshold.
    assert len(ax.patches) == (3 * k if k <= MANY_CLASSES else 0)
    assert len(ax.lines) == (1 if k <= MANY_CLASSES else 4)
    assert ax.lines[-1].get_ydata()[0] == pytest.approx(0.5 / k)  # half the mean share
    assert "Images per class" in fig._suptitle.get_text()  # type: ignore[union-attr]
    assert style.render_png(fig).startswith(PNG_SIGNATURE)


def test_duplicates_figure_puts_each_test_image_beside_its_duplicate() -> None:
    images = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    fig = duplicates_figure(images, images[::-1], [5, 7, 9], [1, 2, 3], [0.0, 0.0004, 0.0009],
                            splits=["train", "val", "train"], total=40)  # fmt: skip
    titles = [title for title, _ in image_panels(fig)]
    assert titles == ["test #5", "train #1\nsame pixels", "test #7", "val #2\nd = 0.0004",
                      "test #9", "train #3\nd = 0.0009"]  # fmt: skip
    assert "(3 of 40 pairs shown)" in fig._suptitle.get_text()  # type: ignore[union-attr]
    assert style.render_png(fig).startswith(PNG_SIGNATURE)
