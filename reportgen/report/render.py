"""Typed page context -> HTML string -> PDF bytes, through one sandboxed Jinja2 environment.

:func:`render_html` fills the Jinja2 templates (a user directory searched
first, then the packaged ones) and returns one self-contained HTML string;
:func:`render_pdf` lays the same templates out with WeasyPrint behind a URL
fetcher that serves only ``data:`` URIs, files inside the run directory and
the DejaVu fonts (:mod:`reportgen.report.fetcher`).  Neither writes a file
nor reads the clock, so two renders of the same page are byte-identical.

The templates: ``frame.html.jinja2`` (every page extends it), ``pages/``
(one entry template per kind of page), ``partials/`` (the report's sections
and macros) and ``css/``.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import math
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration

from reportgen.core.errors import RenderError, ReportgenError, TemplateError
from reportgen.core.fontfile import FontFile
from reportgen.core.text import level, num, pct, pp, pvalue, sci, yesno
from reportgen.report.fetcher import RunFetcher
from reportgen.report.fonts import (
    FontFace,
    characters,
    dejavu_fonts,
    fallback_faces,
    subset_faces,
)
from reportgen.report.page import Page

PACKAGED_TEMPLATES = "reportgen.templates"
ENTRY_TEMPLATE = "pages/report.html.j2"
FRAME_TEMPLATE = "frame.html.jinja2"
TEMPLATE_SUFFIXES = (".j2", ".jinja2", ".css", ".html")
# Where the files of a template directory made for reportgen 0.1's flat layout went.
MOVED = {
    "base.html.j2": FRAME_TEMPLATE,
    "report.html.j2": "pages/report.html.j2",
    "compare.html.j2": "pages/compare.html.j2",
    "sweep.html.j2": "pages/sweep.html.j2",
    "comparison.html.j2": "partials/model_comparison.html.j2",
    **{f"{name}.html.j2": f"partials/{name}.html.j2" for name in (
        "attributions", "calibration", "class_intervals", "class_recall", "curves", "footer",
        "macros", "model", "ranking", "reproducibility", "summary", "title", "toc")},
    **{name: f"css/{name}" for name in (
        "report.css", "custom.css", "compare.css.j2", "sweep.css.j2", "fonts.css.j2")},
}  # fmt: skip


FILTERS: dict[str, Callable[..., str]] = {
    "pct": pct, "pp": pp, "level": level, "num": num, "pvalue": pvalue, "sci": sci,
    "yesno": yesno,
}  # fmt: skip


def _packaged_source(name: str) -> tuple[str, str, Callable[[], bool]] | None:
    """Load a packaged template through importlib.resources (editable install or wheel)."""
    parts = PurePosixPath(name).parts
    if "\\" in name or not parts or any(part.startswith(".") for part in parts) or name[0] == "/":
        return None
    resource = importlib.resources.files(PACKAGED_TEMPLATES).joinpath(*parts)
    if not resource.is_file():
        return None
    return resource.read_text(encoding="utf-8"), f"templates/{name}", lambda: True


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, also refusing arithmetic that would exhaust memory or time.

    ``9 ** 999999999`` or ``'x' * 10 ** 10`` would hang or fill memory before any
    output; a report never needs numbers or strings of that size.
    """

    intercepted_binops = frozenset({"**", "*"})
    MAX_RESULT = 1_000_000  # digits of a power, items of a repeated sequence

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if (
            operator == "**"
            and _is_int(left)
            and _is_int(right)
            and abs(left) > 1
            and right * math.log10(abs(left)) > self.MAX_RESULT
        ):
            raise SecurityError(f"{left} ** {right} is too large to compute")
        for sequence, times in ((left, right), (right, left)):
            if (
                operator == "*"
                and isinstance(sequence, str | bytes | list | tuple)
                and _is_int(times)
                and len(sequence) * times > self.MAX_RESULT
            ):
                raise SecurityError("a repeated sequence of over 1,000,000 items")
        return super().call_binop(context, operator, left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def environment(templates_dir: Path | str | None = None) -> jinja2.Environment:
    """Return the sandboxed Jinja2 environment: user templates first, then the packaged ones."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        directory = Path(templates_dir)
        if not directory.is_dir():
            raise TemplateError(f"templates directory {directory} does not exist")
        for old, new in MOVED.items():  # a file under its old name would be ignored unseen
            if (directory / old).exists():
                raise TemplateError(
                    f"{directory / old}: this template is now {new} (the frame, then pages/, "
                    f"partials/ and css/); move yours to {directory / new} and adapt it"
                )
        loaders.append(jinja2.FileSystemLoader(directory))
    loaders.append(jinja2.FunctionLoader(_packaged_source))
    # Sandboxed: a template may display the context but not reach Python's
    # internals (attributes starting with "_", a function's globals, mutating
    # methods), so a template directory cannot run code.
    env = _Sandbox(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


def _template_location(error: BaseException) -> str:
    """Return ``"template X line N"`` for the innermost template frame of ``error``."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.endswith(TEMPLATE_SUFFIXES):
            return f"template {frame.filename} line {frame.lineno}"
    return "template"


def _names(page: Page | Mapping[str, Any]) -> Mapping[str, Any]:
    return page.context() if isinstance(page, Page) else page


def render_html(
    page: Page | Mapping[str, Any],
    *,
    templates_dir: Path | str | None = None,
    entry: str | None = None,
) -> str:
    """Return a page as one self-contained HTML document; writes nothing.

    ``entry`` is the page's template, by default its own (``Page.TEMPLATE``), else
    the run report's.

    Raises
    ------
    RenderError
        A template is missing, has a syntax error or uses an undefined variable.
    """
    env = environment(templates_dir)
    entry = entry or (page.TEMPLATE if isinstance(page, Page) else ENTRY_TEMPLATE)
    try:
        return env.get_template(entry).render(_names(page))
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"template {e.filename or e.name} line {e.lineno}: {e.message}") from e
    except jinja2.TemplateNotFound as e:
        raise TemplateError(f"template {e.name!r} not found") from e
    except jinja2.TemplateError as e:
        raise TemplateError(f"{_template_location(e)}: {e.message}") from e
    except (TypeError, ValueError) as e:  # a filter given a value it cannot format
        raise TemplateError(f"{_template_location(e)}: cannot display a value: {e}") from e
    except RecursionError as e:
        raise TemplateError(
            f"{_template_location(e)}: recursion too deep (a template that includes or "
            "extends itself, or a macro that calls itself without end)"
        ) from e


@contextlib.contextmanager
def _source_date_epoch(epoch: int) -> Iterator[None]:
    """Fix embedded font timestamps: fontTools reads SOURCE_DATE_EPOCH when subsetting."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        yield
        return
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)


# A fontconfig configuration whose only fonts are the packaged DejaVu faces:
# WeasyPrint adds the @font-face fonts to it, and a text in no such font (a
# user template's) is set in DejaVu too.
_PACKAGED_FONTS_ONLY = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig><dir>{folder}</dir><cachedir>{folder}</cachedir></fontconfig>
"""


@contextlib.contextmanager
def packaged_fonts_only(faces: list[FontFace]) -> Iterator[FontConfiguration]:
    """Yield a WeasyPrint font configuration that knows only ``faces``, not the system's fonts.

    WeasyPrint's own loads every font the system has, and Pango falls back to
    one of them for a character the report's fonts lack (a CJK class name):
    the PDF would then depend on the machine.  With only the packaged fonts
    such a character is drawn as a box, the same everywhere.
    """
    with tempfile.TemporaryDirectory(prefix="reportgen-fonts-") as name:
        folder = Path(name)
        for face in faces:
            (folder / face.path.name).symlink_to(face.path)
        config = folder / "fonts.conf"
        config.write_text(_PACKAGED_FONTS_ONLY.format(folder=xml_escape(name)), encoding="utf-8")
        before = os.environ.get("FONTCONFIG_FILE")
        os.environ["FONTCONFIG_FILE"] = str(config)  # read while the configuration is made
        try:
            font_config = FontConfiguration()
        finally:
            if before is None:
                os.environ.pop("FONTCONFIG_FILE", None)
            else:
                os.environ["FONTCONFIG_FILE"] = before
        yield font_config  # the folder must outlive the layout: fonts are opened lazily


def render_pdf(
    page: Page | Mapping[str, Any],
    run_dir: Path | str,
    *,
    templates_dir: Path | str | None = None,
    entry: str | None = None,
    font: FontFile | None = None,
) -> bytes:
    """Return a page as PDF bytes, laid out by WeasyPrint from the same templates.

    Resources resolve against ``run_dir``; the fetcher refuses anything but
    ``data:`` URIs, files inside ``run_dir`` and the DejaVu fonts.  ``font``
    (``report.font``) is embedded, as a ``data:`` URI, for the characters
    DejaVu lacks.
    """
    root = Path(run_dir)
    faces = dejavu_fonts()
    # Two passes: the text decides the glyphs each font keeps (see reportgen.report.fonts).
    text = render_html(_for_pdf(page, []), templates_dir=templates_dir, entry=entry)
    shown = characters(text)
    fonts = subset_faces(faces, shown) + ([] if font is None else fallback_faces(font, shown))
    html = render_html(_for_pdf(page, fonts), templates_dir=templates_dir, entry=entry)
    fetcher = RunFetcher(root, [face.path for face in faces])
    with _source_date_epoch(int(_names(page)["epoch"])):
        try:
            document = HTML(string=html, base_url=root.resolve().as_uri() + "/",
                            url_fetcher=fetcher)  # fmt: skip
            # The fonts are subset already: embed them as they are, whatever
            # subsetter this system's WeasyPrint would pick.
            with packaged_fonts_only(faces) as font_config:
                pdf = document.write_pdf(
                    pdf_identifier=False, full_fonts=True, font_config=font_config
                )
            return bytes(pdf)
        except ReportgenError:
            raise
        except Exception as e:  # any layout failure: one line
            raise RenderError(f"PDF rendering failed: {type(e).__name__}: {e}") from e


def _for_pdf(page: Page | Mapping[str, Any], fonts: list[Any]) -> Page | Mapping[str, Any]:
    if isinstance(page, Page):
        return page.for_pdf(fonts)
    return {**page, "pdf": True, "fonts": fonts}
