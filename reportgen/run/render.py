"""``reportgen render``: a run's artifacts -> its ``report.html`` and ``report.pdf``.

The pipeline renders a run once, before it writes the manifest; ``render``
renders a finished run again (new templates, a fixed bug in a sentence)
from its checked artifacts and updates the manifest's entries of the two
reports only.
"""

from __future__ import annotations

from pathlib import Path

from reportgen.artifacts.layout import RUN_FILES, RunPaths
from reportgen.artifacts.manifest import ArtifactEntry, RunManifest, read_intact
from reportgen.artifacts.runconfig import read_config
from reportgen.core import fileio
from reportgen.core.errors import OutputError, RunDirError
from reportgen.core.fontfile import FontFile
from reportgen.report.render import render_html, render_pdf
from reportgen.report.run_page import build_context
from reportgen.run.font import recorded_font


def render_run(
    run_dir: Path | str,
    *,
    templates_dir: Path | str | None = None,
    pdf: bool = True,
    manifest: RunManifest | None = None,
    font: FontFile | None = None,
) -> list[Path]:
    """Render ``report.html`` (and ``report.pdf``) into ``run_dir``; return the paths written.

    Both documents are rendered in memory first, so a failure leaves the
    previous reports in place; each file is then written atomically.
    ``font`` (``report.font``) is embedded in the PDF for the characters
    DejaVu lacks.
    """
    root = Path(run_dir)
    page = build_context(root, manifest=manifest)
    paths = RunPaths(root)
    outputs = {paths.html: render_html(page, templates_dir=templates_dir).encode("utf-8")}
    if pdf:
        outputs[paths.pdf] = render_pdf(page, root, templates_dir=templates_dir, font=font)
    for path, data in outputs.items():
        fileio.write_atomic(path, data)
    return list(outputs)


def rerender_run(run_dir: Path | str, *, templates_dir: Path | str | None = None) -> list[Path]:
    """Re-render a run's reports from its checked artifacts; return the paths written.

    Every file the manifest lists is checked first, and only the manifest's
    entries for the reports are updated: files it does not list are never
    read nor added, so a run from elsewhere stays data.
    """
    root = Path(run_dir)
    manifest = read_intact(root, RunManifest, action="render")
    reason = fileio.unwritable(root)
    if reason is not None:
        raise RunDirError(
            f"{root}: {reason}; render writes the reports into the run: copy it somewhere "
            "writable first"
        )
    pdf = RUN_FILES.pdf.as_posix() in manifest.artifacts
    font = recorded_font(read_config(root, manifest)[0], manifest) if pdf else None
    try:
        written = render_run(root, templates_dir=templates_dir, pdf=pdf, manifest=manifest,
                             font=font)  # fmt: skip
        artifacts = dict(manifest.artifacts)
        for path in written:
            artifacts[path.relative_to(root).as_posix()] = ArtifactEntry.of(path)
        manifest.model_copy(update={"artifacts": artifacts}).write(RunPaths(root).manifest)
    except OSError as e:
        raise OutputError(f"cannot write {e.filename or root}: {e.strerror or e}") from e
    return written
