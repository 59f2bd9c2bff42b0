"""reportgen: reproducible batch reports for PyTorch image classifiers on MNIST.

The public API is :func:`run`, which takes a validated :class:`Config` and
returns the published :class:`Run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Config", "Run", "__version__", "load_config", "run"]

if TYPE_CHECKING:
    from reportgen.config import Config, load_config
    from reportgen.pipeline import Run, run


def __getattr__(name: str) -> Any:
    # Lazy: `reportgen --help` must not pay for importing torch.
    if name in {"Config", "load_config"}:
        from reportgen import config

        return getattr(config, name)
    if name in {"Run", "run"}:
        from reportgen import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
