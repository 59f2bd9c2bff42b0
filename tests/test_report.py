"""Tests for the report stage: templates -> self-contained HTML -> PDF, reproducibly.

They render a synthetic but schema-complete run directory (metrics.json as
the README's schema describes it, config.toml, manifest.json and small PNG
figures), so they need neither MNIST nor training.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import weasyprint
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from weasyprint.pdf import fonts as weasyprint_fonts

from reportgen import __version__, evaluate, report, rundir
from reportgen.errors import RenderError, RunDirError, TemplateError
from reportgen.formatting import pct

GOLDEN = Path(__file__).parent / "golden" / "report.html"
UPDATE_GOLDEN = os.environ.get("REPORTGEN_UPDATE_GOLDEN") == "1"
MODELS = ("baseline", "regularized")
ACCURACY = {"baseline": 0.90, "regularized": 0.93}
TEST_SIZE = 1_000
CONFIG = """seed = 7

[run]
name = "synthetic"
title = {title}
author = "Test Author"
{date}
[data]
root = "data"
batch_size = 64

[train]
epochs = 3
optimizer = "adam"
lr = 0.001

[models.baseline]
hidden = [256, 128]

[models.regularized]
hidden = [256, 128]
dropout = 0.3
batchnorm = true
weight_decay = 0.0001
scheduler = "step"
step_size = 5
gamma = 0.5
"""

SECTION_HEADINGS = [
    "Contents",
    "Executive summary",
    "Model comparison",
    "Training curves and diagnosis",
    "Model: baseline",
    "Model: regularized",
    "Classification report",
    "Confusion matrix",
    "Per-class errors",
    "Misclassified test images",
    "Confused pairs",
    "Learned weights",
    "Activations",
    "Reproducibility",
]


# --------------------------------------------------------------------------- a synthetic run


# A fixed zlib stream (a 24×16 RGB stripe pattern) rather than matplotlib output, so the
# figures' bytes, and the SHA-256 values the golden file shows, never change.
PNG_IDAT = bytes.fromhex(
    "78da6360e01291d330b2710b884ac9ab68ea99b660d5967d272edd7946b2f8a841a3068d1a346a106506010068fc059f"
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(text: str) -> bytes:
    """Return a small, fixed PNG whose tEXt chunk names it (so every figure differs)."""
    header = struct.pack(">IIBBBBB", 24, 16, 8, 2, 0, 0, 0)  # 24×16, 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"tEXt", b"Title\0" + text.encode("ascii"))
        + _chunk(b"IDAT", PNG_IDAT)
        + _chunk(b"IEND", b"")
    )


def _predictions(accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(10), TEST_SIZE // 10)
    y_pred = y_true.copy()
    wrong = rng.random(TEST_SIZE) > accuracy
    y_pred[wrong] = (y_true[wrong] + rng.choice([1, 5], size=int(wrong.sum()))) % 10
    return y_true, y_pred


def _model_metrics(name: str, seed: int, *, divergence: dict[str, Any] | None) -> dict[str, Any]:
    y_true, y_pred = _predictions(ACCURACY[name], seed)
    matrix = evaluate.confusion(y_true, y_pred)
    errors = evaluate.class_errors(matrix)
    test_accuracy = evaluate.accuracy(y_true, y_pred)
    train_accuracy = min(1.0, test_accuracy + 0.02)
    return {
        "parameters": 235_146 if name == "baseline" else 235_914,
        "epochs": 3,
        "train_accuracy": train_accuracy,
        "val_accuracy": test_accuracy - 0.005,
        "test_accuracy": test_accuracy,
        "train_test_gap": train_accuracy - test_accuracy,
        "test_loss": 0.3125,
        "classification_report": evaluate.classification_report(y_true, y_pred),
        "confusion_matrix": matrix.tolist(),
        "class_errors": errors,
        "worst_classes": evaluate.worst_classes(errors),
        "confused_pairs": evaluate.most_confused_pairs(matrix, count=3),
        "divergence": divergence,
        "accuracy_ci": {
            "level": 0.95,
            "resamples": 1000,
            "low": test_accuracy - 0.018,
            "high": test_accuracy + 0.017,
        },
        "diagnosis": {
            "labels": ["good fit"],
            "summary": "Train and validation loss fall together.",
            "evidence": ["validation loss fell in 2 of 2 epochs"],
        },
        "sample_index": 0,
        "misclassified": [int(i) for i in np.flatnonzero(y_true != y_pred)[:10]],
        "pair_galleries": [
            {
                "true": 4,
                "pred": 9,
                "count": int(matrix[4, 9]),
                "indices": evaluate.pair_indices(y_true, y_pred, true=4, pred=9, limit=8),
                "source": "config",
                "figure": f"{name}_pair_4_as_9",
            },
            {
                "true": 3,
                "pred": 8,
                "count": 0,
                "indices": [],
                "source": "auto",
                "figure": f"{name}_pair_3_as_8",
            },
        ],
        "figures": {
            kind: f"{name}_{kind}"
            for kind in (
                "weights",
                "activations",
                "misclassified",
                "curves",
                "confusion",
                "class_errors",
            )
        },
    }


def make_run(
    root: Path,
    *,
    title: str = "Synthetic MNIST report",
    date: str | None = "2024-03-01",
    divergence: dict[str, Any] | None = None,
) -> Path:
    """Write a complete synthetic run directory at ``root`` and return it."""
    root.mkdir(parents=True)
    # Written out in full (not from the defaults) so the golden file does not follow them.
    date_line = f"date = {json.dumps(date)}\n" if date is not None else ""
    rundir.write_atomic(
        root / "config.toml", CONFIG.format(title=json.dumps(title), date=date_line)
    )

    models = {
        name: _model_metrics(name, seed, divergence=divergence if name == "baseline" else None)
        for seed, name in enumerate(MODELS)
    }
    names = [f"{m}_{kind}" for m in MODELS for kind in models[m]["figures"]]
    names += [f"{m}_pair_{pair}" for m in MODELS for pair in ("4_as_9", "3_as_8")]
    names += ["compare_curves", "lr"]
    for name in names:
        rundir.write_atomic(root / "figures" / f"{name}.png", _png(name))
    metrics = {
        "schema": 1,
        "run": {"name": "synthetic", "seed": 7},
        "dataset": {
            "name": "MNIST (torchvision.datasets.MNIST, official IDX files)",
            "train_size": 5_000,
            "val_size": 500,
            "test_size": TEST_SIZE,
            "test_support": [TEST_SIZE // 10] * 10,
        },
        "models": models,
        "comparison": [
            {
                "model": name,
                **{
                    k: m[k]
                    for k in (
                        "train_accuracy",
                        "val_accuracy",
                        "test_accuracy",
                        "train_test_gap",
                        "parameters",
                        "epochs",
                    )
                },
            }
            for name, m in models.items()
        ],
        "significance": {
            "models": list(MODELS),
            "mcnemar": {"b": 12, "c": 41, "p_value": 0.00011},
            "difference": {
                "estimate": 0.03,
                "low": 0.012,
                "high": 0.047,
                "level": 0.95,
                "resamples": 1000,
            },
            "alpha": 0.05,
            "significant": True,
            "verdict": "The regularized model is significantly more accurate than the baseline.",
        },
        "figures": {name: f"figures/{name}.png" for name in sorted(names)},
    }
    rundir.write_json(root / "metrics.json", metrics)
    rundir.write_atomic(root / "history.csv", "model,epoch\nbaseline,1\n")
    rundir.write_atomic(root / "models" / "baseline.pt", b"weights")
    manifest = {
        "schema": 1,
        "run_name": "synthetic",
        "seed": 7,
        "command": ["reportgen", "run", "--out", "somewhere/else"],
        "data_files": {"t10k-images-idx3-ubyte": "ab" * 32, "train-images-idx3-ubyte": "cd" * 32},
        "data_source": "cache",
        "environment": {
            "versions": {"python": "3.11.7", "torch": "2.14.1", "weasyprint": "70.0"},
            "hardware": {"machine": "x86_64", "cpu": "Test CPU", "device": "cpu"},
            "threads": 2,
            "parallel_info": "ATen/Parallel:\n\tat::get_num_threads() : 2\n",
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
        },
        "timings_s": {"train:baseline": 12.345, "train:regularized": 23.456},
        "artifacts": rundir.artifact_hashes(root),
    }
    rundir.write_json(root / rundir.MANIFEST, manifest)
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic run directory (read-only by convention: copy it to change it)."""
    return make_run(tmp_path_factory.mktemp("report") / "run")


@pytest.fixture(scope="module")
def context(run_dir: Path) -> dict[str, Any]:
    return report.build_context(run_dir, environ={})


@pytest.fixture(scope="module")
def html(context: dict[str, Any]) -> str:
    return report.render_html(context)


@pytest.fixture(scope="module")
def pdf(context: dict[str, Any], run_dir: Path) -> bytes:
    return report.render_pdf(context, run_dir)


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
    assert len(images) == 2 + 2 * (6 + 2)  # shared curves + 6 kinds and 2 pairs per model
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


def test_html_shows_the_metrics(html: str, context: dict[str, Any]) -> None:
    for view in context["models"]:
        metrics = view.metrics
        assert pct(metrics["test_accuracy"]) in html
        assert pct(metrics["accuracy_ci"]["low"]) in html
    assert "McNemar exact two-sided p-value" in html and "&lt; 0.001" in html
    assert "Train and validation loss fall together." in html


def test_reproducibility_section(html: str, run_dir: Path) -> None:
    manifest = json.loads((run_dir / rundir.MANIFEST).read_text())
    assert report.REPRODUCE_COMMAND in html
    assert "somewhere/else" not in html  # the argv is not the command shown
    for rel, entry in manifest["artifacts"].items():
        assert rel in html and entry["sha256"] in html
    for digest in manifest["data_files"].values():
        assert digest in html
    assert "12.345" not in html and "23.456" not in html  # no wall-clock timings
    assert "name = &#34;synthetic&#34;" in html  # resolved config, escaped
    assert "0123456789abcdef" in html and "Test CPU" in html


def test_title_block_uses_config_date(html: str) -> None:
    assert '<time datetime="2024-03-01">2024-03-01</time>' in html
    assert '<meta name="dcterms.created" content="2024-03-01T00:00:00Z">' in html


def test_title_is_escaped(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", title="<script>alert(1)</script> & co")
    html = report.render_html(report.build_context(run, environ={}))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


def test_divergence_is_shown(tmp_path: Path) -> None:
    divergence = {"epoch": 2, "step": 310, "last_finite_loss": 2.302585}
    run = make_run(tmp_path / "run", divergence=divergence)
    context = report.build_context(run, environ={})
    html = report.render_html(context)
    assert context["warnings"] == [report.divergence_sentence("baseline", divergence)]
    assert "This model diverged." in html
    assert "diverged in epoch 2" in html and "2.3026" in html
    assert "Lower train.lr" in html
    assert html.count('class="callout danger" role="alert"') == 2  # summary and model section


@pytest.mark.parametrize(
    ("date", "environ", "expected"),
    [
        ("2024-03-01", {"SOURCE_DATE_EPOCH": "86400"}, "2024-03-01"),
        (None, {"SOURCE_DATE_EPOCH": "1700000000"}, "2023-11-14"),
        (None, {}, "1970-01-01"),
    ],
)
def test_report_date_never_reads_the_clock(
    tmp_path: Path, date: str | None, environ: dict[str, str], expected: str
) -> None:
    run = make_run(tmp_path / "run", date=date)
    assert report.build_context(run, environ=environ)["date"] == expected


def test_bad_source_date_epoch_is_a_render_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", date=None)
    with pytest.raises(RenderError, match="SOURCE_DATE_EPOCH"):
        report.build_context(run, environ={"SOURCE_DATE_EPOCH": "yesterday"})


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
    for name in ("base.html.j2", "report.html.j2", "report.css", "macros.html.j2"):
        assert files.joinpath(name).is_file()


def test_overriding_one_template_changes_only_that_part(
    tmp_path: Path, context: dict[str, Any], html: str
) -> None:
    (tmp_path / "summary.html.j2").write_text(
        '<section id="summary"><h2>Custom summary for {{ run_name }}</h2></section>\n'
    )
    custom = report.render_html(context, templates_dir=tmp_path)
    start = html.index('<section id="summary"')
    end = html.index('<section id="comparison"')
    assert custom[:start] == html[:start]
    assert custom.endswith(html[end:])
    assert "Custom summary for synthetic" in custom
    assert "Executive summary" not in custom.split("<main>")[1]


def test_user_css_overrides_the_packaged_stylesheet(
    tmp_path: Path, context: dict[str, Any]
) -> None:
    (tmp_path / "report.css").write_text("body { color: rebeccapurple; }\n")
    custom = report.render_html(context, templates_dir=tmp_path)
    assert "rebeccapurple" in custom and "--accent" not in custom


def test_missing_variable_is_a_render_error(tmp_path: Path, context: dict[str, Any]) -> None:
    (tmp_path / "summary.html.j2").write_text("<p>{{ no_such_value }}</p>\n")
    with pytest.raises(
        RenderError, match=r"summary\.html\.j2 line 1: 'no_such_value' is undefined"
    ):
        report.render_html(context, templates_dir=tmp_path)


def test_value_a_filter_cannot_format_is_a_render_error(
    tmp_path: Path, context: dict[str, Any]
) -> None:
    (tmp_path / "summary.html.j2").write_text("<p>\n{{ run_name|pct }}</p>\n")
    with pytest.raises(RenderError, match=r"summary\.html\.j2 line 2: cannot display a value"):
        report.render_html(context, templates_dir=tmp_path)


def test_template_syntax_error_is_a_render_error(tmp_path: Path, context: dict[str, Any]) -> None:
    (tmp_path / "title.html.j2").write_text("<h1>{% if %}</h1>\n")
    with pytest.raises(RenderError, match=r"title\.html\.j2 line 1"):
        report.render_html(context, templates_dir=tmp_path)


def test_missing_templates_directory_is_a_render_error(context: dict[str, Any]) -> None:
    with pytest.raises(RenderError, match="does not exist"):
        report.render_html(context, templates_dir="no/such/dir")


def test_autoescape_applies_to_user_templates(tmp_path: Path, context: dict[str, Any]) -> None:
    (tmp_path / "summary.html.j2").write_text("<p>{{ '<b>bold</b>' }}</p>\n")
    assert "&lt;b&gt;bold&lt;/b&gt;" in report.render_html(context, templates_dir=tmp_path)


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
    tmp_path: Path, context: dict[str, Any], template: str
) -> None:
    marker = tmp_path / "pwned"
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "summary.html.j2").write_text(template.replace("MARKER", str(marker)))
    with pytest.raises(RenderError, match=r"summary\.html\.j2 line 1: .*(unsafe|not safely)") as e:
        report.render_html(context, templates_dir=templates)
    assert "\n" not in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("template", ["{{ 9 ** 999999999 }}", "{{ 'x' * 10 ** 9 }}"])
def test_templates_cannot_exhaust_memory_with_arithmetic(
    tmp_path: Path, context: dict[str, Any], template: str
) -> None:
    (tmp_path / "summary.html.j2").write_text(template)
    with pytest.raises(TemplateError, match=r"too large|over 1,000,000 items"):
        report.render_html(context, templates_dir=tmp_path)


@pytest.mark.parametrize(
    "template",
    [
        "{% include 'summary.html.j2' %}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    ],
    ids=["includes itself", "recursive macro"],
)
def test_endless_template_recursion_is_a_render_error(
    tmp_path: Path, context: dict[str, Any], template: str
) -> None:
    (tmp_path / "summary.html.j2").write_text(template)
    with pytest.raises(RenderError, match="recursion too deep") as e:
        report.render_html(context, templates_dir=tmp_path)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- PDF


@pytest.mark.parametrize("heading", SECTION_HEADINGS)
def test_pdf_text_has_every_section_heading(pdf_text: str, heading: str) -> None:
    assert heading in pdf_text


def test_pdf_shows_both_test_accuracies(pdf_text: str, context: dict[str, Any]) -> None:
    for view in context["models"]:
        assert pct(view.metrics["test_accuracy"]) in pdf_text


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


def test_pdf_bytes_do_not_depend_on_the_systems_font_subsetter(
    context: dict[str, Any], run_dir: Path, pdf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without libharfbuzz-subset, WeasyPrint would subset with fontTools instead.
    monkeypatch.setattr(weasyprint_fonts, "harfbuzz_subset", None)
    assert report.render_pdf(context, run_dir) == pdf


def test_weasyprints_own_subsetting_would_depend_on_the_system(
    context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: why reportgen subsets the fonts itself."""
    if weasyprint_fonts.harfbuzz_subset is None:
        pytest.skip("libharfbuzz-subset is not installed: nothing to compare")
    html = report.render_html({**context, "pdf": True, "fonts": report.dejavu_fonts()})
    with_harfbuzz = weasyprint.HTML(string=html).write_pdf(pdf_identifier=False)
    monkeypatch.setattr(weasyprint_fonts, "harfbuzz_subset", None)
    with_fonttools = weasyprint.HTML(string=html).write_pdf(pdf_identifier=False)
    assert with_harfbuzz != with_fonttools


def test_renders_are_byte_identical_across_runs_and_directories(
    run_dir: Path, copy_run: Path, html: str, pdf: bytes
) -> None:
    context = report.build_context(copy_run, environ={})
    assert report.render_html(context) == html
    assert report.render_pdf(context, copy_run) == pdf
    assert str(run_dir).encode() not in pdf and str(copy_run).encode() not in pdf


def test_source_date_epoch_is_restored(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    with report._source_date_epoch(86400):
        assert os.environ["SOURCE_DATE_EPOCH"] == "86400"
    assert "SOURCE_DATE_EPOCH" not in os.environ


def test_render_run_writes_both_reports(copy_run: Path) -> None:
    written = report.render_run(copy_run)
    assert written == [copy_run / "report.html", copy_run / "report.pdf"]
    assert (copy_run / "report.pdf").read_bytes().startswith(b"%PDF-")
    assert not list(copy_run.glob(".*.tmp-*"))


def test_render_run_without_pdf(copy_run: Path) -> None:
    assert report.render_run(copy_run, pdf=False) == [copy_run / "report.html"]
    assert not (copy_run / "report.pdf").exists()


# --------------------------------------------------------------------------- fetching


@pytest.fixture
def fetcher(run_dir: Path) -> report.RunFetcher:
    return report.RunFetcher(run_dir, [face.path for face in report.dejavu_fonts()])


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
def test_fetcher_refuses_foreign_urls(fetcher: report.RunFetcher, url: str) -> None:
    with pytest.raises(report.FetchRefused):
        fetcher.fetch(url)
    assert fetcher.refused == [url]


def test_fetcher_refuses_escapes_from_the_run(copy_run: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (copy_run / "figures" / "link.png").symlink_to(secret)
    fetcher = report.RunFetcher(copy_run, [])
    for url in (
        (copy_run / "figures" / "link.png").as_uri(),
        copy_run.as_uri() + "/../secret.txt",
        copy_run.as_uri() + "/figures/../../secret.txt",
    ):
        with pytest.raises(report.FetchRefused):
            fetcher.fetch(url)


def test_fetcher_serves_data_uris_run_files_and_fonts(
    fetcher: report.RunFetcher, run_dir: Path
) -> None:
    figure = run_dir / "figures" / "lr.png"
    assert fetcher.fetch(figure.as_uri()).read() == figure.read_bytes()
    assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"
    font = report.dejavu_fonts()[0].path
    assert fetcher.fetch(font.as_uri()).read()[:4] == font.read_bytes()[:4]
    assert fetcher.refused == []


def test_hostile_template_fetches_nothing(
    tmp_path: Path, copy_run: Path, context: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "secret.txt").write_text("TOPSECRET")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.html.j2").write_text(
        '<!DOCTYPE html><html lang="en"><head><title>x</title>\n'
        '<link rel="stylesheet" href="file:///etc/passwd">\n'
        '<link rel="attachment" href="file:///etc/passwd">\n'
        '<link rel="attachment" href="../secret.txt">\n'
        "<style>@import url(http://127.0.0.1:9/x.css);</style></head><body>\n"
        '<img alt="a" src="file:///etc/passwd"><img alt="b" src="http://127.0.0.1:9/x.png">\n'
        "<p>hostile</p></body></html>\n"
    )
    with caplog.at_level(logging.WARNING, logger="reportgen.report"):
        pdf = report.render_pdf(context, copy_run, templates_dir=templates)
    reader = PdfReader(io.BytesIO(pdf))
    assert "hostile" in reader.pages[0].extract_text()
    assert not reader.attachments
    assert b"root:" not in pdf and b"TOPSECRET" not in pdf
    refused = {
        record.getMessage().removeprefix("report: refused to fetch ")
        for record in caplog.records
        if record.name == "reportgen.report"
    }
    assert refused == {
        "file:///etc/passwd",
        "http://127.0.0.1:9/x.css",
        "http://127.0.0.1:9/x.png",
        (tmp_path / "secret.txt").as_uri(),
    }


# --------------------------------------------------------------------------- broken runs


def test_not_a_run_is_a_run_dir_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a reportgen run"):
        report.build_context(tmp_path)


@pytest.mark.parametrize(
    ("rel", "error", "match"),
    [
        ("metrics.json", RunDirError, "metrics.json is missing"),
        ("config.toml", RunDirError, "config.toml is missing"),
        ("figures/lr.png", RunDirError, "figure figures/lr.png is missing"),
    ],
)
def test_missing_artifact(copy_run: Path, rel: str, error: type[Exception], match: str) -> None:
    (copy_run / rel).unlink()
    with pytest.raises(error, match=match):
        report.build_context(copy_run)


def test_tampered_artifact_is_refused(copy_run: Path) -> None:
    path = copy_run / "metrics.json"
    path.write_text(path.read_text().replace('"test_size": 1000', '"test_size": 1001'))
    with pytest.raises(RunDirError, match=re.escape("metrics.json does not match its SHA-256")):
        report.build_context(copy_run)


def _rewrite_metrics(root: Path, edit: Any) -> None:
    """Edit metrics.json and record its new hash, as a consistent (if broken) run."""
    path = root / "metrics.json"
    metrics = json.loads(path.read_text())
    edit(metrics)
    rundir.write_json(path, metrics)
    manifest = json.loads((root / rundir.MANIFEST).read_text())
    manifest["artifacts"] = rundir.artifact_hashes(root)
    rundir.write_json(root / rundir.MANIFEST, manifest)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda m: m["models"]["baseline"].pop("accuracy_ci"),
            "models.baseline: missing key 'accuracy_ci.level'",
        ),
        (lambda m: m.pop("significance"), "missing key 'significance'"),
        (lambda m: m["significance"]["mcnemar"].pop("p_value"), "'mcnemar.p_value'"),
        (lambda m: m["models"]["baseline"]["figures"].pop("weights"), "no 'weights' figure"),
        (lambda m: m["figures"].update(lr="../../outside.png"), "points outside the run"),
        (lambda m: m.update(schema=2), "not a schema 1 metrics document"),
        (lambda m: m["models"]["baseline"].update(test_accuracy="high"), "malformed metrics.json"),
    ],
)
def test_malformed_metrics_is_a_render_error(copy_run: Path, edit: Any, match: str) -> None:
    _rewrite_metrics(copy_run, edit)
    with pytest.raises(RenderError, match=re.escape(match)):
        report.build_context(copy_run)


def test_invalid_json_is_a_render_error(copy_run: Path) -> None:
    (copy_run / "metrics.json").write_text("{not json")
    manifest = json.loads((copy_run / rundir.MANIFEST).read_text())
    manifest["artifacts"] = rundir.artifact_hashes(copy_run)
    rundir.write_json(copy_run / rundir.MANIFEST, manifest)
    with pytest.raises(RenderError, match="invalid JSON"):
        report.build_context(copy_run)


def test_a_figure_that_is_not_png_is_a_render_error(copy_run: Path) -> None:
    (copy_run / "figures" / "lr.png").write_bytes(b"GIF89a")
    manifest = json.loads((copy_run / rundir.MANIFEST).read_text())
    manifest["artifacts"] = rundir.artifact_hashes(copy_run)
    rundir.write_json(copy_run / rundir.MANIFEST, manifest)
    with pytest.raises(RenderError, match="not a PNG image"):
        report.build_context(copy_run)


def test_pipeline_manifest_can_be_passed_in(copy_run: Path) -> None:
    manifest = json.loads((copy_run / rundir.MANIFEST).read_text())
    (copy_run / rundir.MANIFEST).unlink()
    context = report.build_context(copy_run, manifest=manifest, environ={})
    assert context["reproducibility"]["seed"] == 7


# --------------------------------------------------------------------------- sentences


def test_summary_sentences(context: dict[str, Any]) -> None:
    summary = context["summary"]
    assert summary[0].startswith("Test accuracy on the 1,000 test images: ")
    assert "for the baseline model (95% CI " in summary[0]
    assert " and " in summary[0] and "for the regularized model (95% CI" in summary[0]
    assert summary[1].startswith("The regularized model is significantly more accurate")
    assert "12 are classified correctly only by the baseline model" in summary[1]
    assert summary[2] == (
        "Curve diagnosis for the baseline model — Train and validation loss fall together."
    )
    assert "errs most on digit" in summary[4] and "most confused pairs" in summary[4]


def test_errors_sentence_without_errors() -> None:
    model: dict[str, Any] = {"class_errors": [], "worst_classes": [], "confused_pairs": []}
    assert report.errors_sentence("baseline", model) == (
        "The baseline model misclassifies none of the test images."
    )


# --------------------------------------------------------------------------- a real run


@pytest.mark.slow
def test_renders_a_real_pipeline_run(fake_mnist: Path, tmp_path: Path) -> None:
    """Train on generated digits, then render from the run directory alone."""
    from reportgen import pipeline
    from reportgen.config import load_config

    from .conftest import quick_overrides

    run = pipeline.run(load_config(None, quick_overrides(fake_mnist)), out=tmp_path / "run")
    reports = [run.path / "report.html", run.path / "report.pdf"]
    before = {path: path.read_bytes() for path in reports if path.exists()}
    assert report.render_run(run.path) == reports
    for path, data in before.items():  # rendered by the pipeline: re-rendering is identical
        assert path.read_bytes() == data
    html = reports[0].read_text(encoding="utf-8")
    images = [attrs for tag, attrs in _parse(html).tags if tag == "img"]
    assert images and all((a["src"] or "").startswith("data:image/png") for a in images)
    assert all(heading in _parse(html).text for heading in SECTION_HEADINGS)
    text = _pdf_text(reports[1].read_bytes())
    for name, model in run.metrics["models"].items():
        assert f"Model: {name}" in text and pct(model["test_accuracy"]) in text
