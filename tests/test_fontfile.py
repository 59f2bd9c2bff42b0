"""report.font: a supplied font for the characters DejaVu lacks, checked, used and fingerprinted.

The checks are pure functions on tiny fonts built here; one run through the
CLI (in this process, on a tiny image folder) is shared by every test that
needs a run, and a test that changes anything works on a copy of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from reportgen.artifacts.manifest import RunManifest, read_manifest
from reportgen.artifacts.runconfig import read_config
from reportgen.cli.main import main
from reportgen.core import fontfile
from reportgen.core.errors import ConfigError
from reportgen.core.fontfile import read_font
from reportgen.figures import style
from reportgen.figures.pool import FigureJob, draw_all
from reportgen.run.font import font_disagreement, recorded_font
from reportgen.run.stages import glyph_warning
from tests.imagefolder_fixture import make_image_folder

CJK = "猫の画像"  # a class name DejaVu has no glyph for


def make_font(path: Path, characters: str = CJK, family: str = "Test Fallback") -> Path:
    """Write a TrueType font whose only glyphs (filled squares) are ``characters``."""
    names = [".notdef", *(f"uni{ord(c):04X}" for c in characters)]
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({ord(c): f"uni{ord(c):04X}" for c in characters})
    glyphs = {}
    for name in names:
        pen = TTGlyphPen(None)
        pen.moveTo((100, 0))
        pen.lineTo((100, 700))
        pen.lineTo((900, 700))
        pen.lineTo((900, 0))
        pen.closePath()
        glyphs[name] = pen.glyph()
    builder.setupGlyf(glyphs)
    builder.setupHorizontalMetrics({name: (1000, 100) for name in names})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": family, "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    builder.setupPost()
    path.parent.mkdir(parents=True, exist_ok=True)
    builder.save(str(path))
    return path


@pytest.fixture(scope="module")
def font_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_font(tmp_path_factory.mktemp("font") / "cjk.ttf")


# ------------------------------------------------------------------ checking the file


def test_a_font_is_read_with_its_fingerprint_and_characters(font_path: Path) -> None:
    font = read_font(str(font_path))
    assert font.sha256 == hashlib.sha256(font_path.read_bytes()).hexdigest()
    assert font.size == font_path.stat().st_size
    assert font.codepoints == {ord(c) for c in CJK}


def _not_a_font(tmp: Path, font: Path) -> tuple[str, str]:
    (tmp / "notes.txt").write_text("hello\n")
    return str(tmp / "notes.txt"), "not a TrueType or OpenType font (.ttf, .otf, .ttc)"


def _damaged(tmp: Path, font: Path) -> tuple[str, str]:
    (tmp / "cut.ttf").write_bytes(font.read_bytes()[:40])  # the signature, then nothing
    return str(tmp / "cut.ttf"), "cannot be read as a font: "


def _no_cmap(tmp: Path, font: Path) -> tuple[str, str]:
    return str(make_font(tmp / "empty.ttf", characters="")), "the font has no Unicode character map"


def _link(tmp: Path, font: Path) -> tuple[str, str]:
    (tmp / "link.ttf").symlink_to(font)
    return str(tmp / "link.ttf"), "a symbolic link; name the font file itself"


def _folder(tmp: Path, font: Path) -> tuple[str, str]:
    (tmp / "dir.ttf").mkdir()
    return str(tmp / "dir.ttf"), "not a regular file"


def _missing(tmp: Path, font: Path) -> tuple[str, str]:
    return str(tmp / "nowhere.ttf"), "no such file"


@pytest.mark.parametrize("make", [_not_a_font, _damaged, _no_cmap, _link, _folder, _missing])
def test_a_bad_font_is_a_config_error_naming_the_key(
    make: Any, tmp_path: Path, font_path: Path
) -> None:
    value, problem = make(tmp_path, font_path)
    with pytest.raises(ConfigError) as raised:
        read_font(value)
    assert str(raised.value).startswith(f"report.font: {value}: {problem}")
    assert "\n" not in str(raised.value)


def test_a_font_larger_than_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch, font_path: Path
) -> None:
    size = font_path.stat().st_size
    monkeypatch.setattr(fontfile, "FONT_MAX_BYTES", size)
    assert read_font(str(font_path)).size == size  # the limit itself is allowed
    monkeypatch.setattr(fontfile, "FONT_MAX_BYTES", size - 1)
    with pytest.raises(ConfigError, match=r"^report\.font: .*: larger than 0 MiB, not a font$"):
        read_font(str(font_path))


# ------------------------------------------------------------------ the warning and figures


def test_the_warning_counts_the_supplied_fonts_characters(font_path: Path, tmp_path: Path) -> None:
    assert glyph_warning(["cat", CJK]) == (
        "warning: the packaged DejaVu fonts have no glyph for characters in 1 class name, "
        f"drawn as boxes in the figures and the PDF: '{CJK}' ({CJK}); report.font can name a "
        "font that has them"
    )
    assert glyph_warning(["cat", CJK], read_font(str(font_path))) is None
    partial = read_font(str(make_font(tmp_path / "part.ttf", characters="猫")))
    assert glyph_warning([CJK], partial) == (
        "warning: the DejaVu fonts and report.font have no glyph for characters in 1 class "
        f"name, drawn as boxes in the figures and the PDF: '{CJK}' (の画像)"
    )


def test_figures_draw_the_characters_dejavu_lacks_with_the_supplied_font(font_path: Path) -> None:
    jobs = [FigureJob(f"notice{i}", "notice", kwargs={"message": f"{CJK} {i}", "title": CJK})
            for i in range(2)]  # fmt: skip
    boxes = draw_all(jobs[:1], workers=1)
    with style.fallback_font(font_path):
        here = draw_all(jobs, workers=1)
        forked = draw_all(jobs, workers=2)  # the pool's workers inherit the font
    assert here[0] != boxes[0]
    assert forked == here
    assert draw_all(jobs[:1], workers=1) == boxes  # only inside the block


# ------------------------------------------------------------------ one run through the CLI


class FontRun(NamedTuple):
    """The shared run: the folder it was made from, its output and what it printed."""

    base: Path  # holds project/run.toml, project/fonts/cjk.ttf and the run, out/
    out: Path
    stderr: str


def _cli(*argv: str, cwd: Path) -> tuple[int, str]:
    """Run the CLI in this process from ``cwd``; return its exit status and stderr."""
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stderr(err):
        monkeypatch.chdir(cwd)
        status = main(list(argv))
    return status, err.getvalue()


@pytest.fixture(scope="module")
def font_run(tmp_path_factory: pytest.TempPathFactory) -> FontRun:
    """One tiny run of one model on an image folder with a CJK class name and report.font.

    Read-only: a test that changes the run or its font copies ``base`` first.
    """
    base = tmp_path_factory.mktemp("fontrun")
    images = make_image_folder(base / "imgs", classes=("circle", CJK), per_class_train=4,
                               per_class_test=2, sizes=(8,))  # fmt: skip
    make_font(base / "project" / "fonts" / "cjk.ttf")
    (base / "project" / "run.toml").write_text(
        f'[data]\ndataset = "imagefolder"\npath = {json.dumps(str(images))}\nimage_size = 8\n'
        "[train]\nepochs = 1\n[runtime]\nthreads = 1\n[models.net]\nhidden = [4]\n"
        '[report]\nfont = "fonts/cjk.ttf"\nattributions = false\nlabel_issues = false\n'
        "duplicates = false\nauto_pairs = 0\nn_misclassified = 1\nn_weights = 1\n"
        "bootstrap_resamples = 100\n[report.robustness]\nenabled = false\n",
        encoding="utf-8",
    )
    status, stderr = _cli("run", "--config", "project/run.toml", "--out", "out", cwd=base)
    assert status == 0, stderr
    return FontRun(base, base / "out", stderr)


def test_a_run_with_the_font_draws_every_class_name_without_a_warning(font_run: FontRun) -> None:
    assert "warning" not in font_run.stderr.lower(), font_run.stderr
    assert "Glyph" not in font_run.stderr and "findfont" not in font_run.stderr, font_run.stderr
    assert "no glyph" not in (font_run.out / "run.log").read_text(encoding="utf-8")


def test_the_manifest_records_the_font_as_an_input(font_run: FontRun) -> None:
    font = (font_run.base / "project" / "fonts" / "cjk.ttf").read_bytes()
    sha256 = hashlib.sha256(font).hexdigest()
    manifest = json.loads((font_run.out / "manifest.json").read_text())
    # Relative to the config file's folder, as found from where the run was made.
    assert manifest["inputs"] == {
        "report.font": {"path": "project/fonts/cjk.ttf", "sha256": sha256, "size": len(font)}
    }
    assert 'font = "project/fonts/cjk.ttf"' in (font_run.out / "config.toml").read_text()
    html = (font_run.out / "report.html").read_text(encoding="utf-8")
    row = f"project/fonts/cjk.ttf ({len(font):,} bytes, SHA-256 {sha256})"
    assert f'<th scope="row">Supplied font (report.font)</th><td>{row}</td>' in html


def test_the_pdf_embeds_only_the_glyphs_dejavu_lacks(font_run: FontRun) -> None:
    reader = PdfReader(io.BytesIO((font_run.out / "report.pdf").read_bytes()))
    fonts = {}
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object()
            program = descendant["/FontDescriptor"].get_object()["/FontFile2"].get_object()
            fonts[str(font["/BaseFont"]).split("+")[-1]] = program.get_data()
    assert all(n.startswith(("reportgen-Sans", "reportgen-Fallback")) for n in fonts), sorted(fonts)
    fallback = [data for name, data in fonts.items() if name.startswith("reportgen-Fallback")]
    assert fallback, sorted(fonts)
    shown: set[int] = set()
    for program in fallback:
        shown |= set(TTFont(io.BytesIO(program)).getBestCmap())
    assert shown == {ord(c) for c in CJK}  # every character of the name, and nothing else


def test_verify_and_render_refuse_a_changed_font(font_run: FontRun, tmp_path: Path) -> None:
    base = shutil.copytree(font_run.base, tmp_path / "copy", symlinks=True)
    font, out = base / "project" / "fonts" / "cjk.ttf", base / "out"
    recorded = hashlib.sha256(font.read_bytes()).hexdigest()
    make_font(font, characters=CJK + "中")
    changed = hashlib.sha256(font.read_bytes()).hexdigest()
    line = (
        f"report.font = 'project/fonts/cjk.ttf' changed since the run: SHA-256 {changed[:12]}…, "
        f"the run recorded {recorded[:12]}…"
    )
    status, stderr = _cli("verify", "out", cwd=base)
    assert status == 1
    assert stderr.splitlines()[0] == f"reportgen: not reproduced: {line}", stderr
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    status, stderr = _cli("render", "out", cwd=base)
    assert (status, stderr) == (2, f"reportgen: error: {line}\n")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    font.unlink()
    status, stderr = _cli("verify", "out", cwd=base)
    assert status == 1
    assert stderr.startswith(
        "reportgen: not reproduced: report.font = 'project/fonts/cjk.ttf' is missing"
    ), stderr


def test_a_config_and_a_manifest_that_disagree_on_the_font_are_refused(
    font_run: FontRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = read_manifest(font_run.out, RunManifest)
    config, _ = read_config(font_run.out, manifest)
    monkeypatch.chdir(font_run.base)  # the recorded path is found from where the run was made
    assert font_disagreement(config, manifest) is None
    font = recorded_font(config, manifest)
    assert font is not None and font.sha256 == manifest.inputs["report.font"].sha256
    unrecorded = manifest.model_copy(update={"inputs": {}})
    unnamed = config.model_copy(update={"report": config.report.model_copy(update={"font": None})})
    problem = "report.font: the run's config.toml and its manifest.json disagree on the font"
    assert font_disagreement(config, unrecorded) == problem
    assert font_disagreement(unnamed, manifest) == problem
    assert font_disagreement(unnamed, unrecorded) is None
    with pytest.raises(ConfigError, match=f"^{problem}$"):
        recorded_font(unnamed, manifest)
    assert recorded_font(unnamed, unrecorded) is None


@pytest.mark.parametrize(
    ("font", "problem"),
    [("fonts/missing.ttf", "no such file"),
     ("run.toml", "not a TrueType or OpenType font (.ttf, .otf, .ttc)")],
)  # fmt: skip
def test_a_bad_report_font_stops_the_run_before_any_work(
    tmp_path: Path, font: str, problem: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "run.toml").write_text(f'[report]\nfont = "{font}"\n', encoding="utf-8")
    status, stderr = _cli("run", "--config", "project/run.toml", "--out", "out", cwd=tmp_path)
    assert (status, stderr) == (2, f"reportgen: error: report.font: project/{font}: {problem}\n")
    assert sorted(os.listdir(tmp_path)) == ["project"]
