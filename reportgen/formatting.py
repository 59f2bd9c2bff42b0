"""How numbers read in every page reportgen writes: report, comparison, email, CI summary.

One function per kind of number, so a percentage or a p-value has the same
precision wherever it appears.  They are also the templates' filters.
"""

from __future__ import annotations

from collections.abc import Sequence

MISSING = "—"  # a value that was not measured
MINUS = "\N{MINUS SIGN}"
P_FLOOR = 0.001  # smaller p-values are shown as "< 0.001"


def pct(value: float | None, digits: int = 2) -> str:
    """Return a fraction as a percentage, e.g. ``0.9791`` -> ``"97.91%"``."""
    if value is None:
        return MISSING
    return f"{100 * value:.{digits}f}%"


def pp(value: float | None, digits: int = 2) -> str:
    """Return a signed difference of fractions in percentage points, e.g. ``"+0.31 pp"``."""
    if value is None:
        return MISSING
    return f"{100 * value:+.{digits}f} pp".replace("-", MINUS)


def level(value: float) -> str:
    """Return the coverage of an interval, e.g. ``0.95`` -> ``"95%"``, ``0.975`` -> ``"97.5%"``."""
    return f"{100 * value:g}%"


def pvalue(value: float) -> str:
    """Return a p-value: three decimals, or ``"< 0.001"``."""
    return f"< {P_FLOOR:g}" if value < P_FLOOR else f"{value:.3f}"


def p_equals(value: float) -> str:
    """Return a p-value for a sentence: ``"p = 0.031"`` or ``"p < 0.001"``."""
    shown = pvalue(value)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def num(value: float | None, digits: int = 4) -> str:
    """Return an integer with thousands separators, or a float with ``digits`` decimals."""
    if value is None:
        return MISSING
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def sci(value: float) -> str:
    """Return a learning rate or similar small number compactly, e.g. ``"0.001"``, ``"1e-05"``."""
    return f"{value:g}"


def yesno(value: bool) -> str:
    """Return ``"yes"`` or ``"no"``."""
    return "yes" if value else "no"


def count(number: int, noun: str) -> str:
    """Return ``"1 image"``, ``"1,009 images"``: a count with its noun in the right number."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def first_few(items: Sequence[str], limit: int = 5) -> str:
    """Return the first ``limit`` items joined by commas, "…" when there are more (for messages)."""
    return ", ".join(items[:limit]) + (", …" if len(items) > limit else "")
