"""Checkpoints and weights: ``torch.save`` bytes written atomically, read with ``weights_only``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing

from reportgen.core import fileio
from reportgen.core.errors import RunDirError
from reportgen.train.loop import TrainState


def save_state(path: Path, payload: Any) -> None:
    """Write ``payload`` with ``torch.save`` atomically; the bytes do not depend on ``path``."""
    # torch.save writes the file name into the archive; saving through a buffer
    # keeps the bytes independent of the (temporary) name.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    fileio.write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> TrainState | None:
    """Return the training state saved at ``path``, or None if there is none."""
    import warnings  # local: this function's own concern

    if not path.is_file():
        return None
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of a file it then refuses anyway.
            warnings.simplefilter("ignore")
            payload = torch.load(path, weights_only=True, map_location="cpu")
        return TrainState(**payload)
    except Exception as e:
        # A weights-only refusal wraps its reason in paragraphs of advice; keep the reason.
        advice = ("Weights only load failed", "Please file an issue", "Check the documentation")
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = next((line for line in lines if not line.startswith(advice)), None)
        reason = reason or (lines[0] if lines else type(e).__name__)
        raise RunDirError(f"checkpoint {path} is unreadable or tampered with: {reason}") from e
