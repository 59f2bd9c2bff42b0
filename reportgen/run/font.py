"""``report.font`` as an input of a run: recorded in its manifest, checked when it is reused.

The font is recorded like a model's checkpoint or predictions file, in the
manifest's ``inputs`` under its setting's name, so ``verify`` finds a changed
or missing font before re-running anything (:func:`reportgen.run.verify.input_problem`);
``render`` re-renders a PDF only with the font the run was made with.
"""

from __future__ import annotations

from reportgen.artifacts.manifest import InputFile, RunManifest
from reportgen.config.schema import Config
from reportgen.core.errors import ConfigError
from reportgen.core.fontfile import FONT_KEY, FontFile, read_font


def font_input(config: Config, font: FontFile | None) -> dict[str, InputFile]:
    """Return the manifest's record of ``report.font``: path, SHA-256 and size; none without one."""
    if font is None or config.report.font is None:
        return {}
    return {FONT_KEY: InputFile(path=config.report.font, sha256=font.sha256, size=font.size)}


def font_disagreement(config: Config, manifest: RunManifest) -> str | None:
    """Return why a run's config and manifest disagree on whether it has a font, or None."""
    if (config.report.font is None) == (FONT_KEY not in manifest.inputs):
        return None
    return f"{FONT_KEY}: the run's config.toml and its manifest.json disagree on the font"


def recorded_font(config: Config, manifest: RunManifest) -> FontFile | None:
    """Return the run's ``report.font``, refusing one that is not the file the run recorded.

    Raises
    ------
    ConfigError
        The font is missing, not a font, changed since the run, or the run's
        config and manifest disagree on it.
    """
    if (problem := font_disagreement(config, manifest)) is not None:
        raise ConfigError(problem)
    if config.report.font is None:
        return None
    font = read_font(config.report.font)
    entry = manifest.inputs[FONT_KEY]
    if font.sha256 != entry.sha256:
        raise ConfigError(
            f"{FONT_KEY} = {entry.path!r} changed since the run: SHA-256 {font.sha256[:12]}…, "
            f"the run recorded {entry.sha256[:12]}…"
        )
    return font


__all__ = ["font_disagreement", "font_input", "recorded_font"]
