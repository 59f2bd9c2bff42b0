"""The one visual style of every figure, and turning a figure into deterministic PNG bytes.

Every drawing function builds a :class:`matplotlib.figure.Figure` with the
object API (no pyplot state, no figure manager, nothing shown) under
:data:`STYLE`, applied with ``rc_context`` while a figure is built and while
it is saved, so the host process's matplotlib settings are left alone.

Sizes are chosen for the PDF: every figure is :data:`WIDTH_IN` wide, the A4
text width (17 cm), so fonts print at their nominal size, and :data:`DPI`
gives sharp print (180 dpi at that size) while a whole run's PNGs stay a few
MB.  HTML shows the same PNGs scaled to the column.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ParamSpec

import matplotlib as mpl
import numpy as np
import PIL.Image
from cycler import cycler
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ft2font import FT2Font
from matplotlib.lines import Line2D
from matplotlib.typing import LineStyleType

from reportgen.core.text import truncate

WIDTH_IN = 6.7  # 17 cm: the A4 text width the PDF report uses
DPI = 180
# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)


HIGHLIGHT = "#D55E00"  # vermillion: the few things a chart wants noticed
MUTED = "#0072B2"
DIGIT_CMAP = "gray_r"  # ink dark on white paper
WEIGHT_CMAP = "RdBu_r"  # diverging, colour-blind safe; red positive, blue negative
MAP_CMAP = "viridis"
HEATMAP_CMAP = "Blues"
STYLE: dict[Any, Any] = {
    # DejaVu Sans ships with matplotlib, so every machine renders the same
    # glyphs; the PDF report uses the same typeface.
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "figure.titlesize": 10,
    "figure.titleweight": "bold",
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.5,
    "lines.markersize": 3.5,
    "legend.frameon": False,
    "image.interpolation": "nearest",  # pixels stay pixels
}


TRAIN_STYLE: dict[str, Any] = {"linestyle": "-", "marker": "o"}
VAL_STYLE: dict[str, Any] = {"linestyle": "--", "marker": "s"}


# Lines that must be told apart without colour: one style and marker per model.
LINESTYLES: tuple[LineStyleType, ...] = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v")
LR_LOG_RATIO = 10.0  # a learning rate that varies by this factor or more gets a log axis
# DejaVu Sans averages about 0.6 em per character: enough to decide where a class name fits.
CHAR_WIDTH_EM = 0.6
P = ParamSpec("P")


# Font families drawn where DejaVu Sans has no glyph (report.font; see fallback_font).
_fallback_families: list[str] = []


@contextlib.contextmanager
def drawing_style() -> Iterator[None]:
    """Apply :data:`STYLE` and restore the caller's settings after.

    A character DejaVu Sans lacks is drawn in the fallback font
    (:func:`fallback_font`) where there is one, else as a box; matplotlib
    would warn about a box for every text that holds it (many lines per
    figure), so those warnings are silenced here and the run says it once
    (:func:`missing_glyphs`).
    """
    style = STYLE
    if _fallback_families:
        # A list of families is matplotlib's per-glyph fallback (the generic
        # "sans-serif" would resolve to DejaVu Sans alone).
        style = {**STYLE, "font.family": [*STYLE["font.sans-serif"], *_fallback_families]}
    with mpl.rc_context(style), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning
        )
        yield


@contextlib.contextmanager
def fallback_font(path: Path | None) -> Iterator[None]:
    """Draw the figures built inside with ``path`` for the glyphs DejaVu Sans lacks.

    The font is registered with matplotlib's font manager in this process;
    the drawing pool's workers are forked inside, so they inherit both.
    ``None`` changes nothing.
    """
    if path is None:
        yield
        return
    before = list(_fallback_families)
    _fallback_families[:] = [_register(path)]
    # One face serves every weight: bold text in it is drawn regular, which matplotlib
    # would otherwise log for every text that holds such a character.
    log = logging.getLogger("matplotlib.font_manager")
    log.addFilter(_not_a_weight_substitution)
    try:
        yield
    finally:
        _fallback_families[:] = before
        log.removeFilter(_not_a_weight_substitution)


def _not_a_weight_substitution(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("findfont: Failed to find font weight")


@functools.cache
def _register(path: Path) -> str:
    """Add the font at ``path`` to matplotlib's font manager; return its family name."""
    known = len(font_manager.fontManager.ttflist)
    font_manager.fontManager.addfont(path)
    return font_manager.fontManager.ttflist[known].name


@functools.cache
def _font_characters() -> frozenset[int]:
    """Return the code points DejaVu Sans, as matplotlib ships it, has a glyph for."""
    path = Path(mpl.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return frozenset(FT2Font(str(path)).get_charmap())


def missing_glyphs(text: str, extra: frozenset[int] = frozenset()) -> list[str]:
    """Return the characters of ``text`` that the DejaVu fonts and ``extra`` lack, once each.

    The figures and the PDF use these fonts only, and ``extra`` is what a
    supplied font (``report.font``) has, so such a character shows as a box
    in both.
    """
    have = _font_characters()
    return list(dict.fromkeys(
        c for c in text if ord(c) not in have and ord(c) not in extra and not c.isspace()
    ))  # fmt: skip


def styled(build: Callable[P, Figure]) -> Callable[P, Figure]:
    """Build the figure under :data:`STYLE` (fonts and colours are fixed when artists are made)."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with drawing_style():
            return build(*args, **kwargs)

    return wrapper


def new_figure(height: float) -> Figure:
    """Return an empty figure, the report's width and ``height`` inches high; constrained layout."""
    # No canvas is attached: savefig renders PNG with Agg on its own, without
    # pyplot, and seaborn's heatmap then skips its full "draw to check tick
    # label overlap" pass, which would otherwise triple the cost of a heatmap.
    return Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")


def model_color(position: int) -> str:
    """Return the colour of the model at ``position`` in training order (same in every figure)."""
    return OKABE_ITO[position % len(OKABE_ITO)]


def render_png(fig: Figure) -> bytes:
    """Return the figure as PNG bytes; fixed DPI and no metadata make equal figures equal bytes.

    Render a figure once, as built: constrained layout settles further on a
    second draw, so a re-render of the same object may differ by a pixel.
    """
    with drawing_style():
        # The Agg canvas lays out and draws once; savefig would add a
        # layout-only draw first, for no visible difference.
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())  # [H, W, 4] uint8
    # Every figure has an opaque face, so its alpha channel is 255 throughout:
    # written as RGB, the same pixels are a quarter less to compress, to store
    # and to decode for the PDF (which would keep the alpha as a soft mask).
    pixels = rgba[..., :3] if bool((rgba[..., 3] == 255).all()) else rgba
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.ascontiguousarray(pixels)).save(
        buffer, format="png", dpi=(fig.dpi, fig.dpi)
    )
    return buffer.getvalue()


def plain(text: str) -> str:
    """Return ``text`` with its dollar signs escaped, so matplotlib never reads it as math."""
    return text.replace("$", r"\$")


def short_names(classes: Sequence[str], width: int) -> list[str]:
    """Return the class names cut to ``width`` characters, still telling every class apart.

    Names are cut at the end ("Ankle bo…"); when that makes two alike (names
    that differ only at the end, like "class-name-17"), they are cut in the
    middle instead, which keeps the end.  Names are drawn as written
    (:func:`plain`).
    """
    names = [truncate(name, width) for name in classes]
    if len(set(names)) < len(names):
        names = [truncate(name, width, middle=True) for name in classes]
    return [plain(name) for name in names]


TITLE_LINE_IN = 0.2  # height of one more title line


def title_width_in(text: str) -> float:
    """Return the width (in) of ``text`` set as a figure title, measured with the title's font."""
    font = FontProperties(family=STYLE["font.sans-serif"], size=STYLE["figure.titlesize"],
                          weight=STYLE["figure.titleweight"])  # fmt: skip
    width, _, _ = RendererAgg(1, 1, 72).get_text_width_height_descent(text, font, ismath=False)
    return width / 72


def wrapped_title(*parts: str) -> str:
    """Return ``parts`` joined by spaces, starting a new line where one would overflow the width.

    Class and model names make titles of any length; a part longer than a
    line still gets a line of its own.
    """
    lines = [parts[0]]
    for part in parts[1:]:
        if title_width_in(f"{lines[-1]} {part}") > WIDTH_IN - 0.2:
            lines.append(part)
        else:
            lines[-1] += " " + part
    return "\n".join(lines)


def line_style(position: int, *, color: str | None = None) -> dict[str, Any]:
    """Return the colour, line style and marker of the model at ``position``."""
    return {
        "color": model_color(position) if color is None else color,
        "linestyle": LINESTYLES[position % len(LINESTYLES)],
        "marker": MARKERS[position % len(MARKERS)],
    }


def model_handles(models: Sequence[str]) -> list[Line2D]:
    handles = [Line2D([], [], color=model_color(i), label=m) for i, m in enumerate(models)]
    handles += [
        Line2D([], [], color="#333333", label="train", **TRAIN_STYLE),
        Line2D([], [], color="#333333", label="validation", **VAL_STYLE),
    ]
    return handles
