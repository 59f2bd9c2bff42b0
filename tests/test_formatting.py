"""One way to write each kind of number, wherever it appears."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reportgen import formatting


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        (formatting.pct, 0.97912, "97.91%"),
        (formatting.pct, None, "—"),
        (formatting.pp, 0.0031, "+0.31 pp"),
        (formatting.pp, -0.0125, "−1.25 pp"),
        (formatting.pp, 0.0, "+0.00 pp"),
        (formatting.level, 0.95, "95%"),
        (formatting.level, 0.975, "97.5%"),
        (formatting.num, 235146, "235,146"),
        (formatting.num, 0.31254, "0.3125"),
        (formatting.num, None, "—"),
        (formatting.pvalue, 1.0, "1.000"),
        (formatting.pvalue, 0.0312, "0.031"),
        (formatting.pvalue, 0.001, "0.001"),
        (formatting.pvalue, 0.00099, "< 0.001"),
        (formatting.pvalue, 3.7e-06, "< 0.001"),
        (formatting.p_equals, 0.0312, "p = 0.031"),
        (formatting.p_equals, 2.2e-07, "p < 0.001"),
        (formatting.sci, 0.001, "0.001"),
        (formatting.sci, 0.0001, "0.0001"),
        (formatting.sci, 0.00001, "1e-05"),
        (formatting.yesno, True, "yes"),
    ],
)
def test_numbers(function: Callable[[Any], str], value: Any, expected: str) -> None:
    assert function(value) == expected


@pytest.mark.parametrize(
    ("number", "text"), [(0, "0 images"), (1, "1 image"), (1009, "1,009 images")]
)
def test_count(number: int, text: str) -> None:
    assert formatting.count(number, "image") == text
