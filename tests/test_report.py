"""Tests for the report stage: templates -> self-contained HTML -> PDF, reproducibly.

They render the synthetic run of ``tests/synthetic.py`` (metrics.json built
through the metrics contract, config.toml, manifest.json and small PNG
figures), so they need neither MNIST nor training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import weasyprint
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from weasyprint.pdf import fonts as weasyprint_fonts

from reportgen import __version__
from reportgen.artifacts import tables
from reportgen.artifacts.manifest import RunManifest, read_manifest
from reportgen.artifacts.metrics import (
    parse_metrics,
)
from reportgen.artifacts.model_metrics import (
    Divergence,
)
from reportgen.core.errors import RenderError, TemplateError
from reportgen.core.text import pct
from reportgen.report import fetcher as fetcher_mod
from reportgen.report import fonts, render, run_page, sentences
from reportgen.run import render as run_render
from tests import synthetic
from tests.synthetic import make_run

GOLDEN = Path(__file__).parent / "golden" / "report.html"
UPDATE_GOLDEN = os.environ.get("REPORTGEN_UPDATE_GOLDEN") == "1"
SECTION_HEADINGS = [
    "Contents",
    "Executive summary",
    "Model comparison",
    "Training curves and diagnosis",
    "Suspected label errors",
    "Model: baseline",
    "Model: regularized",
    "Classification report",
    "Calibration",
    "ROC and precision–recall",
    "Confusion matrix",
    "Per-class errors",
    "Misclassified test images",
    "Confused pairs",
    "Attributions",
    "Learned weights",
    "Activations",
    "Reproducibility",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic run directory (read-only by convention: copy it to change it)."""
    return make_run(tmp_path_factory.mktemp("report") / "run")


@pytest.fixture(scope="module")
def page(run_dir: Path) -> run_page.RunPage:
    """The template context of the synthetic run."""
    return run_page.build_context(run_dir, environ={})


@pytest.fixture(scope="module")
def html(page: run_page.RunPage) -> str:
    return render.render_html(page)


@pytest.fixture(scope="module")
def pdf(page: run_page.RunPage, run_dir: Path) -> bytes:
    return render.render_pdf(page, run_dir)


@pytest.fixture(scope="module")
def pdf_text(pdf: bytes) -> str:
    return _pdf_text(pdf)


@pytest.fixture
def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic run, safe to modify."""
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


class _Elements(HTMLParser):
    """Collect every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._heading: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in {"h1", "h2", "h3"}:
            self._heading = ""

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading += data

    def handle_endtag(self, tag: str) -> None:
        if tag in {"h1", "h2", "h3"} and self._heading is not None:
            self.text.append(self._heading.strip())
            self._heading = None


def _parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def _user_template(templates_dir: Path, name: str) -> Path:
    """Return where a user template ``name`` goes in ``templates_dir``, its folder made."""
    path = templates_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


# --------------------------------------------------------------------------- HTML


def test_html_references_nothing_outside_itself(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    assert "xmlns" not in html
    assert "<script" not in html.lower()
    assert "url(" not in html  # no stylesheet resource at all: fonts are PDF-only
    outside_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert "//" not in outside_images  # not even a protocol-relative reference or a comment
    for tag, attrs in _parse(html).tags:
        for name in ("src", "href", "srcset", "poster", "data"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("data:", "#")), (tag, name, value[:80])


def test_every_image_is_embedded_with_alt_text(html: str) -> None:
    images = [attrs for tag, attrs in _parse(html).tags if tag == "img"]
    # shared curves + per model: 9 kinds, 2 pairs, and attributions of the grid and each pair;
    # and the suspected label errors' gallery
    assert len(images) == 2 + 2 * (9 + 2 + 1 + 2) + 1
    for attrs in images:
        assert (attrs["src"] or "").startswith("data:image/png;base64,")
        assert (attrs.get("alt") or "").strip()


@pytest.mark.parametrize("heading", SECTION_HEADINGS)
def test_html_has_every_section_heading(html: str, heading: str) -> None:
    assert heading in _parse(html).text


def test_html_sections_come_in_order(html: str) -> None:
    headings = _parse(html).text
    order = [
        "Executive summary",
        "Model comparison",
        "Training curves and diagnosis",
        "Model: baseline",
        "Model: regularized",
        "Reproducibility",
    ]
    assert [h for h in headings if h in order] == order


def test_toc_links_resolve_and_tables_scope_headers(html: str) -> None:
    tags = _parse(html).tags
    id_list = [attrs["id"] for _, attrs in tags if attrs.get("id")]
    ids = set(id_list)
    assert len(ids) == len(id_list), "duplicate id"
    links = [str(attrs["href"]) for tag, attrs in tags if tag == "a" and attrs.get("href")]
    assert links and all(href[1:] in ids for href in links if href.startswith("#"))
    headers = [attrs for tag, attrs in tags if tag == "th"]
    assert headers and all(attrs.get("scope") in {"col", "row"} for attrs in headers)
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')


def test_html_shows_the_metrics(html: str, page: run_page.RunPage) -> None:
    for view in page.models:
        assert pct(view.metrics.test_accuracy) in html
        assert pct(view.metrics.accuracy_ci.low) in html
    assert "McNemar exact two-sided p-value" in html and "&lt; 0.001" in html
    assert "Train and validation loss fall together." in html


def test_reproducibility_section(html: str, run_dir: Path) -> None:
    manifest = read_manifest(run_dir, RunManifest)
    assert run_page.REPRODUCE_COMMAND in html
    assert "somewhere/else" not in html  # the argv is not the command shown
    assert manifest.artifacts and manifest.data_files
    for rel, entry in manifest.artifacts.items():
        assert rel in html and entry.sha256 in html
    for digest in manifest.data_files.values():
        assert digest in html
    assert "12.345" not in html and "23.456" not in html  # no wall-clock timings
    assert "name = &#34;synthetic&#34;" in html  # resolved config, escaped
    assert "0123456789abcdef" in html and "Test CPU" in html


def test_title_block_uses_config_date(html: str) -> None:
    assert '<time datetime="2024-03-01">2024-03-01</time>' in html
    assert '<meta name="dcterms.created" content="2024-03-01T00:00:00Z">' in html


def test_title_is_escaped(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", title="<script>alert(1)</script> & co")
    html = render.render_html(run_page.build_context(run, environ={}))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


def test_divergence_is_shown(tmp_path: Path) -> None:
    divergence = Divergence(epoch=2, step=310, last_finite_loss=2.302585)
    run = make_run(tmp_path / "run", divergence=divergence)
    diverged = run_page.build_context(run, environ={})
    html = render.render_html(diverged)
    assert diverged.warnings == [sentences.divergence_sentence("baseline", divergence)]
    assert "This model diverged." in html
    assert "diverged in epoch 2" in html and "2.3026" in html
    assert "Lower train.lr" in html
    assert html.count('class="callout danger" role="alert"') == 2  # summary and model section


def test_html_shows_the_deeper_evaluation(html: str, page: run_page.RunPage) -> None:
    for view in page.models:
        calibration = view.metrics.calibration
        assert calibration.verdict in html and pct(calibration.ece_scaled) in html
        assert page.ranking_sentences[view.name] in html
        assert f"{view.metrics.one_vs_rest.macro_auc:.4f}" in html
        for figure in view.attribution_figures:
            assert f'id="fig-{figure.name}"' in html
    assert page.significance.class_recall.verdict in html
    assert "Holm’s step-down correction" in html
    assert html.count("95% bootstrap intervals of each class’s precision, recall and F1") == 2


def test_attributions_switched_off_are_said_to_be(copy_run: Path) -> None:
    def off(data: dict[str, Any]) -> None:
        for model in data["models"].values():
            for gallery in model["attributions"]["galleries"]:
                del data["figures"][gallery["figure"]]
            model["attributions"] = None

    synthetic.write_metrics(copy_run, synthetic.edited(off))
    html = render.render_html(run_page.build_context(copy_run, environ={}))
    assert html.count("Attributions are switched off for this run") == 2
    assert "attributions" not in re.findall(r'id="fig-[^"]+"', html).__str__()


def test_top_k_accuracy_is_shown_for_every_model_where_measured(copy_run: Path, html: str) -> None:
    def with_top_k(data: dict[str, Any]) -> None:
        for value, model in zip((0.9981, 0.9876), data["models"].values(), strict=True):
            model["top_k_accuracy"] = {"k": 5, "value": value, "low": value - 0.001,
                                       "high": value + 0.001}  # fmt: skip

    assert "Top-" not in html  # 10 classes, report.top_k unset: none
    synthetic.write_metrics(copy_run, synthetic.edited(with_top_k))
    shown = render.render_html(run_page.build_context(copy_run, environ={}))
    assert shown.count("<dt>Top-5 accuracy</dt><dd>99.81%") == 1
    assert shown.count("<dt>Top-5 accuracy</dt><dd>98.76%") == 1
    assert '<th scope="col" class="num">Top-5 accuracy (95% CI)</th>' in shown
    assert "99.81% (99.71% – 99.91%)" in shown


def test_html_matches_golden_file(html: str) -> None:
    # Figure bytes depend on the matplotlib version; the golden file guards the markup.
    normalized = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,…", html)
    normalized = normalized.replace(f"reportgen {__version__}", "reportgen VERSION")
    if UPDATE_GOLDEN:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(normalized, encoding="utf-8")
    assert normalized == GOLDEN.read_text(encoding="utf-8"), (
        "report HTML changed; if intended, rerun with REPORTGEN_UPDATE_GOLDEN=1"
    )


# --------------------------------------------------------------------------- templates


def test_packaged_templates_are_found_through_importlib() -> None:
    import importlib.resources

    files = importlib.resources.files("reportgen.templates")
    for name in (
        "frame.html.jinja2",
        "pages/report.html.j2",
        "pages/compare.html.j2",
        "pages/sweep.html.j2",
        "partials/macros.html.j2",
        "partials/model_comparison.html.j2",
        "css/report.css",
    ):
        assert files.joinpath(*name.split("/")).is_file(), name
    for old in ("report.html.j2", "report.css", "macros.html.j2", "comparison.html.j2"):
        assert not files.joinpath(old).is_file(), old  # the flat layout is gone
    # a hook, empty until a user fills it
    assert files.joinpath("css", "custom.css").read_text() == ""


@pytest.mark.parametrize("entry", ["pages/report.html.j2", "pages/compare.html.j2"])
def test_every_page_extends_the_frame(entry: str) -> None:
    env = render.environment()
    source = env.loader.get_source(env, entry)[0] if env.loader else ""
    assert '{% extends "frame.html.jinja2" %}' in source
    frame = env.loader.get_source(env, "frame.html.jinja2")[0] if env.loader else ""
    for block in ("title", "head", "style", "nav", "content"):
        assert f"{{% block {block} %}}" in frame


def test_custom_css_comes_after_the_stylesheet(tmp_path: Path, page: run_page.RunPage) -> None:
    _user_template(tmp_path, "css/custom.css").write_text("h1 { color: rebeccapurple; }\n")
    custom = render.render_html(page, templates_dir=tmp_path)
    assert "--accent" in custom  # the packaged stylesheet is still there
    assert custom.index("rebeccapurple") > custom.index("--accent")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("base.html.j2", "frame.html.jinja2"),
        ("report.html.j2", "pages/report.html.j2"),
        ("comparison.html.j2", "partials/model_comparison.html.j2"),
        ("summary.html.j2", "partials/summary.html.j2"),
        ("custom.css", "css/custom.css"),
    ],
)
def test_an_old_base_template_is_refused_with_its_new_name(
    tmp_path: Path, page: run_page.RunPage, old: str, new: str
) -> None:
    (tmp_path / old).write_text("{% block content %}{% endblock %}\n")
    match = (
        rf"{re.escape(str(tmp_path / old))}: this template is now {re.escape(new)} .*"
        rf"move yours to {re.escape(str(tmp_path / new))}"
    )
    with pytest.raises(TemplateError, match=match):
        render.render_html(page, templates_dir=tmp_path)


def test_overriding_one_template_changes_only_that_part(
    tmp_path: Path, page: run_page.RunPage, html: str
) -> None:
    _user_template(tmp_path, "partials/summary.html.j2").write_text(
        '<section id="summary"><h2>Custom summary for {{ run_name }}</h2></section>\n'
    )
    custom = render.render_html(page, templates_dir=tmp_path)
    start = html.index('<section id="summary"')
    end = html.index('<section id="comparison"')
    assert custom[:start] == html[:start]
    assert custom.endswith(html[end:])
    assert "Custom summary for synthetic" in custom
    assert "Executive summary" not in custom.split("<main>")[1]


def test_user_css_overrides_the_packaged_stylesheet(tmp_path: Path, page: run_page.RunPage) -> None:
    _user_template(tmp_path, "css/report.css").write_text("body { color: rebeccapurple; }\n")
    custom = render.render_html(page, templates_dir=tmp_path)
    assert "rebeccapurple" in custom and "--accent" not in custom


def test_missing_variable_is_a_render_error(tmp_path: Path, page: run_page.RunPage) -> None:
    _user_template(tmp_path, "partials/summary.html.j2").write_text("<p>{{ no_such_value }}</p>\n")
    with pytest.raises(
        RenderError, match=r"partials/summary\.html\.j2 line 1: 'no_such_value' is undefined"
    ):
        render.render_html(page, templates_dir=tmp_path)


def test_value_a_filter_cannot_format_is_a_render_error(
    tmp_path: Path, page: run_page.RunPage
) -> None:
    _user_template(tmp_path, "partials/summary.html.j2").write_text("<p>\n{{ run_name|pct }}</p>\n")
    with pytest.raises(
        RenderError, match=r"partials/summary\.html\.j2 line 2: cannot display a value"
    ):
        render.render_html(page, templates_dir=tmp_path)


def test_template_syntax_error_is_a_render_error(tmp_path: Path, page: run_page.RunPage) -> None:
    _user_template(tmp_path, "partials/title.html.j2").write_text("<h1>{% if %}</h1>\n")
    with pytest.raises(RenderError, match=r"partials/title\.html\.j2 line 1"):
        render.render_html(page, templates_dir=tmp_path)


def test_missing_templates_directory_is_a_render_error(page: run_page.RunPage) -> None:
    with pytest.raises(RenderError, match="does not exist"):
        render.render_html(page, templates_dir="no/such/dir")


def test_autoescape_applies_to_user_templates(tmp_path: Path, page: run_page.RunPage) -> None:
    _user_template(tmp_path, "partials/summary.html.j2").write_text("<p>{{ '<b>bold</b>' }}</p>\n")
    assert "&lt;b&gt;bold&lt;/b&gt;" in render.render_html(page, templates_dir=tmp_path)


# --------------------------------------------------------------------------- sandbox

ESCAPES = {
    "cycler globals": "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "str mro": "{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
    "{% if c.__name__ == 'Popen' %}{{ c(['touch', 'MARKER']) }}{% endif %}{% endfor %}",
    "template reference": "{{ self._TemplateReference__context.cycler.__init__"
    ".__globals__.os.system('touch MARKER') }}",
    "lipsum globals": "{{ lipsum.__globals__['os'].system('touch MARKER') }}",
    "builtins import": "{{ range.__globals__['__builtins__']['__import__']('os')"
    ".system('touch MARKER') }}",
    "function code": "{{ lipsum.__code__.co_consts }}",
    "namespace init": "{{ namespace.__init__.__globals__['os'].system('touch MARKER') }}",
    "bound method self": "{{ run_name.upper.__self__.__class__.__base__.__subclasses__() }}",
    "format string": "{{ '{0.__class__.__mro__}'.format(run_name) }}",
    "mutating the context": "{% set _ = models.append(1) %}{{ models|length }}",
}


@pytest.mark.parametrize("template", ESCAPES.values(), ids=ESCAPES.keys())
def test_templates_cannot_reach_python_internals(
    tmp_path: Path, page: run_page.RunPage, template: str
) -> None:
    marker = tmp_path / "pwned"
    templates = tmp_path / "templates"
    templates.mkdir()
    _user_template(templates, "partials/summary.html.j2").write_text(
        template.replace("MARKER", str(marker))
    )
    with pytest.raises(
        RenderError, match=r"partials/summary\.html\.j2 line 1: .*(unsafe|not safely)"
    ) as e:
        render.render_html(page, templates_dir=templates)
    assert "\n" not in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("template", ["{{ 9 ** 999999999 }}", "{{ 'x' * 10 ** 9 }}"])
def test_templates_cannot_exhaust_memory_with_arithmetic(
    tmp_path: Path, page: run_page.RunPage, template: str
) -> None:
    _user_template(tmp_path, "partials/summary.html.j2").write_text(template)
    with pytest.raises(TemplateError, match=r"too large|over 1,000,000 items"):
        render.render_html(page, templates_dir=tmp_path)


@pytest.mark.parametrize(
    "template",
    [
        "{% include 'partials/summary.html.j2' %}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    ],
    ids=["includes itself", "recursive macro"],
)
def test_endless_template_recursion_is_a_render_error(
    tmp_path: Path, page: run_page.RunPage, template: str
) -> None:
    _user_template(tmp_path, "partials/summary.html.j2").write_text(template)
    with pytest.raises(RenderError, match="recursion too deep") as e:
        render.render_html(page, templates_dir=tmp_path)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- PDF


@pytest.mark.parametrize("heading", SECTION_HEADINGS)
def test_pdf_text_has_every_section_heading(pdf_text: str, heading: str) -> None:
    assert heading in pdf_text


def test_pdf_shows_both_test_accuracies(pdf_text: str, page: run_page.RunPage) -> None:
    for view in page.models:
        assert pct(view.metrics.test_accuracy) in pdf_text


def test_pdf_metadata(pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(pdf))
    info = reader.metadata
    assert info is not None
    assert info.title == "Synthetic MNIST report"
    assert info.author == "Test Author"
    assert info.creator == f"reportgen {__version__}"
    assert info["/CreationDate"] == info["/ModDate"] == "D:20240301000000Z"
    assert reader.root_object["/Lang"] == "en"
    assert "/ID" not in reader.trailer
    assert len(reader.pages) >= 6
    assert "Page 2 of" in reader.pages[1].extract_text()


def _embedded_fonts(pdf: bytes) -> dict[str, bytes]:
    """Return ``{font name: embedded font program}`` of every font the PDF uses."""
    reader = PdfReader(io.BytesIO(pdf))
    fonts = {}
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for font in (resources.get("/Font") or {}).values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object()
            program = descendant["/FontDescriptor"].get_object()["/FontFile2"].get_object()
            fonts[str(font["/BaseFont"]).split("+")[-1]] = program.get_data()
    return fonts


def test_pdf_embeds_only_subsets_of_the_dejavu_fonts(pdf: bytes) -> None:
    fonts = _embedded_fonts(pdf)
    assert fonts and all(name.startswith("reportgen-Sans") for name in fonts), fonts
    for name, program in fonts.items():
        face = TTFont(io.BytesIO(program))
        assert face["name"].getDebugName(1).startswith("DejaVu Sans"), name
        assert len(program) < 60_000, (name, len(program))  # a subset, not the whole font
        assert "FFTM" not in face  # FontForge's timestamps are dropped


def test_characters_the_fonts_lack_never_pull_in_a_system_font(
    page: run_page.RunPage, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A class or title in a script DejaVu lacks: boxes, never a font of this machine.
    lacking = dataclasses.replace(page, title="A \U0001d504 \u732b report")
    fonts = _embedded_fonts(render.render_pdf(lacking, run_dir))
    assert fonts and all(name.startswith("reportgen-Sans") for name in fonts), fonts
    # The control: WeasyPrint's own font configuration falls back to the system's fonts.
    monkeypatch.setattr(
        render,
        "packaged_fonts_only",
        lambda faces: contextlib.nullcontext(render.FontConfiguration()),
    )
    system = _embedded_fonts(render.render_pdf(lacking, run_dir))
    if set(system) == set(fonts):
        pytest.skip("no system font has these characters: nothing to fall back to")
    assert not all(name.startswith("reportgen-Sans") for name in system), system


def test_pdf_bytes_do_not_depend_on_the_systems_font_subsetter(
    page: run_page.RunPage, run_dir: Path, pdf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without libharfbuzz-subset, WeasyPrint would subset with fontTools instead.
    monkeypatch.setattr(weasyprint_fonts, "harfbuzz_subset", None)
    assert render.render_pdf(page, run_dir) == pdf


def test_weasyprints_own_subsetting_would_depend_on_the_system(
    page: run_page.RunPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: why reportgen subsets the fonts itself."""
    if weasyprint_fonts.harfbuzz_subset is None:
        pytest.skip("libharfbuzz-subset is not installed: nothing to compare")
    html = render.render_html(page.for_pdf(fonts.dejavu_fonts()))
    with_harfbuzz = weasyprint.HTML(string=html).write_pdf(pdf_identifier=False)
    monkeypatch.setattr(weasyprint_fonts, "harfbuzz_subset", None)
    with_fonttools = weasyprint.HTML(string=html).write_pdf(pdf_identifier=False)
    assert with_harfbuzz != with_fonttools


def test_renders_are_byte_identical_across_runs_and_directories(
    run_dir: Path, copy_run: Path, html: str, pdf: bytes
) -> None:
    copied = run_page.build_context(copy_run, environ={})
    assert render.render_html(copied) == html
    assert render.render_pdf(copied, copy_run) == pdf
    assert str(run_dir).encode() not in pdf and str(copy_run).encode() not in pdf


def test_source_date_epoch_is_restored(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    with render._source_date_epoch(86400):
        assert os.environ["SOURCE_DATE_EPOCH"] == "86400"
    assert "SOURCE_DATE_EPOCH" not in os.environ


def test_render_run_writes_both_reports(copy_run: Path) -> None:
    written = run_render.render_run(copy_run)
    assert written == [copy_run / "report.html", copy_run / "report.pdf"]
    assert (copy_run / "report.pdf").read_bytes().startswith(b"%PDF-")
    assert not list(copy_run.glob(".*.tmp-*"))


def test_render_run_without_pdf(copy_run: Path) -> None:
    assert run_render.render_run(copy_run, pdf=False) == [copy_run / "report.html"]
    assert not (copy_run / "report.pdf").exists()


# --------------------------------------------------------------------------- fetching


@pytest.fixture
def fetcher(run_dir: Path) -> fetcher_mod.RunFetcher:
    return fetcher_mod.RunFetcher(run_dir, [face.path for face in fonts.dejavu_fonts()])


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://127.0.0.1:9/x.png",
        "https://example.com/x.png",
        "ftp://example.com/x.png",
        "file://otherhost/etc/passwd",
        "javascript:alert(1)",
    ],
)
def test_fetcher_refuses_foreign_urls(fetcher: fetcher_mod.RunFetcher, url: str) -> None:
    with pytest.raises(fetcher_mod.FetchRefused):
        fetcher.fetch(url)
    assert fetcher.refused == [url]


def test_fetcher_refuses_escapes_from_the_run(copy_run: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (copy_run / "figures" / "link.png").symlink_to(secret)
    fetcher = fetcher_mod.RunFetcher(copy_run, [])
    for url in (
        (copy_run / "figures" / "link.png").as_uri(),
        copy_run.as_uri() + "/../secret.txt",
        copy_run.as_uri() + "/figures/../../secret.txt",
    ):
        with pytest.raises(fetcher_mod.FetchRefused):
            fetcher.fetch(url)


def test_fetcher_serves_data_uris_run_files_and_fonts(
    fetcher: fetcher_mod.RunFetcher, run_dir: Path
) -> None:
    figure = run_dir / "figures" / "lr.png"
    assert fetcher.fetch(figure.as_uri()).read() == figure.read_bytes()
    assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"
    font = fonts.dejavu_fonts()[0].path
    assert fetcher.fetch(font.as_uri()).read()[:4] == font.read_bytes()[:4]
    assert fetcher.refused == []


def test_hostile_template_fetches_nothing(
    tmp_path: Path, copy_run: Path, page: run_page.RunPage, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "secret.txt").write_text("TOPSECRET")
    templates = tmp_path / "templates"
    templates.mkdir()
    _user_template(templates, "pages/report.html.j2").write_text(
        '<!DOCTYPE html><html lang="en"><head><title>x</title>\n'
        '<link rel="stylesheet" href="file:///etc/passwd">\n'
        '<link rel="attachment" href="file:///etc/passwd">\n'
        '<link rel="attachment" href="../secret.txt">\n'
        "<style>@import url(http://127.0.0.1:9/x.css);</style></head><body>\n"
        '<img alt="a" src="file:///etc/passwd"><img alt="b" src="http://127.0.0.1:9/x.png">\n'
        "<p>hostile</p></body></html>\n"
    )
    with caplog.at_level(logging.WARNING, logger="reportgen.report"):
        pdf = render.render_pdf(page, copy_run, templates_dir=templates)
    reader = PdfReader(io.BytesIO(pdf))
    assert "hostile" in reader.pages[0].extract_text()
    assert not reader.attachments
    assert b"root:" not in pdf and b"TOPSECRET" not in pdf
    refused = {
        record.getMessage().removeprefix("report: refused to fetch ")
        for record in caplog.records
        if record.name == "reportgen.report.fetcher"
    }
    assert refused == {
        "file:///etc/passwd",
        "http://127.0.0.1:9/x.css",
        "http://127.0.0.1:9/x.png",
        (tmp_path / "secret.txt").as_uri(),
    }


# --------------------------------------------------------------------------- a real run


def test_renders_a_real_pipeline_run(quick_run: Path, tmp_path: Path) -> None:
    """A run trained on generated digits renders again from its directory alone."""
    run = Path(shutil.copytree(quick_run, tmp_path / "run"))
    reports = [run / "report.html", run / "report.pdf"]
    before = {path: path.read_bytes() for path in reports}
    assert run_render.render_run(run) == reports
    for path, data in before.items():  # rendered by the pipeline: re-rendering is identical
        assert path.read_bytes() == data
    html = reports[0].read_text(encoding="utf-8")
    images = [attrs for tag, attrs in _parse(html).tags if tag == "img"]
    assert images and all((a["src"] or "").startswith("data:image/png") for a in images)
    assert all(heading in _parse(html).text for heading in SECTION_HEADINGS)
    text = _pdf_text(reports[1].read_bytes())
    metrics = parse_metrics((run / "metrics.json").read_bytes())
    for name, model in metrics.models.items():
        assert f"Model: {name}" in text and pct(model.test_accuracy) in text


# --------------------------------------------------------------------------- many classes


@pytest.fixture(scope="module")
def hundred_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run on 100 generated classes, with its PDF: per-class tables longer than a page."""
    from reportgen.config.loading import load_config
    from reportgen.run import pipeline
    from tests.imagefolder_fixture import make_many_class_folder

    folder = tmp_path_factory.mktemp("hundred")
    make_many_class_folder(folder / "images", classes=100)
    config = load_config(None, [
        'data.dataset="imagefolder"', f"data.path={str(folder / 'images')!r}",
        "data.channels=1", "data.val_size=100", "train.epochs=1", "runtime.threads=1",
        "report.attributions=false", "report.bootstrap_resamples=100", 'run.date="2024-05-06"',
        "models.baseline.hidden=[16]", "models.regularized.hidden=[16]",
    ])  # fmt: skip
    return pipeline.run(config, out=folder / "run").path


def _body_lines(text: str, title: str) -> list[str]:
    """Return a PDF page's lines without its running header and footer."""
    footer = re.compile(r"Run \S+ Page \d+ of \d+")
    return [
        line for line in text.splitlines()
        if line.strip() and not footer.fullmatch(line) and not line.startswith(title)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def hundred_classes_every_row(
    hundred_classes: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The 100-class run rendered again with every class in every table (report.table_rows)."""
    copy = Path(shutil.copytree(hundred_classes, tmp_path_factory.mktemp("every") / "run"))
    config = (copy / "config.toml").read_text()
    assert "\ntable_rows = 20\n" in config
    (copy / "config.toml").write_text(config.replace("\ntable_rows = 20\n", "\ntable_rows = 100\n"))
    synthetic.rehash(copy)
    run_render.render_run(copy)
    return copy


@pytest.mark.slow  # a 100-class run with its PDF: minutes
@pytest.mark.parametrize("every_row", [False, True], ids=["worst-20", "every-row"])
def test_a_100_class_pdf_has_no_page_holding_only_a_heading(
    every_row: bool, request: pytest.FixtureRequest
) -> None:
    fixture = "hundred_classes_every_row" if every_row else "hundred_classes"
    hundred_classes: Path = request.getfixturevalue(fixture)
    html = (hundred_classes / "report.html").read_text()
    headings = {
        re.sub(r"<[^>]+>", "", heading).strip()
        for heading in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", html, re.DOTALL)
    }
    title = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.DOTALL).group(1).strip()  # type: ignore[union-attr]
    reader = PdfReader(hundred_classes / "report.pdf")
    bare = []
    for number, page in enumerate(reader.pages, start=1):
        body = _body_lines(page.extract_text(), title)
        if not body or all(line.strip() in headings for line in body):
            bare.append((number, body))
    assert bare == []
    if every_row:  # long tables did break across pages, and repeat their header row there
        assert len(reader.pages) > 20
        repeated = [
            p.extract_text().count("Class Precision Recall F1 Support") for p in reader.pages
        ]
        assert sum(repeated) > 2  # two models, each table over more than one page


@pytest.mark.slow  # a 100-class run with its PDF: minutes
def test_a_100_class_report_shows_the_worst_20_of_each_per_class_table(
    hundred_classes: Path,
) -> None:
    html = (hundred_classes / "report.html").read_text()
    # Four tables per model and the recall differences, each cut with the same line.
    assert (
        html.count('<p class="note">20 of 100 classes shown; every class in per_class.csv</p>') == 9
    )
    metrics = parse_metrics((hundred_classes / "metrics.json").read_bytes())
    page = run_page.build_context(hundred_classes, environ={})
    names = metrics.dataset.classes
    for view in page.models:
        model = metrics.models[view.name]
        errors = sorted(
            model.class_errors, key=lambda r: (-r.error_rate, -r.support, names[r.label])
        )
        assert list(view.error_rows.rows) == errors[:20]
        f1 = sorted(model.classification_report.classes,
                    key=lambda r: (r.f1, -r.support, names[r.label]))  # fmt: skip
        assert list(view.class_rows.rows) == list(view.interval_rows.rows) == f1[:20]
        assert len(view.ranking_rows.rows) == 20 and view.ranking_rows.total == 100
        # The rows in the HTML are those 20, worst first.
        section = html[html.index(f'id="{view.anchor}-errors"') :]
        table = section[: section.index("</table>")]
        shown = re.findall(r'<th scope="row">(c\d{3})', table)
        assert shown == [names[row.label] for row in errors[:20]]
        assert "highest error rate first" in table
    assert page.class_recall_rows is not None and len(page.class_recall_rows.rows) == 20
    # A summary sentence names at most five classes of a kind.
    assert all(len(re.findall(r"“c\d{3}”", line)) <= 10 for line in page.summary)


@pytest.mark.slow  # a 100-class run with its PDF: minutes
def test_a_100_class_run_holds_every_class_in_per_class_csv(hundred_classes: Path) -> None:
    metrics = parse_metrics((hundred_classes / "metrics.json").read_bytes())
    rows = tables.read_per_class(hundred_classes, read_manifest(hundred_classes, RunManifest))
    assert [(row.model, row.label) for row in rows] == [
        (model, label) for model in metrics.models for label in range(100)
    ]
    assert rows == tables.class_rows(metrics)  # the run's values, exactly
    first = rows[0]
    report = metrics.models[first.model].classification_report.classes[0]
    assert (first.label_name, first.f1, first.support) == ("c000", report.f1, report.support)


@pytest.mark.slow  # a 100-class run with its PDF: minutes
def test_100_classes_get_top_5_accuracy(hundred_classes: Path) -> None:
    metrics = parse_metrics((hundred_classes / "metrics.json").read_bytes())
    for model in metrics.models.values():
        top = model.top_k_accuracy
        assert top is not None and top.k == 5
        assert model.test_accuracy <= top.value and top.low <= top.value <= top.high
    html = (hundred_classes / "report.html").read_text()
    assert html.count("<dt>Top-5 accuracy</dt>") == 2


@pytest.mark.slow  # a 100-class run with its PDF: minutes
def test_100_classes_get_the_most_confused_classes_and_a_table_of_pairs(
    hundred_classes: Path,
) -> None:
    from reportgen.evaluate.confusion import CONFUSED_PAIRS_LISTED, most_confused_classes

    metrics = parse_metrics((hundred_classes / "metrics.json").read_bytes())
    html = (hundred_classes / "report.html").read_text()
    classes, support = metrics.dataset.classes, metrics.dataset.test_support
    assert "Classes are ordered so that those confused with each other sit together" in html
    for name, model in metrics.models.items():
        figure = model.figures["confused_classes"]
        assert (hundred_classes / metrics.figures[figure]).read_bytes().startswith(b"\x89PNG")
        shown = len(most_confused_classes(model.confusion_matrix))
        assert f"The {shown} classes in the most confused pairs of the {name} model" in html
        assert len(model.confused_pairs) == CONFUSED_PAIRS_LISTED  # 3 below 26 classes
        sentence = sentences.errors_sentence(name, model, metrics.dataset)
        named = sentence.split("(true → predicted) are ")[1]
        assert named.count(" → ") == sentences.PAIRS_NAMED and named.endswith(" and 5 more.")
        errors = sum(row.errors for row in model.class_errors)
        assert f"The 10 most confused pairs of the {name} model on the test set" in html
        for pair in model.confused_pairs:
            row = (
                f'<tr><th scope="row">{classes[pair.true]}</th><td>{classes[pair.pred]}</td>'
                f'<td class="num">{pair.count}</td>'
                f'<td class="num">{pct(pair.count / support[pair.true])}</td>'
                f'<td class="num">{pct(pair.count / errors)}</td></tr>'
            )
            assert row in html
