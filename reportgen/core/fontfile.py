"""A font file the user supplies (``report.font``): checked, read once, fingerprinted.

The figures and the PDF use the DejaVu fonts matplotlib ships; a supplied
font adds the characters they lack (Chinese, Japanese or Korean class
names).  It is an input of the run like its data: its SHA-256 and size go
into the run's manifest, so ``verify`` notices a changed font.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from reportgen.core.errors import ConfigError
from reportgen.core.fileio import sha256_bytes
from reportgen.core.text import one_line

FONT_KEY = "report.font"
FONT_MAX_BYTES = 64 << 20  # the largest CJK fonts are about 20 MB
# sfnt versions: TrueType (two spellings), OpenType with CFF outlines, a collection.
SIGNATURES = (b"\x00\x01\x00\x00", b"true", b"OTTO", b"ttcf")


@dataclass(frozen=True)
class FontFile:
    """A supplied font: where it is, its bytes, their SHA-256, and the characters it has."""

    path: Path
    data: bytes
    sha256: str
    codepoints: frozenset[int]

    @property
    def size(self) -> int:
        return len(self.data)


def read_font(value: str, *, key: str = FONT_KEY) -> FontFile:
    """Return the font at ``value``: a regular file, not a link, at most 64 MiB, with a cmap.

    A collection (``.ttc``) is read as its first font.  Every problem is a
    :class:`ConfigError` naming ``key``.
    """
    path = Path(os.path.expanduser(value))
    where = f"{key}: {value}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as e:
        raise ConfigError(f"{where}: no such file") from e
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConfigError(f"{where}: a symbolic link; name the font file itself") from e
        raise ConfigError(f"{where}: cannot be read: {e.strerror or e}") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{where}: not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(FONT_MAX_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"{where}: cannot be read: {e.strerror or e}") from e
    if len(data) > FONT_MAX_BYTES:
        raise ConfigError(f"{where}: larger than {FONT_MAX_BYTES >> 20} MiB, not a font")
    if data[:4] not in SIGNATURES:
        raise ConfigError(f"{where}: not a TrueType or OpenType font (.ttf, .otf, .ttc)")
    return FontFile(path=path, data=data, sha256=sha256_bytes(data),
                    codepoints=_codepoints(data, where))  # fmt: skip


def _codepoints(data: bytes, where: str) -> frozenset[int]:
    """Return the characters the font's Unicode character map has a glyph for."""
    from fontTools.ttLib import TTFont  # only a run with a supplied font needs fontTools here

    try:
        cmap = TTFont(io.BytesIO(data), fontNumber=0, lazy=True).getBestCmap()
    except Exception as e:  # a damaged font: any error of the parser
        raise ConfigError(f"{where}: cannot be read as a font: {one_line(e)}") from e
    if not cmap:
        raise ConfigError(f"{where}: the font has no Unicode character map")
    return frozenset(cmap)


__all__ = ["FONT_KEY", "FontFile", "read_font"]
