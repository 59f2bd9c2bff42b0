"""What every page (run report, comparison, sweep report) is made of: a typed base context.

:class:`Page` holds what the frame template of every page displays (title,
author, date, the PDF switch and its fonts); each page's context extends it
with its own fields, and :meth:`Page.context` is the mapping the templates
see.  Nothing here renders or reads the clock: a page's date is
``run.date``, else ``SOURCE_DATE_EPOCH``, else 1970-01-01, so the same
inputs give the same page.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from reportgen.config.dates import source_date_epoch
from reportgen.config.schema import Config
from reportgen.core.errors import ConfigError, RenderError
from reportgen.core.version import VERSION

GENERATOR = f"reportgen {VERSION}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Figure:
    """One PNG figure, ready to embed."""

    name: str
    path: str  # relative to the output directory
    src: str  # data:image/png;base64,…
    alt: str
    caption: str


@dataclass(frozen=True)
class ReportDate:
    """The date a page shows, fixed by the inputs and never by the clock."""

    day: str  # YYYY-MM-DD
    timestamp: str  # W3C date-time for the PDF metadata
    epoch: int  # seconds since 1970, for SOURCE_DATE_EPOCH

    @classmethod
    def from_epoch(cls, epoch: int) -> ReportDate:
        moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
        return cls(moment.date().isoformat(), moment.strftime("%Y-%m-%dT%H:%M:%SZ"), epoch)

    @classmethod
    def from_day(cls, day: str) -> ReportDate:
        """Return the date of midnight UTC of an ISO day ``YYYY-MM-DD``."""
        date = dt.date.fromisoformat(day)
        return cls.from_epoch(
            int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp())
        )


@dataclass(frozen=True, kw_only=True)
class Page:
    """What the frame of every page displays; each page's context adds its own fields."""

    TEMPLATE: ClassVar[str] = "pages/report.html.j2"  # the page's entry template
    title: str
    author: str
    date: str  # YYYY-MM-DD, shown on the title
    timestamp: str  # the same moment as a W3C date-time, for the PDF's metadata
    epoch: int  # the same moment in seconds: SOURCE_DATE_EPOCH while the PDF is made
    lang: str = "en"
    generator: str = GENERATOR
    pdf: bool = False  # rendering for WeasyPrint: print styles, the embedded fonts
    fonts: Sequence[Any] = ()  # the subset font faces the PDF embeds (reportgen.report.fonts)

    @staticmethod
    def dated(date: ReportDate) -> dict[str, Any]:
        """Return the date fields of a page shown on ``date``, as keyword arguments."""
        return {"date": date.day, "timestamp": date.timestamp, "epoch": date.epoch}

    def for_pdf(self, fonts: Sequence[Any]) -> Self:
        """Return this page as the PDF lays it out, embedding ``fonts``."""
        return dataclasses.replace(self, pdf=True, fonts=list(fonts))

    def context(self) -> dict[str, Any]:
        """Return the names the templates see: every field, as it is (not copied)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def embed_png(name: str, rel: str, data: bytes, *, alt: str, caption: str) -> Figure:
    """Return PNG bytes as a :class:`Figure` whose ``src`` is a ``data:`` URI."""
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return Figure(name, rel, src, alt, caption)


def report_date(config: Config, environ: Mapping[str, str]) -> ReportDate:
    """Return the date to show: ``run.date``, else ``SOURCE_DATE_EPOCH``, else 1970-01-01."""
    if config.run.date is not None:
        return ReportDate.from_day(config.run.date)
    try:
        from_environment = source_date_epoch(environ)
    except ConfigError as e:
        raise RenderError(str(e)) from e
    return ReportDate.from_epoch(from_environment or 0)  # runs made before dates were set
