"""Context -> HTML string -> PDF bytes: the report stage.

:func:`render_html` fills the Jinja2 templates (a user directory searched
first, then the packaged ones) with a context from
:func:`reportgen.context.build_context` and returns one self-contained HTML
string; :func:`render_pdf` lays the same templates out with WeasyPrint behind
a URL fetcher that serves only ``data:`` URIs, files inside the run
directory and the DejaVu fonts; :func:`render_run` writes both files
atomically.  Neither reads the clock, so two renders of the same run are
byte-identical.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import math
import mimetypes
import os
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from reportgen import rundir
from reportgen.context import build_context
from reportgen.errors import RenderError, ReportgenError, TemplateError
from reportgen.fonts import characters, dejavu_fonts, subset_faces
from reportgen.formatting import level, num, pct, pp, pvalue, sci, yesno

LOG = logging.getLogger(__name__)
LOG.addHandler(logging.NullHandler())  # refused fetches are logged; the CLI decides what to show

PACKAGED_TEMPLATES = "reportgen.templates"
ENTRY_TEMPLATE = "report.html.j2"
FRAME_TEMPLATE = "frame.html.jinja2"
TEMPLATE_SUFFIXES = (".j2", ".jinja2", ".css", ".html")

FILTERS: dict[str, Callable[..., str]] = {
    "pct": pct, "pp": pp, "level": level, "num": num, "pvalue": pvalue, "sci": sci,
    "yesno": yesno,
}  # fmt: skip


# --------------------------------------------------------------------------- templates


def _packaged_source(name: str) -> tuple[str, str, Callable[[], bool]] | None:
    """Load a packaged template through importlib.resources (editable install or wheel)."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    resource = importlib.resources.files(PACKAGED_TEMPLATES).joinpath(name)
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
        if (directory / "base.html.j2").exists():  # it would be ignored without a word
            raise TemplateError(
                f"{directory / 'base.html.j2'}: the frame of every page is now {FRAME_TEMPLATE} "
                "(blocks title, head, style, header, nav, content, footer); rename yours and "
                "adapt it, or use custom.css for style only"
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


def render_html(
    context: Mapping[str, Any],
    *,
    templates_dir: Path | str | None = None,
    entry: str = ENTRY_TEMPLATE,
) -> str:
    """Return the report as one self-contained HTML document; writes nothing.

    Raises
    ------
    RenderError
        A template is missing, has a syntax error or uses an undefined variable.
    """
    env = environment(templates_dir)
    try:
        return env.get_template(entry).render(context)
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


# --------------------------------------------------------------------------- PDF


class FetchRefused(ValueError):
    """The report's URL fetcher refused a resource."""


class RunFetcher(URLFetcher):
    """WeasyPrint URL fetcher confined to ``data:`` URIs, the run directory and the fonts.

    Everything else — other files, ``http(s)://``, ``../`` escapes, symlinks
    leading out of the run — raises :class:`FetchRefused` before any I/O.
    """

    def __init__(self, run_dir: Path, fonts: Sequence[Path]) -> None:
        super().__init__(allowed_protocols=("data", "file"), allow_redirects=False, timeout=5)
        self.root = run_dir.resolve()
        self.fonts = frozenset(path.resolve() for path in fonts)
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        scheme = url.partition(":")[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            path = self._allowed_path(url)
            if path is not None:
                media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(
                    path.as_uri(), path.read_bytes(), {"Content-Type": media_type}
                )
        self.refused.append(url)
        LOG.warning("report: refused to fetch %s", url)
        raise FetchRefused(f"the report may only use data: URIs and files of its run: {url}")

    def _allowed_path(self, url: str) -> Path | None:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return None
        path = Path(url2pathname(parts.path)).resolve()
        if path in self.fonts:
            return path
        if path.is_relative_to(self.root) and path.is_file():
            return path
        return None


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


def render_pdf(
    context: Mapping[str, Any],
    run_dir: Path | str,
    *,
    templates_dir: Path | str | None = None,
    entry: str = ENTRY_TEMPLATE,
) -> bytes:
    """Return the report as PDF bytes, laid out by WeasyPrint from the same templates.

    Resources resolve against ``run_dir``; the fetcher refuses anything but
    ``data:`` URIs, files inside ``run_dir`` and the DejaVu fonts.
    """
    root = Path(run_dir)
    faces = dejavu_fonts()
    # Two passes: the text decides the glyphs each font keeps (see reportgen.fonts).
    text = render_html({**context, "pdf": True, "fonts": []}, templates_dir=templates_dir,
                       entry=entry)  # fmt: skip
    fonts = subset_faces(faces, characters(text))
    html = render_html(
        {**context, "pdf": True, "fonts": fonts}, templates_dir=templates_dir, entry=entry
    )
    fetcher = RunFetcher(root, [face.path for face in faces])
    with _source_date_epoch(int(context["epoch"])):
        try:
            document = HTML(string=html, base_url=root.resolve().as_uri() + "/",
                            url_fetcher=fetcher)  # fmt: skip
            # The fonts are subset already: embed them as they are, whatever
            # subsetter this system's WeasyPrint would pick.
            return bytes(document.write_pdf(pdf_identifier=False, full_fonts=True))
        except ReportgenError:
            raise
        except Exception as e:  # any layout failure: one line
            raise RenderError(f"PDF rendering failed: {type(e).__name__}: {e}") from e


def render_run(
    run_dir: Path | str,
    *,
    templates_dir: Path | str | None = None,
    pdf: bool = True,
    manifest: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Render ``report.html`` (and ``report.pdf``) into ``run_dir``; return the paths written.

    Both documents are rendered in memory first, so a failure leaves the
    previous reports in place; each file is then written atomically.
    """
    root = Path(run_dir)
    context = build_context(root, manifest=manifest)
    paths = rundir.RunPaths(root)
    outputs = {paths.html: render_html(context, templates_dir=templates_dir).encode("utf-8")}
    if pdf:
        outputs[paths.pdf] = render_pdf(context, root, templates_dir=templates_dir)
    for path, data in outputs.items():
        rundir.write_atomic(path, data)
    return list(outputs)


def rerender_run(run_dir: Path | str, *, templates_dir: Path | str | None = None) -> list[Path]:
    """Re-render a run's reports from its checked artifacts; return the paths written.

    Every file the manifest lists is checked first, and only the manifest's
    entries for the reports are updated: files it does not list are never
    read nor added, so a run from elsewhere stays data.
    """
    root = Path(run_dir)
    manifest = rundir.read_intact(root, action="render")
    pdf = rundir.RunPaths(Path()).pdf.as_posix() in manifest["artifacts"]
    written = render_run(root, templates_dir=templates_dir, pdf=pdf, manifest=manifest)
    artifacts = dict(manifest["artifacts"])
    for path in written:
        rel = path.relative_to(root).as_posix()
        artifacts[rel] = {"sha256": rundir.sha256_path(path), "size": path.stat().st_size}
    rundir.write_json(rundir.RunPaths(root).manifest, {**manifest, "artifacts": artifacts})
    return written


__all__ = [
    "FetchRefused",
    "RunFetcher",
    "environment",
    "render_html",
    "render_pdf",
    "render_run",
    "rerender_run",
]
