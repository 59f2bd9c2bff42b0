"""``metrics.json``'s record of how each model came into the run: trained, or from a file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reportgen.artifacts.contract import Contract

SourceKind = Literal["trained", "checkpoint", "predictions"]


class ModelSource(Contract):
    """How a model came: trained by the run, its weights from a checkpoint, or its predictions."""

    kind: SourceKind = Field(
        default="trained",
        description='"trained": by this run; "checkpoint": a state dict loaded into the network '
        '(`models.NAME.checkpoint`), no training; "predictions": its test predictions read from a '
        "file (`models.NAME.predictions`), no network",
    )
    file: str | None = Field(
        default=None, description="the file's name (no folder), null for a trained model"
    )
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="the SHA-256 of the file's bytes, null for a trained model",
    )
    scores: Literal["probabilities", "logits"] | None = Field(
        default=None,
        description="a predictions file's scores: probabilities (used as given) or logits "
        "(softmax in float32), null otherwise",
    )
