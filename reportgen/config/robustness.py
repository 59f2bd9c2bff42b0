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
# Test images the corruptions are measured on by default ("auto"): a seeded subsample of
# this many up to 28 × 28 pixels, so that the default MNIST run pays about two seconds for
# the whole section (docs/evaluation.md); fewer for larger images, in proportion to their
# pixels (a pass costs about that much more), but never fewer than AUTO_MIN_IMAGES.
DEFAULT_IMAGES = 1_000
AUTO_REFERENCE_PIXELS = 28 * 28
AUTO_MIN_IMAGES = 200


class RobustnessSection(BaseModel):
    """Accuracy under corruptions of the test images (noise, blur, geometry, photometry)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)

    enabled: bool = True
    corruptions: tuple[CorruptionName, ...] = CORRUPTION_NAMES
    severities: tuple[int, ...] = SEVERITIES
    # 0: every test image; otherwise a subsample of this many, drawn by the run's seed;
    # "auto": a count sized to the images (:func:`auto_images`).
    images: Literal["auto"] | int = Field(default="auto")

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
        if value == "auto" and isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError('must be "auto" or a whole number of test images, 0 for all')
        return value

    def middle_severity(self) -> int:
        """Return the severity the paired tests compare at: the middle one configured."""
        return middle_severity(self.severities)

    def image_count(self, height: int, width: int) -> int:
        """Return the test images to measure (0: all) for images of ``height`` × ``width``."""
        return auto_images(height, width) if self.images == "auto" else self.images


def auto_images(height: int, width: int) -> int:
    """Return the images ``images = "auto"`` measures for ``height`` × ``width`` images.

    ``DEFAULT_IMAGES`` up to 28 × 28 pixels; above, as many as cost what
    those would (a network's pass grows about with the pixels), down to
    ``AUTO_MIN_IMAGES``: 765 at 32 × 32, 200 at 64 × 64 and above.
    Integer arithmetic, so the count is the same everywhere.
    """
    pixels = height * width
    if pixels <= AUTO_REFERENCE_PIXELS:
        return DEFAULT_IMAGES
    return max(AUTO_MIN_IMAGES, DEFAULT_IMAGES * AUTO_REFERENCE_PIXELS // pixels)


def middle_severity(severities: Sequence[int]) -> int:
    """Return the middle of ascending ``severities`` (the lower of two middles): 3 of 1–5."""
    return severities[(len(severities) - 1) // 2]
