"""The base of every part of ``metrics.json``: strict, closed, immutable pydantic models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0)]
Label = Annotated[int, Field(ge=0)]


class Contract(BaseModel):
    """A part of ``metrics.json``: strict types, no unknown keys, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
