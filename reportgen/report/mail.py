"""A finished run as an email: plain-text summary, HTML report with inline images, PDF attached.

:func:`build_message` turns a run directory into an
:class:`email.message.EmailMessage` and writes nothing; :func:`write_eml`
saves it atomically; :func:`send` hands it to an SMTP server.  The message is
laid out as::

    multipart/mixed
      multipart/alternative
        text/plain              the executive summary, in plain sentences
        multipart/related
          text/html             report.html, each data: image replaced by cid:
          image/png ...         one inline part per distinct image
      application/pdf           report.pdf

Mail clients (Gmail, Outlook) block ``data:`` images, hence the ``cid:``
parts.  Nothing here reads the clock or a random source: the Message-ID and
the MIME boundaries derive from a SHA-256 of the run's content and the
addressing, and the Date is the report's date (``run.date``, else
``SOURCE_DATE_EPOCH``, else 1970-01-01), so two builds of the same run give
byte-identical ``.eml`` files.  Only :func:`send` reads the clock: a message
that is sent is dated when it is sent.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import logging
import re
import smtplib
import socket
import ssl
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from email import policy
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import Literal

from reportgen.artifacts import layout
from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.manifest import RunManifest, read_artifact, read_intact
from reportgen.artifacts.runconfig import read_config
from reportgen.config.loading import unsafe_character
from reportgen.core import fileio
from reportgen.core.errors import ConfigError, OutputError, ReportgenError, RunDirError
from reportgen.core.text import level, pct, pp
from reportgen.report.page import Figure
from reportgen.report.render import render_html
from reportgen.report.run_page import RunPage, build_context

LOG = logging.getLogger(__name__)

Security = Literal["none", "starttls", "ssl"]
SECURITY_CHOICES: tuple[str, ...] = ("none", "starttls", "ssl")
DEFAULT_SENDER = "reportgen <reportgen@localhost>"
DEFAULT_PORTS: dict[str, int] = {"none": 25, "starttls": 587, "ssl": 465}
WRAP = 72  # plain-text line width
BOUNDARY_PREFIX = "=_reportgen_"  # "=_" never occurs in base64 or quoted-printable bodies

# A base64 data: URI of an image, as the report templates write them into src="" or url().
DATA_IMAGE = re.compile(r"data:(image/[A-Za-z0-9.+-]+);base64,([A-Za-z0-9+/]+={0,2})")
CID_REFERENCE = re.compile(r"cid:([^\s\"'<>()]+)")
_SUBTYPE_SUFFIX = {"jpeg": "jpg", "svg+xml": "svg"}


class MailError(ReportgenError):
    """A message could not be delivered to the SMTP server."""

    exit_status = 1


# --------------------------------------------------------------------------- inputs


def _addresses(values: Sequence[str], option: str) -> list[str]:
    """Return the addresses unchanged after refusing an empty list or a malformed address."""
    if not values:
        raise ConfigError(f"{option}: at least one recipient is needed")
    for value in values:
        _check_one_line(value, option)
        parsed = getaddresses([value])
        if len(parsed) != 1 or not re.fullmatch(r"[^@\s]+@[^@\s]+", parsed[0][1]):
            raise ConfigError(
                f"{option}: {value!r} is not one email address (like name@example.org)"
            )
    return list(values)


def _check_one_line(value: str, option: str) -> None:
    """Refuse a header value with a character that would break or corrupt the header line."""
    if (unsafe := unsafe_character(value)) is not None:
        raise ConfigError(f"{option}: {value!r} contains {unsafe}; give one line of UTF-8 text")


def _domain(sender: str) -> str:
    """Return the sender's domain, the right-hand side of the Message-ID."""
    domain = getaddresses([sender])[0][1].rpartition("@")[2]
    return domain if re.fullmatch(r"[A-Za-z0-9.-]+", domain) else "reportgen.invalid"


# --------------------------------------------------------------------------- text


def _all_figures(page: RunPage) -> Iterator[Figure]:
    yield from page.shared_figures
    for model in page.models:
        yield from model.figures.values()
        yield from model.pair_figures
        yield from model.attribution_figures


def default_subject(page: RunPage) -> str:
    """Return ``"reportgen: <run> — baseline 97.91%, regularized 98.10%"``."""
    accuracies = [
        f"{model.name} {pct(model.metrics.test_accuracy)}"
        + (" (diverged)" if model.diverged else "")
        for model in page.models
    ]
    return f"reportgen: {page.run_name} — {', '.join(accuracies)}"


def _wrap(paragraph: str) -> str:
    return textwrap.fill(paragraph, WRAP, break_long_words=False, break_on_hyphens=False)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Return ``rows`` as left-aligned columns; later columns right-aligned (numbers)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def plain_text(page: RunPage) -> str:
    """Return the plain-text body: the report's executive summary and a metric table."""
    lines = [page.title, f"Run {page.run_name}, seed {page.seed}, {page.date}", ""]
    for warning in page.warnings:
        lines += [_wrap(f"WARNING: {warning}"), ""]
    for paragraph in page.summary:
        lines += [_wrap(paragraph), ""]
    rows = [("Model", "Test accuracy", f"{level(page.ci_level)} CI", "Train–test gap")]
    for model in page.models:
        m = model.metrics
        ci = f"{pct(m.accuracy_ci.low)}–{pct(m.accuracy_ci.high)}"
        rows.append((model.name, pct(m.test_accuracy), ci, pp(m.train_test_gap)))
    lines += [*_table(rows), ""]
    lines += [
        _wrap(
            "The full report with every figure is attached as report.pdf; the HTML part of "
            "this message shows the same report."
        ),
        "",
        "-- ",
        f"Generated by {page.generator} from the artifacts of run {page.run_name}.",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- HTML and images


def _filename(name: str, subtype: str) -> str:
    suffix = _SUBTYPE_SUFFIX.get(subtype, subtype)
    return name if name.endswith(f".{suffix}") else f"{name}.{suffix}"


def inline_images(
    html: str, *, known: Mapping[str, str], domain: str
) -> tuple[str, list[tuple[str, str, str, bytes]]]:
    """Return ``html`` with every base64 ``data:`` image replaced by a ``cid:`` reference.

    Parameters
    ----------
    html
        The report's HTML.
    known
        ``{data URI: file name}`` for images with a name of their own (the run's figures).
    domain
        Right-hand side of each Content-ID.

    Returns
    -------
    tuple
        The new HTML and, per distinct image in order of first appearance,
        ``(content id, media type, file name, bytes)``.  Equal images share one part.
    """
    parts: dict[str, tuple[str, str, str, bytes]] = {}

    def replace(match: re.Match[str]) -> str:
        uri = match.group(0)
        if uri not in parts:
            media_type = match.group(1)
            try:
                data = base64.b64decode(match.group(2), validate=True)
            except binascii.Error:
                LOG.warning("mail: left a malformed data: image in the HTML part")
                return uri
            digest = fileio.sha256_bytes(data)[:16]
            subtype = media_type.partition("/")[2]
            name = known.get(uri) or f"image-{len(parts) + 1}"
            cid = f"{Path(name).stem}.{digest}@{domain}"
            parts[uri] = (cid, media_type, _filename(name, subtype), data)
        return f"cid:{parts[uri][0]}"

    return DATA_IMAGE.sub(replace, html), list(parts.values())


def html_with_inline_images(message: Message) -> str:
    """Return the message's HTML part with each ``cid:`` image turned back into a ``data:`` URI.

    For previews: the result is one self-contained page, as a browser would
    show the mail.  A ``cid:`` that names no part of the message is left alone.
    """
    if not isinstance(message, EmailMessage):
        raise TypeError("html_with_inline_images needs an EmailMessage (policy=email.policy.*)")
    body = message.get_body(preferencelist=("html",))
    if body is None:
        raise ValueError("the message has no text/html part")
    by_cid: dict[str, str] = {}
    for part in message.walk():
        cid = part.get("Content-ID")
        if cid and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                encoded = base64.b64encode(payload).decode("ascii")
                by_cid[str(cid).strip().strip("<>")] = (
                    f"data:{part.get_content_type()};base64,{encoded}"
                )
    html = body.get_content()
    return CID_REFERENCE.sub(lambda m: by_cid.get(m.group(1), m.group(0)), html)


# --------------------------------------------------------------------------- the message


def _message_digest(*pieces: bytes | str) -> str:
    """Return the SHA-256 over ``pieces``, each length-prefixed so no two inputs collide."""
    digest = hashlib.sha256(b"reportgen-mail 1\0")
    for piece in pieces:
        data = piece.encode("utf-8") if isinstance(piece, str) else piece
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def build_message(
    run_dir: Path | str,
    *,
    to: Sequence[str],
    sender: str = DEFAULT_SENDER,
    subject: str | None = None,
    environ: Mapping[str, str] | None = None,
    templates_dir: Path | str | None = None,
) -> EmailMessage:
    """Return the run's report as an email message; writes and sends nothing.

    Parameters
    ----------
    run_dir
        A rendered run directory: ``report.html`` and ``report.pdf`` next to
        the artifacts the report is built from.
    to
        Recipient addresses (at least one).
    sender
        The From address, e.g. ``"Reports <reports@example.org>"``.
    subject
        Subject line; default :func:`default_subject`.
    environ
        Where ``SOURCE_DATE_EPOCH`` is read from; default ``os.environ``.
    templates_dir
        The templates ``report.html`` was rendered with; default the run's
        ``report.templates``, else the packaged ones.

    Raises
    ------
    ConfigError
        No recipient, a malformed address, or an address or subject with a line
        break, another control character or bytes that are not UTF-8.
    RunDirError
        ``run_dir`` is not a run, lacks its rendered report, a file differs
        from the manifest, or ``report.html`` is not what reportgen renders
        from the run's artifacts (edited after rendering): only reportgen's
        own rendering is mailed.
    RenderError
        An artifact the summary is read from is malformed.
    """
    recipients = _addresses([to] if isinstance(to, str) else to, "--to")
    _addresses([sender], "--from")
    if subject is not None:
        _check_one_line(subject, "--subject")
    root = Path(run_dir)
    manifest = read_intact(root, RunManifest, action="mail")
    page = build_context(root, manifest=manifest, environ=environ)
    subject = default_subject(page) if subject is None else subject

    hint = " — render the report before mailing it"
    html_bytes = read_artifact(root, RUN_FILES.html.as_posix(), manifest, hint=hint)
    pdf_bytes = read_artifact(root, RUN_FILES.pdf.as_posix(), manifest, hint=hint)
    html = _rendered_html(root, page, html_bytes, manifest, templates_dir)
    domain = _domain(sender)
    known = {figure.src: Path(figure.path).name for figure in _all_figures(page)}
    html, images = inline_images(html, known=known, domain=domain)
    text = plain_text(page)
    digest = _message_digest(
        fileio.read_listed(root, layout.MANIFEST),
        html_bytes,
        pdf_bytes,
        sender,
        "\0".join(recipients),
        subject,
    )

    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = format_datetime(dt.datetime.fromtimestamp(page.epoch, tz=dt.UTC))
    message["Message-ID"] = f"<{digest[:32]}@{domain}>"
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None  # added just above
    for cid, media_type, filename, data in images:
        maintype, _, subtype = media_type.partition("/")
        # Without disposition="inline", a filename turns the image into an attachment.
        html_part.add_related(
            data, maintype, subtype, cid=f"<{cid}>", disposition="inline", filename=filename
        )
    message.add_attachment(pdf_bytes, "application", "pdf", filename="report.pdf")
    # The generator would draw random boundaries; "=_" never occurs in base64 or
    # quoted-printable bodies, so these cannot collide with content.
    multiparts = (part for part in message.walk() if part.is_multipart())
    for position, part in enumerate(multiparts):
        part.set_boundary(f"{BOUNDARY_PREFIX}{digest[32:56]}_{position}")
    return message


def _rendered_html(
    root: Path,
    page: RunPage,
    html_bytes: bytes,
    manifest: RunManifest,
    templates_dir: Path | str | None,
) -> str:
    """Return the report's HTML as reportgen renders it, refusing a ``report.html`` that differs.

    The manifest proves only that the files agree with each other: whoever
    can edit ``report.html`` (a script, a remote image) can rehash the
    manifest too.  The mail carries what reportgen renders from the run's
    checked artifacts, and a report that differs is named rather than
    silently replaced.
    """
    where = root / RUN_FILES.html
    templates = templates_dir
    if templates is None:
        templates = read_config(root, manifest)[0].report.templates
        if templates is not None and not Path(templates).is_dir():
            raise RunDirError(
                f"{where}: the run was rendered with report.templates {templates}, which is not "
                "a folder here; pass --templates DIR"
            )
    html = render_html(page, templates_dir=templates)
    if html.encode("utf-8") != html_bytes:
        which = (
            f"the templates in {templates}" if templates is not None else "the packaged templates"
        )
        raise RunDirError(
            f"{where}: not what reportgen renders from the run's artifacts with {which} (edited "
            f"after rendering?); refusing to mail it: run `reportgen render {root}` first, or "
            "pass --templates DIR if it was rendered with other templates"
        )
    return html


def write_eml(message: EmailMessage, path: Path | str) -> Path:
    """Write ``message`` as an RFC 5322 ``.eml`` file (CRLF line ends), atomically.

    An existing file is replaced only if it is a message reportgen wrote
    (recognised by its boundaries); anything else is refused.
    """
    path = Path(path)
    if path.is_symlink() or (path.exists() and not _written_here(path)):
        raise RunDirError(
            f"--eml-out {path}: exists and is not a message reportgen wrote; refusing to "
            "overwrite it"
        )
    try:
        fileio.write_atomic(path, message.as_bytes(policy=policy.SMTP))
    except OSError as e:
        raise OutputError(f"--eml-out {path}: cannot write: {e.strerror or e}") from e
    return path


def _written_here(path: Path) -> bool:
    """Return True if ``path`` is a message reportgen wrote: its headers name our boundary."""
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return BOUNDARY_PREFIX.encode() in head


# --------------------------------------------------------------------------- sending


def password_from_env(variable: str, environ: Mapping[str, str]) -> str:
    """Return the SMTP password held in environment variable ``variable``; never log it."""
    value = environ.get(variable)
    if not value:
        raise ConfigError(f"--password-env: environment variable {variable} is not set or empty")
    return value


def _server_said(error: smtplib.SMTPResponseException) -> str:
    reply = error.smtp_error
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{error.smtp_code} {' '.join(text.split())}"


def _refused(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address} ({code} {' '.join(reply.decode('utf-8', 'replace').split())})"
        for address, (code, reply) in sorted(recipients.items())
    )


def _connect(host: str, port: int, security: str, timeout: float) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if security == "ssl":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    client = smtplib.SMTP(host, port, timeout=timeout)
    if security == "starttls":
        try:
            client.starttls(context=context)
        except BaseException:
            client.close()
            raise
    return client


def send(
    message: EmailMessage,
    *,
    host: str,
    port: int | None = None,
    security: Security = "none",
    user: str | None = None,
    password: str | None = None,
    timeout: float = 30,
    now: dt.datetime | None = None,
) -> None:
    """Deliver ``message`` to its To/Cc/Bcc recipients through an SMTP server.

    The message sent is dated ``now`` (default: the clock), the time it is
    sent, so that mail clients file it where it belongs; ``message`` itself,
    and an ``.eml`` written from it, keep the run's date.

    Parameters
    ----------
    host, port
        The SMTP server; ``port`` defaults to 25, 587 or 465 by ``security``.
    security
        ``"none"`` (plain SMTP), ``"starttls"`` (upgrade after connecting) or
        ``"ssl"`` (TLS from the first byte, SMTPS).  TLS verifies the
        server's certificate against the system's trust store.
    user, password
        Log in when given (both or neither).  The password is never logged.
    timeout
        Seconds any single network operation may take.
    now
        The ``Date:`` of the message as sent.

    Raises
    ------
    ConfigError
        An unknown ``security``, or only one of ``user`` and ``password``.
    MailError
        The server is unreachable, TLS fails, login fails, or it refuses the
        sender, a recipient or the message; the one-line message says which.
    """
    if security not in SECURITY_CHOICES:
        raise ConfigError(
            f"SMTP security must be one of {', '.join(SECURITY_CHOICES)}; got {security!r}"
        )
    if (user is None) != (password is None):
        raise ConfigError("SMTP login needs both a user and a password (--password-env VAR)")
    port = DEFAULT_PORTS[security] if port is None else port
    server = f"SMTP server {host}:{port}"
    message = copy.deepcopy(message)
    message.replace_header("Date", format_datetime(now or dt.datetime.now(dt.UTC)))
    try:
        with _connect(host, port, security, timeout) as client:
            if user is not None and password is not None:
                client.login(user, password)
            refused = client.send_message(message)
    except socket.gaierror as e:
        raise MailError(f"{server} is unreachable: host name not found ({e.strerror})") from e
    except ConnectionRefusedError as e:
        raise MailError(f"{server} is unreachable: connection refused") from e
    except TimeoutError as e:  # socket.timeout is TimeoutError
        raise MailError(f"{server} is unreachable: no answer within {timeout:g} s") from e
    except ssl.SSLError as e:
        raise MailError(f"{server}: TLS failed: {getattr(e, 'reason', None) or e}") from e
    except smtplib.SMTPNotSupportedError as e:
        what = "STARTTLS" if "STARTTLS" in str(e) else "login (AUTH)"
        raise MailError(f"{server} does not support {what}") from e
    except smtplib.SMTPAuthenticationError as e:
        raise MailError(
            f"{server}: authentication failed for user {user}: {_server_said(e)}"
        ) from e
    except smtplib.SMTPRecipientsRefused as e:
        raise MailError(f"{server} refused recipient {_refused(e.recipients)}") from e
    except smtplib.SMTPSenderRefused as e:
        raise MailError(f"{server} refused sender {e.sender}: {_server_said(e)}") from e
    except smtplib.SMTPDataError as e:
        raise MailError(f"{server} rejected the message: {_server_said(e)}") from e
    except smtplib.SMTPConnectError as e:
        raise MailError(f"{server} is unreachable: {_server_said(e)}") from e
    except smtplib.SMTPResponseException as e:
        raise MailError(f"{server}: {_server_said(e)}") from e
    except smtplib.SMTPServerDisconnected as e:
        if isinstance(e.__context__, TimeoutError):  # smtplib wraps a read timeout
            raise MailError(f"{server} is unreachable: no answer within {timeout:g} s") from e
        raise MailError(f"{server} closed the connection unexpectedly") from e
    except (smtplib.SMTPException, OSError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise MailError(f"{server} is unreachable: {reason or type(e).__name__}") from e
    if refused:  # delivered to the others; still a failure the user must see
        raise MailError(f"{server} refused recipient {_refused(refused)} (sent to the others)")


__all__ = [
    "DEFAULT_SENDER",
    "MailError",
    "build_message",
    "default_subject",
    "html_with_inline_images",
    "password_from_env",
    "plain_text",
    "send",
    "write_eml",
]
