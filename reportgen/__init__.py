"""reportgen: reproducible batch reports for PyTorch image classifiers.

The public API is :func:`run`, which takes a validated :class:`Config` and
returns the published :class:`Run`, and :func:`load_config`, which reads one.
"""

from __future__ import annotations

from reportgen.core.version import VERSION as __version__

__all__ = ["Config", "Run", "__version__", "load_config", "run"]

# Not `typing.TYPE_CHECKING`: `python -m reportgen` runs this file while the current
# directory is still first on sys.path, so it imports nothing the interpreter has not.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from reportgen.config.loading import load_config
    from reportgen.config.schema import Config
    from reportgen.run.pipeline import Run, run


def __getattr__(name: str) -> Any:
    # Lazy: `reportgen --help` must not pay for importing torch.
    if name == "Config":
        from reportgen.config.schema import Config

        return Config
    if name == "load_config":
        from reportgen.config.loading import load_config

        return load_config
    if name in {"Run", "run"}:
        from reportgen.run import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
