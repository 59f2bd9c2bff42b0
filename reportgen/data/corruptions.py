"""Deterministic corruptions of test images: noise, blur, geometry and photometry, five severities.

After MNIST-C (Mu & Gilmer, 2019) and ImageNet-C (Hendrycks & Dietterich,
ICLR 2019): each corruption has one parameter, set at five severities (the
table in docs/evaluation.md, written from :data:`CORRUPTIONS`); severity 0
is the identity.  Every function takes float images in [0, 1]
``[B, C, H, W]`` (grey or RGB, any size: sizes are fractions of the image's
side) and returns new ones in [0, 1]; the dataset's normalisation comes after.

Randomness is per image.  Image ``i`` (its position in the test split) under
corruption ``c`` at severity ``s`` has its own seed,
``derive_seed(run seed, "corruption:c:s:i")``: a noise corruption draws the
image's standard normal deviates from a fresh ``torch.Generator`` with that
seed (one ``randn`` of the image's size, about 20 µs for 28 × 28); a geometric
one reads its sign or direction from the seed's low bits, with no generator at
all.  Everything else is element by element — additions, products, square
roots, bilinear sampling along each row — and a blur is a weighted sum of
shifted copies rather than a convolution, whose kernel may change with the
batch; a contrast change sums each image in fixed point, so no reduction's
split matters.  An image's corrupted pixels therefore depend on the run seed,
the corruption, the severity and the image's index only: not on the batch it
is in, its position there, or the thread count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import torch
import torch.nn.functional as F

from reportgen.config.robustness import CORRUPTION_NAMES, SEVERITIES, CorruptionName
from reportgen.core.seeding import derive_seed, generator

Family = Literal["noise", "blur", "geometry", "photometry"]
Levels = tuple[float, float, float, float, float]
# Fixed point of a contrast change's image mean: exact integer sums, in any order.
FIXED_POINT = float(1 << 24)
# Unit steps of the eight directions a translation takes, by the seed's bits.
DIRECTIONS = tuple(
    (round(math.cos(k * math.pi / 4), 12), round(math.sin(k * math.pi / 4), 12)) for k in range(8)
)


@dataclass(frozen=True)
class Draws:
    """One batch's randomness: each image's seed, and its normal deviates where needed."""

    seeds: tuple[int, ...]
    normal: torch.Tensor | None  # [B, C, H, W] float32, or None for a corruption without noise

    def signs(self) -> torch.Tensor:
        """Return ``[B]`` ±1.0: each image's direction, from bit 0 of its seed."""
        return torch.tensor([1.0 if s & 1 else -1.0 for s in self.seeds])

    def direction(self) -> torch.Tensor:
        """Return ``[B, 2]`` unit steps (x, y), one of eight directions: bits 1–3 of the seed."""
        return torch.tensor([DIRECTIONS[(s >> 1) & 7] for s in self.seeds], dtype=torch.float32)


@dataclass(frozen=True)
class Corruption:
    """One corruption: what it does, its parameter at severities 1–5, and how it is applied."""

    name: CorruptionName
    title: str  # as a page names it: "Gaussian noise"
    family: Family
    parameter: str  # what the levels are, for the docs' table
    levels: Levels  # the parameter at severities 1 to 5
    apply: Callable[[torch.Tensor, float, Draws], torch.Tensor]
    shown: str  # the parameter as a page shows it: "σ = {value:.2g}"; {pixels}: value × side
    noise: bool = False  # draws a standard normal deviate per pixel

    def setting(self, severity: int, side: int) -> str:
        """Return the parameter at ``severity`` as a page shows it, for images ``side`` pixels."""
        value = self.levels[severity - 1]
        return self.shown.format(value=value, pixels=value * side, percent=100 * value)

    def __call__(self, images: torch.Tensor, severity: int, draws: Draws) -> torch.Tensor:
        return self.apply(images, self.levels[severity - 1], draws)


# --------------------------------------------------------------------------- noise


def _normal(draws: Draws) -> torch.Tensor:
    if draws.normal is None:  # a bug: noise corruptions get their draws
        raise RuntimeError("a noise corruption needs normal deviates")
    return draws.normal


def gaussian_noise(images: torch.Tensor, sigma: float, draws: Draws) -> torch.Tensor:
    """Add ``sigma`` × a standard normal deviate to every pixel."""
    return (images + sigma * _normal(draws)).clamp(0.0, 1.0)


def shot_noise(images: torch.Tensor, photons: float, draws: Draws) -> torch.Tensor:
    """Photon noise of ``photons`` per unit of intensity: Poisson(λx)/λ, as a Gaussian.

    The normal approximation has the Poisson's mean ``x`` and variance
    ``x / λ``, and leaves black pixels black, as the Poisson does; it keeps
    every step element by element (an exact Poisson sampler is not).
    """
    return (images + torch.sqrt(images / photons) * _normal(draws)).clamp(0.0, 1.0)


def impulse_noise(images: torch.Tensor, amount: float, draws: Draws) -> torch.Tensor:
    """Salt and pepper: each pixel (each channel) black or white with probability ``amount``."""
    normal = _normal(draws)
    unit = NormalDist()
    low, high = unit.inv_cdf(amount / 2), unit.inv_cdf(1 - amount / 2)
    pepper = torch.where(normal < low, 0.0, images)
    return torch.where(normal > high, 1.0, pepper)


# --------------------------------------------------------------------------- blur


def blur_weights(sigma: float) -> list[float]:
    """Return the normalised 1-D Gaussian weights of standard deviation ``sigma`` (pixels)."""
    radius = max(1, math.ceil(3 * sigma))
    raw = [math.exp(-0.5 * (k / sigma) ** 2) for k in range(-radius, radius + 1)]
    total = math.fsum(raw)
    return [w / total for w in raw]


def _blur_along(images: torch.Tensor, weights: Sequence[float], dim: int) -> torch.Tensor:
    radius = len(weights) // 2
    size = images.shape[dim]
    pad = (0, 0, radius, radius) if dim == 2 else (radius, radius, 0, 0)
    padded = F.pad(images, pad, mode="replicate")
    out = torch.zeros_like(images)
    for k, weight in enumerate(weights):  # in a fixed order: the same sums in any batch
        out = out + weight * padded.narrow(dim, k, size)
    return out


def gaussian_blur(images: torch.Tensor, sigma: float, draws: Draws) -> torch.Tensor:
    """Blur with a Gaussian of ``sigma`` × the image's shorter side (edges replicated)."""
    weights = blur_weights(sigma * min(images.shape[-2:]))
    return _blur_along(_blur_along(images, weights, 2), weights, 3).clamp(0.0, 1.0)


# --------------------------------------------------------------------------- geometry


def warp(images: torch.Tensor, inverse: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Return ``images`` moved by an affine map about their centre, in pixels; outside is black.

    ``inverse`` ``[B, 2, 2]`` maps an output point (x, y), relative to the
    centre, back to the input after ``shift`` ``[B, 2]`` is subtracted; the
    input is sampled bilinearly.
    """
    height, width = images.shape[-2:]
    xs = torch.arange(width, dtype=torch.float32) + 0.5 - width / 2  # pixel centres
    ys = torch.arange(height, dtype=torch.float32) + 0.5 - height / 2
    x = xs.view(1, 1, width) - shift[:, 0].view(-1, 1, 1)  # [B, 1, W]
    y = ys.view(1, height, 1) - shift[:, 1].view(-1, 1, 1)  # [B, H, 1]
    a, b = inverse[:, 0, 0].view(-1, 1, 1), inverse[:, 0, 1].view(-1, 1, 1)
    c, d = inverse[:, 1, 0].view(-1, 1, 1), inverse[:, 1, 1].view(-1, 1, 1)
    source_x = (a * x + b * y) / (width / 2)  # [B, H, W], in grid_sample's [-1, 1]
    source_y = (c * x + d * y) / (height / 2)
    grid = torch.stack([source_x, source_y], dim=-1)
    return grid_sample(images, grid).clamp(0.0, 1.0)


def grid_sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample ``images`` at ``grid`` (bilinear, black outside, pixel-centre convention)."""
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _no_shift(images: torch.Tensor) -> torch.Tensor:
    return torch.zeros(images.shape[0], 2)


def rotate(images: torch.Tensor, degrees: float, draws: Draws) -> torch.Tensor:
    """Rotate by ``degrees`` about the centre, clockwise or anticlockwise by the image's seed."""
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    signed_sin = sin * draws.signs()
    inverse = torch.stack(
        [
            torch.full_like(signed_sin, cos),
            signed_sin,
            -signed_sin,
            torch.full_like(signed_sin, cos),
        ],
        dim=1,
    ).view(-1, 2, 2)
    return warp(images, inverse, _no_shift(images))


def shear(images: torch.Tensor, factor: float, draws: Draws) -> torch.Tensor:
    """Shear horizontally: x moves by ``factor`` × y, to the left or right by the image's seed."""
    signed = factor * draws.signs()
    ones, zeros = torch.ones_like(signed), torch.zeros_like(signed)
    inverse = torch.stack([ones, -signed, zeros, ones], dim=1).view(-1, 2, 2)
    return warp(images, inverse, _no_shift(images))


def scale(images: torch.Tensor, factor: float, draws: Draws) -> torch.Tensor:
    """Shrink about the centre to ``factor`` of the size (the border turns black)."""
    inverse = torch.eye(2).expand(images.shape[0], 2, 2) / factor
    return warp(images, inverse, _no_shift(images))


def translate(images: torch.Tensor, fraction: float, draws: Draws) -> torch.Tensor:
    """Shift by ``fraction`` of each side, in one of eight directions by the image's seed."""
    height, width = images.shape[-2:]
    shift = draws.direction() * torch.tensor([fraction * width, fraction * height])
    return warp(images, torch.eye(2).expand(images.shape[0], 2, 2), shift)


# --------------------------------------------------------------------------- photometry


def brightness(images: torch.Tensor, amount: float, draws: Draws) -> torch.Tensor:
    """Add ``amount`` to every pixel."""
    return (images + amount).clamp(0.0, 1.0)


def channel_means(images: torch.Tensor) -> torch.Tensor:
    """Return each image's mean per channel ``[B, C, 1, 1]``, the same however it is batched.

    The pixels are summed as integers (multiples of 2⁻²⁴), exact in any
    order, so no split of the reduction across threads changes a bit.
    """
    fixed = torch.round(images * FIXED_POINT).to(torch.int64)
    total = fixed.sum(dim=(2, 3), keepdim=True).to(torch.float64)
    pixels = images.shape[-1] * images.shape[-2]
    return (total / (FIXED_POINT * pixels)).to(torch.float32)


def contrast(images: torch.Tensor, factor: float, draws: Draws) -> torch.Tensor:
    """Pull every pixel toward its image's channel mean: ``mean + factor × (x − mean)``."""
    mean = channel_means(images)
    return (mean + factor * (images - mean)).clamp(0.0, 1.0)


CORRUPTIONS: dict[CorruptionName, Corruption] = {
    c.name: c
    for c in (
        Corruption("gaussian_noise", "Gaussian noise", "noise", "σ of the added noise",
                   (0.08, 0.12, 0.18, 0.26, 0.38), gaussian_noise, "σ = {value:.2g}", noise=True),
        Corruption("shot_noise", "shot noise", "noise", "λ: photons per unit of intensity",
                   (60.0, 25.0, 12.0, 5.0, 3.0), shot_noise, "λ = {value:g}", noise=True),
        Corruption("impulse_noise", "impulse noise", "noise",
                   "fraction of pixels set black or white", (0.03, 0.06, 0.09, 0.17, 0.27),
                   impulse_noise, "{percent:g}% of pixels", noise=True),
        Corruption("gaussian_blur", "Gaussian blur", "blur",
                   "σ as a fraction of the shorter side (× 28: pixels of MNIST)",
                   (0.5 / 28, 0.75 / 28, 1.0 / 28, 1.5 / 28, 2.0 / 28), gaussian_blur,
                   "σ = {pixels:.2g} px"),
        Corruption("rotate", "rotation", "geometry", "degrees, either way",
                   (10.0, 20.0, 30.0, 40.0, 50.0), rotate, "±{value:g}°"),
        Corruption("shear", "shear", "geometry", "horizontal shear factor, either way",
                   (0.1, 0.2, 0.3, 0.4, 0.5), shear, "±{value:g}"),
        Corruption("scale", "scale", "geometry", "size after shrinking about the centre",
                   (0.9, 0.8, 0.7, 0.6, 0.5), scale, "× {value:g}"),
        Corruption("translate", "translation", "geometry",
                   "shift as a fraction of each side (× 28: pixels of MNIST), one of 8 directions",
                   (1 / 28, 2 / 28, 3 / 28, 4 / 28, 5 / 28), translate, "{pixels:.2g} px"),
        Corruption("brightness", "brightness", "photometry", "added to every pixel",
                   (0.1, 0.2, 0.3, 0.4, 0.5), brightness, "+ {value:g}"),
        Corruption("contrast", "contrast", "photometry", "factor toward the image's mean",
                   (0.4, 0.3, 0.2, 0.1, 0.05), contrast, "× {value:g}"),
    )
}  # fmt: skip
if tuple(CORRUPTIONS) != CORRUPTION_NAMES:  # the config's names are these, in this order
    raise RuntimeError("reportgen.data.corruptions and the config's corruption names differ")


def image_seeds(
    seed: int, name: CorruptionName, severity: int, indices: Sequence[int]
) -> list[int]:
    """Return each image's seed: ``derive_seed(seed, "corruption:NAME:SEVERITY:INDEX")``."""
    return [derive_seed(seed, f"corruption:{name}:{severity}:{int(i)}") for i in indices]


def draws(
    seed: int, name: CorruptionName, severity: int, indices: Sequence[int], shape: Sequence[int]
) -> Draws:
    """Return the randomness of images ``indices`` (test positions) of ``shape`` ``[C, H, W]``."""
    seeds = tuple(image_seeds(seed, name, severity, indices))
    normal = None
    if CORRUPTIONS[name].noise:
        normal = torch.empty((len(seeds), *shape), dtype=torch.float32)
        for row, image_seed in enumerate(seeds):
            torch.randn(tuple(shape), generator=generator(image_seed), out=normal[row])
    return Draws(seeds, normal)


def corrupt(
    images: torch.Tensor,
    name: CorruptionName,
    severity: int,
    *,
    seed: int,
    indices: Sequence[int],
) -> torch.Tensor:
    """Return ``images`` under corruption ``name`` at ``severity`` (0: the images themselves).

    Parameters
    ----------
    images : Tensor of float32, shape (B, C, H, W)
        Values in [0, 1], on the CPU; C is 1 (grey) or 3 (RGB).
    name : str
        A key of :data:`CORRUPTIONS`.
    severity : int
        0 to 5.
    seed : int
        The run's seed.
    indices : sequence of int, length B
        Each image's position in the test split: with ``seed``, the source of its randomness.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r} (allowed: {', '.join(CORRUPTIONS)})")
    if severity not in (0, *SEVERITIES):
        raise ValueError(f"severity must be 0 to {SEVERITIES[-1]}; got {severity!r}")
    if images.ndim != 4 or images.dtype != torch.float32:
        raise ValueError(f"images must be float32 [B, C, H, W]; got {images.dtype} {images.shape}")
    if len(indices) != images.shape[0]:
        raise ValueError(f"{len(indices)} indices for {images.shape[0]} images")
    if severity == 0:
        return images
    return CORRUPTIONS[name](
        images, severity, draws(seed, name, severity, indices, images.shape[1:])
    )
