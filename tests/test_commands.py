"""Commands on run directories end to end: render, verify, compare, email, gate, divergence."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
from pathlib import Path

import pytest

from reportgen.cli.main import main
from reportgen.data import idx

from .conftest import QuickMnist, quick_overrides


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


@pytest.fixture
def root(quick_mnist: QuickMnist, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's generated MNIST, accepted as verified for this test."""
    monkeypatch.setattr(idx, "MNIST_FILES", quick_mnist.specs)
    return quick_mnist.root


@pytest.fixture
def run_dir(quick_run: Path) -> Path:
    """The session's quick run (read-only: tests copy it to change it)."""
    return quick_run


def test_verify_refuses_a_tampered_run(
    root: Path, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A fresh run verifies: test_safety.py's test_verify_takes_no_path_from_the_run.
    copy = tmp_path / "quick"
    shutil.copytree(run_dir, copy)
    metrics = copy / "metrics.json"
    original = metrics.read_bytes()
    assert b'"schema": 3' in original  # metrics.json schema 3
    metrics.write_bytes(original.replace(b'"schema": 3', b'"schema": 4'))
    assert main(["--quiet", "verify", str(copy), "--data-root", str(root)]) == 2
    captured = capsys.readouterr()
    assert "metrics.json: SHA-256" in captured.err and "refusing to verify" in captured.err
    assert captured.out == ""


def test_render_is_byte_identical_and_refuses_tampering(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "quick"
    shutil.copytree(run_dir, copy)
    before = {name: (copy / name).read_bytes() for name in ("report.html", "report.pdf")}
    assert main(["render", str(copy)]) == 0
    for name, content in before.items():
        assert (copy / name).read_bytes() == content, name
    (copy / "history.csv").write_text("model,epoch\n")
    assert main(["render", str(copy)]) == 2
    assert "refusing to render a tampered run" in capsys.readouterr().err


def test_render_refuses_a_directory_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", str(tmp_path)]) == 2
    assert "not a reportgen run" in capsys.readouterr().err


def test_render_with_one_overridden_template(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "quick"
    shutil.copytree(run_dir, copy)
    templates = tmp_path / "templates"
    templates.mkdir()
    # A file under its old top-level name is refused, naming its new place; nothing is written.
    (templates / "footer.html.j2").write_text("<footer>Custom footer for QA</footer>\n")
    before = (copy / "report.html").read_bytes()
    assert main(["render", str(copy), "--templates", str(templates)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "this template is now partials/footer.html.j2" in err
    assert (copy / "report.html").read_bytes() == before
    # In the new layout (partials/), the one overridden template is used.
    (templates / "partials").mkdir()
    (templates / "footer.html.j2").rename(templates / "partials" / "footer.html.j2")
    assert main(["render", str(copy), "--templates", str(templates)]) == 0
    html = (copy / "report.html").read_text()
    assert "Custom footer for QA" in html and "Executive summary" in html
    # The manifest was refreshed, so the re-rendered run is not taken for a tampered one.
    assert main(["render", str(copy)]) == 0
    assert "Custom footer for QA" not in (copy / "report.html").read_text()


def test_fail_under_exits_3_after_rendering(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gated"
    args = ["--quiet", "run", "--out", str(out), *_sets(quick_overrides(root)),
            "--set", "report.pdf=false",
            "--set", "train.lr=1e-7",  # barely trained: accuracy near chance
            "--fail-under", "regularized.test_accuracy=0.9",
            "--fail-under", "baseline.macro_f1=0.0"]  # fmt: skip
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "threshold failed: regularized.test_accuracy" in err
    assert "baseline.macro_f1" not in err
    assert (out / "report.html").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is False
    assert "| regularized.test_accuracy | 0.9000 |" in (out / "summary.md").read_text()


def test_divergence_exits_4_and_the_report_says_so(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "diverged"
    args = ["--quiet", "run", "--out", str(out), *_sets(quick_overrides(root)),
            "--set", "report.pdf=false",
            "--set", "train.optimizer=sgd", "--set", "train.lr=10",
            "--set", "train.momentum=0.99", "--set", "data.batch_size=8"]  # fmt: skip
    assert main(args) == 4
    assert "diverged" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["models"]["baseline"]["divergence"] is not None
    html = (out / "report.html").read_text()
    assert "diverged" in html.lower() and "train.lr" in html


def test_compare_two_runs(
    run_dir: Path, quick_run_lr: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    assert main(["--quiet", "compare", str(run_dir), str(quick_run_lr), "--out", str(out)]) == 0
    html = (out / "compare.html").read_text()
    assert "train.lr" in html and (out / "compare.pdf").is_file()
    assert main(["compare", str(run_dir)]) == 2


def test_email_writes_an_eml_with_the_pdf(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = tmp_path / "report.eml"
    args = ["email", str(run_dir), "--to", "team@example.org", "--eml-out", str(eml)]
    assert main(args) == 0
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    pdfs = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdfs and pdfs[0].get_content() == (run_dir / "report.pdf").read_bytes()
    assert main(["email", str(run_dir), "--to", "team@example.org"]) == 2
    assert "--smtp-host" in capsys.readouterr().err
