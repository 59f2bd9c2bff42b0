"""The PDF's fonts: matplotlib's DejaVu faces, subset once by fontTools before layout.

WeasyPrint subsets the fonts it embeds with HarfBuzz where the system has
``libharfbuzz-subset`` and with fontTools elsewhere, and the two give
different bytes: a PDF made on one machine would not verify on another.
So reportgen subsets each face itself, with fontTools (a Python package
whose version the manifest records), to the characters the document uses,
hands WeasyPrint the subset as a ``data:`` URI and asks it to embed fonts
whole.  The bytes then depend on fontTools and on the text shaper
(Pango/HarfBuzz, also recorded), not on which subsetter the system has.
"""

from __future__ import annotations

import base64
import html
import io
import string
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
from fontTools import subset
from fontTools.ttLib import TTFont

from reportgen.core.errors import RenderError
from reportgen.core.fontfile import FontFile

# Families of their own: under the fonts' real names, fontconfig may pick a
# system copy of DejaVu instead, whole and of whatever version it has.
SANS, MONO = "reportgen Sans", "reportgen Sans Mono"
# The supplied font (report.font): Pango falls back to it, the only other font the PDF
# knows, for the characters DejaVu lacks.
FALLBACK = "reportgen Fallback"
FONT_FILES = (
    (SANS, "normal", "normal", "DejaVuSans.ttf"),
    (SANS, "bold", "normal", "DejaVuSans-Bold.ttf"),
    (SANS, "normal", "italic", "DejaVuSans-Oblique.ttf"),
    (SANS, "bold", "italic", "DejaVuSans-BoldOblique.ttf"),
    (MONO, "normal", "normal", "DejaVuSansMono.ttf"),
    (MONO, "bold", "normal", "DejaVuSansMono-Bold.ttf"),
)
# Characters every report may show even where its text does not name them:
# page counters, list bullets, typographic punctuation of the stylesheet.
ALWAYS = frozenset(string.printable + "\u00a0•–—…−×·→←’‘“”≤≥±°µ✓✗")


@dataclass(frozen=True)
class FontFace:
    """One @font-face of the PDF: a DejaVu TTF shipped with matplotlib, possibly subset."""

    family: str
    weight: str
    style: str
    path: Path  # the full font in matplotlib's data directory
    data: bytes = b""  # the subset embedded in the PDF; empty: use the file

    @property
    def url(self) -> str:
        """Return where WeasyPrint loads the face from: the subset as data:, else the file."""
        if self.data:
            return "data:font/ttf;base64," + base64.b64encode(self.data).decode("ascii")
        return self.path.as_uri()


def dejavu_fonts() -> list[FontFace]:
    """Return the DejaVu font faces matplotlib ships, so the PDF needs no system fonts."""
    directory = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    faces = [FontFace(family, weight, style, (directory / file).resolve())
             for family, weight, style, file in FONT_FILES]  # fmt: skip
    for face in faces:
        if not face.path.is_file():
            raise RenderError(f"font {face.path.name} not found in matplotlib's data directory")
    return faces


def characters(document: str) -> frozenset[str]:
    """Return the characters an HTML document can show: its text, unescaped, and :data:`ALWAYS`."""
    return frozenset(html.unescape(document)) | ALWAYS


def subset_faces(faces: Iterable[FontFace], text: Iterable[str]) -> list[FontFace]:
    """Return ``faces`` with each font cut down to the glyphs of ``text``."""
    codepoints = tuple(sorted({ord(c) for c in text}))
    return [
        FontFace(face.family, face.weight, face.style, face.path, _subset(face.path, codepoints))
        for face in faces
    ]


def fallback_faces(font: FontFile, text: Iterable[str]) -> list[FontFace]:
    """Return the supplied font as one face holding the characters of ``text`` DejaVu Sans
    lacks and it has; none when there are none.
    """
    dejavu = _dejavu_characters()
    codepoints = tuple(sorted({ord(c) for c in text} & font.codepoints - dejavu))
    if not codepoints:
        return []
    face = TTFont(io.BytesIO(font.data), fontNumber=0, recalcTimestamp=False)
    return [FontFace(FALLBACK, "normal", "normal", font.path, _subset_font(face, codepoints))]


@lru_cache(maxsize=1)
def _dejavu_characters() -> frozenset[int]:
    """Return the code points DejaVu Sans has a glyph for."""
    directory = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return frozenset(TTFont(directory / "DejaVuSans.ttf", lazy=True).getBestCmap())


@lru_cache(maxsize=32)
def _subset(path: Path, codepoints: tuple[int, ...]) -> bytes:
    """Return the TrueType bytes of ``path`` holding only the glyphs for ``codepoints``.

    Only positioning features are kept (kerning, mark placement), not
    substitutions: WeasyPrint maps embedded glyphs back to text through the
    font's character map when it embeds fonts whole, and a ligature glyph
    ("fi") has no entry there, so its text could not be copied or searched.
    Hinting is dropped (PDF viewers scale outlines) and timestamps are left
    as the font has them, so the bytes depend only on the font file, the
    characters and fontTools.
    """
    return _subset_font(TTFont(path, recalcTimestamp=False), codepoints)


def _subset_font(font: TTFont, codepoints: tuple[int, ...]) -> bytes:
    """Return ``font`` cut down to the glyphs for ``codepoints``, as bytes (see :func:`_subset`)."""
    options = subset.Options()
    options.layout_features = ["kern", "mark", "mkmk"]
    options.notdef_outline = True
    options.hinting = False
    options.recalc_timestamp = False
    options.drop_tables = [*options.drop_tables, "FFTM"]  # FontForge's build timestamps
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(font)
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue()


__all__ = ["FontFace", "characters", "dejavu_fonts", "fallback_faces", "subset_faces"]
