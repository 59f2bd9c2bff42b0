"""The per-class error chart at many classes: the worst ``report.table_rows``, at a fixed size."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from reportgen.figures import classes, style

K = 20


def png_size(png: bytes) -> tuple[int, int]:
    """Return a PNG's (width, height) in pixels, from its header."""
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def many(n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Error rates with many ties, supports with ties, names whose order is not the index order."""
    rng = np.random.default_rng(5)
    rates = np.round(rng.random(n) * 0.5, 1)  # six values: ties everywhere
    support = rng.integers(19, 22, n)
    names = [f"k{(7 * i) % n:03d}" for i in range(n)]
    return rates, support, names


def test_at_300_classes_the_chart_shows_the_k_worst_at_the_size_of_k_classes() -> None:
    rates, support, names = many(300)
    expected = sorted(range(300), key=lambda i: (-rates[i], -support[i], names[i]))[:K]
    assert len({rates[i] for i in expected}) == 1  # the cut falls inside one tie
    worst = expected[:3]
    fig = classes.class_errors_figure(
        rates, model="m", classes=names, worst=worst, support=support, limit=K
    )
    ax = fig.get_axes()[0]
    assert [bar.get_width() for bar in ax.patches] == rates[expected].tolist()
    assert [label.get_text() for label in ax.get_yticklabels()] == [names[i] for i in expected]
    assert ax.get_ylabel() == f"true class ({K} of 300 classes)"
    png = style.render_png(fig)
    again = style.render_png(
        classes.class_errors_figure(
            rates, model="m", classes=names, worst=worst, support=support, limit=K
        )
    )
    assert png == again
    k_rates, k_support, k_names = many(K)
    k_png = style.render_png(
        classes.class_errors_figure(
            k_rates, model="m", classes=k_names, worst=[0, 1, 2], support=k_support, limit=K
        )
    )
    assert png_size(png) == png_size(k_png)
    assert png_size(png)[1] < 2 * png_size(png)[0]  # not a strip: at most twice as high as wide


def test_up_to_the_limit_every_class_is_shown_in_class_order() -> None:
    rates, support, names = many(K)
    fig = classes.class_errors_figure(rates, model="m", classes=names, support=support, limit=K)
    ax = fig.get_axes()[0]
    assert [bar.get_width() for bar in ax.patches] == rates.tolist()
    assert ax.get_ylabel() == "true class"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"support": [1, 2]}, r"support must be \[3\] \(one per class\); got \(2,\)"),
        ({"limit": 0}, "limit must be at least 1; got 0"),
    ],
)
def test_bad_support_or_limit_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classes.class_errors_figure([0.1, 0.2, 0.3], model="m", classes=["a", "b", "c"], **kwargs)
