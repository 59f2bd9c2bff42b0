"""One way to write each kind of number, wherever it appears."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reportgen.core import text as text_mod


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        (text_mod.pct, 0.97912, "97.91%"),
        (text_mod.pct, None, "—"),
        (text_mod.pp, 0.0031, "+0.31 pp"),
        (text_mod.pp, -0.0125, "−1.25 pp"),
        (text_mod.pp, 0.0, "+0.00 pp"),
        (text_mod.level, 0.95, "95%"),
        (text_mod.level, 0.975, "97.5%"),
        (text_mod.num, 235146, "235,146"),
        (text_mod.num, 0.31254, "0.3125"),
        (text_mod.num, None, "—"),
        (text_mod.pvalue, 1.0, "1.000"),
        (text_mod.pvalue, 0.0312, "0.031"),
        (text_mod.pvalue, 0.001, "0.001"),
        (text_mod.pvalue, 0.00099, "< 0.001"),
        (text_mod.pvalue, 3.7e-06, "< 0.001"),
        (text_mod.p_equals, 0.0312, "p = 0.031"),
        (text_mod.p_equals, 2.2e-07, "p < 0.001"),
        (text_mod.sci, 0.001, "0.001"),
        (text_mod.sci, 0.0001, "0.0001"),
        (text_mod.sci, 0.00001, "1e-05"),
        (text_mod.yesno, True, "yes"),
    ],
)
def test_numbers(function: Callable[[Any], str], value: Any, expected: str) -> None:
    assert function(value) == expected


@pytest.mark.parametrize(
    ("number", "text"), [(0, "0 images"), (1, "1 image"), (1009, "1,009 images")]
)
def test_count(number: int, text: str) -> None:
    assert text_mod.count(number, "image") == text


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, ""),
        (1, "c0"),
        (2, "c0 and c1"),
        (5, "c0, c1, c2, c3 and c4"),
        (6, "c0, c1, c2, c3, c4 and 1 more"),
        (1300, "c0, c1, c2, c3, c4 and 1,295 more"),
    ],
)
def test_join_some_names_five_and_counts_the_rest(size: int, expected: str) -> None:
    assert text_mod.join_some([f"c{k}" for k in range(size)]) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("4", "class 4"), ("cat", "class cat"), ("class_002", "class_002"), ("Class 7", "Class 7"),
     ("classic", "class classic"), ("class", "class")],
)  # fmt: skip
def test_class_phrase_does_not_say_class_twice(name: str, expected: str) -> None:
    assert text_mod.class_phrase(name) == expected
