"""reportgen: reproducible batch reports for PyTorch image classifiers.

The public API is :func:`run`, which takes a validated :class:`Config` and
returns the published :class:`Run`, and :func:`load_config`, which reads one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reportgen.core.version import VERSION as __version__

__all__ = ["Config", "Run", "__version__", "load_config", "run"]

if TYPE_CHECKING:
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
