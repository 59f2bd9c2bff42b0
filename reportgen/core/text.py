"""How numbers and text read in every page and message reportgen writes.

One function per kind of number, so a percentage or a p-value has the same
precision wherever it appears (they are also the templates' filters), and
one function per way of shortening text: a list in a sentence, a name in a
narrow space, an error in a one-line message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from reportgen.core.errors import ReportgenError

MISSING = "—"  # a value that was not measured
MINUS = "\N{MINUS SIGN}"
P_FLOOR = 0.001  # smaller p-values are shown as "< 0.001"
# Unicode's bidirectional formatting characters (the Bidi_Control property): invisible,
# they reorder the text around them, so a name can read as something it is not.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


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


def class_phrase(name: str) -> str:
    """Return ``"class 4"`` for a class named ``4``, but ``"class_002"`` for one named so.

    Folders named ``class_002`` would otherwise read "class class_002".
    """
    if name[:5].lower() == "class" and (len(name) == 5 or not name[5].isalpha()):
        return name
    return f"class {name}"


def first_few(items: Sequence[str], limit: int = 5) -> str:
    """Return the first ``limit`` items joined by commas, "…" when there are more (for messages)."""
    return ", ".join(items[:limit]) + (", …" if len(items) > limit else "")


def join(items: Sequence[str]) -> str:
    """Return items as a sentence lists them: ``""``, ``"a"``, ``"a and b"``, ``"a, b and c"``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def join_some(items: Sequence[str], limit: int = 5) -> str:
    """Return at most ``limit`` items as a sentence lists them, counting the rest.

    ``"a, b and c"`` when they fit; ``"a, b, c, d, e and 295 more"`` when
    there are more, so a sentence about many classes stays one line long.
    """
    if len(items) <= limit:
        return join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit:,} more"


def truncate(text: str, width: int, *, middle: bool = False) -> str:
    """Return ``text`` cut to ``width`` characters with "…" at the end (or in the middle).

    A cut at the end drops the spaces before the "…" ("Ankle…", not "Ankle …");
    a cut in the middle keeps the last third, where names that share a
    prefix ("class-name-17") differ.
    """
    if len(text) <= width:
        return text
    if not middle:
        return text[: max(width - 1, 1)].rstrip() + "…"
    tail = max((width - 1) // 3, 1)
    return text[: max(width - 1 - tail, 1)] + "…" + text[-tail:]


def hidden_character(text: str) -> str | None:
    """Return the first character of ``text`` that must not reach a report, described; else None.

    That is a control character (U+0000–U+001F, U+007F–U+009F: tab and line
    feed too), a line or paragraph separator (U+2028, U+2029), a
    bidirectional formatting character (:data:`BIDI_CONTROLS`) or a lone
    surrogate (how Python hands over bytes that are not UTF-8).  Other
    invisible characters, such as the zero-width joiner some scripts and
    emoji need, are allowed.
    """
    for char in text:
        category = unicodedata.category(char)
        if category == "Cs":
            return "bytes that are not UTF-8"
        if char in BIDI_CONTROLS:
            kind = "the bidirectional formatting character"
        elif category == "Cc":
            kind = "the control character"
        elif category in ("Zl", "Zp"):
            kind = "the line break"
        else:
            continue
        name = unicodedata.name(char, "")
        return f"{kind} U+{ord(char):04X}" + (f" ({name.lower()})" if name else "")
    return None


def one_line(error: BaseException, *, typed: bool = False) -> str:
    """Return why ``error`` happened as one line, fit for a message on stderr or in a report.

    An OS error gives its reason ("No space left on device"), a recursion error
    says the input was nested too deeply, anything else the first line of its
    message with its spaces collapsed (its type name when it has none).  With
    ``typed``, an exception that is not a :class:`ReportgenError` is prefixed with
    its type, so a bug does not read like a user's mistake.
    """
    lines = [line for line in str(error).splitlines() if line.strip()]
    message = " ".join(lines[0].split()) if lines else ""
    if typed and not isinstance(error, ReportgenError):
        return f"{type(error).__name__}: {message}" if message else type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return message or type(error).__name__
