"""A run's ``config.toml``: the resolved configuration, every default filled in.

Written by :func:`reportgen.config.toml.to_toml`, read back only through
:func:`read_config`, which checks the file against the run's manifest and
validates it into a :class:`~reportgen.config.schema.Config`.
"""

from __future__ import annotations

from pathlib import Path

from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.manifest import Manifest, read_artifact
from reportgen.config.loading import parse_toml, validate
from reportgen.config.schema import Config
from reportgen.config.toml import to_toml
from reportgen.core.errors import RenderError, ReportgenError
from reportgen.core.fileio import write_atomic


def write_config(path: Path, config: Config) -> str:
    """Write ``config.toml`` atomically and return its text."""
    text = to_toml(config)
    write_atomic(path, text)
    return text


def read_config(root: Path, manifest: Manifest) -> tuple[Config, str]:
    """Return the run's resolved config, validated, and its TOML text."""
    rel = RUN_FILES.config.as_posix()
    data = read_artifact(root, rel, manifest)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RenderError(f"{root / rel}: not UTF-8 text: {e}") from e
    try:
        return validate(parse_toml(text, source=rel), source=rel), text
    except ReportgenError as e:
        raise RenderError(f"{root}: {e}") from e
