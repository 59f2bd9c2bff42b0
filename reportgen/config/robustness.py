"""``[report.robustness]``: which corruptions, at which severities, on how many test images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

CorruptionName = Literal[
    "gaussian_noise", "shot_noise", "impulse_noise", "gaussian_blur", "rotate", "shear",
    "scale", "translate", "brightness", "contrast",
]  # fmt: skip
CORRUPTION_NAMES: tuple[CorruptionName, ...] = get_args(CorruptionName)
SEVERITIES = (1, 2, 3, 4, 5)
# Test images the corruptions are measured on by default: a seeded subsample, so that the
# default MNIST run pays about two seconds for the whole section (docs/evaluation.md).
DEFAULT_IMAGES = 1_000


class RobustnessSection(BaseModel):
    """Accuracy under corruptions of the test images (noise, blur, geometry, photometry)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)

    enabled: bool = True
    corruptions: tuple[CorruptionName, ...] = CORRUPTION_NAMES
    severities: tuple[int, ...] = SEVERITIES
    # 0: every test image; otherwise a subsample of this many, drawn by the run's seed.
    images: int = Field(default=DEFAULT_IMAGES, ge=0)

    @field_validator("corruptions", mode="before")
    @classmethod
    def _known_corruptions(cls, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise ValueError(
                f"must be a non-empty list of corruption names from {', '.join(CORRUPTION_NAMES)}"
            )
        for name in value:
            if name not in CORRUPTION_NAMES:
                raise ValueError(
                    f"unknown corruption {name!r} (allowed: {', '.join(CORRUPTION_NAMES)})"
                )
        if len(set(value)) != len(value):
            raise ValueError("names a corruption twice")
        return tuple(value)

    @field_validator("severities", mode="before")
    @classmethod
    def _known_severities(cls, value: Any) -> Any:
        allowed = ", ".join(map(str, SEVERITIES))
        if not isinstance(value, list | tuple) or not value:
            raise ValueError(f"must be a non-empty list of severities from {allowed}")
        for severity in value:
            if isinstance(severity, bool) or severity not in SEVERITIES:
                raise ValueError(f"unknown severity {severity!r} (allowed: {allowed})")
        if len(set(value)) != len(value):
            raise ValueError("names a severity twice")
        return tuple(sorted(value))

    @field_validator("images", mode="before")
    @classmethod
    def _a_count(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not true or false")
        return value

    def middle_severity(self) -> int:
        """Return the severity the paired tests compare at: the middle one configured."""
        return middle_severity(self.severities)


def middle_severity(severities: Sequence[int]) -> int:
    """Return the middle of ascending ``severities`` (the lower of two middles): 3 of 1–5."""
    return severities[(len(severities) - 1) // 2]
