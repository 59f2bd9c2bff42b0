"""The corruptions: each against a hand-computed expectation on a small image, and determinism."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
import torch

from reportgen.config.robustness import CORRUPTION_NAMES
from reportgen.core.seeding import derive_seed, generator
from reportgen.data import corruptions
from reportgen.data.corruptions import CORRUPTIONS, corrupt
from reportgen.data.tensors import normalize, standardize

SEED = 11


def image(*values: float, shape: tuple[int, ...] = (1, 1, 2, 2)) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(shape)


def normal_of(name: str, severity: int, index: int, size: int) -> torch.Tensor:
    """The deviates the module's documentation promises: randn from the image's own seed."""
    seed = derive_seed(SEED, f"corruption:{name}:{severity}:{index}")
    return torch.randn(size, generator=generator(seed))


def test_the_config_names_every_corruption_in_the_table_order() -> None:
    assert tuple(CORRUPTIONS) == CORRUPTION_NAMES
    assert len(CORRUPTIONS) >= 10
    assert {c.family for c in CORRUPTIONS.values()} == {"noise", "blur", "geometry", "photometry"}
    assert all(len(c.levels) == 5 for c in CORRUPTIONS.values())


@pytest.mark.parametrize("name", CORRUPTION_NAMES)
def test_severity_zero_is_the_identity(name: str) -> None:
    x = torch.rand(3, 1, 5, 6, generator=generator(0))
    assert corrupt(x, name, 0, seed=SEED, indices=[0, 1, 2]) is x


def test_gaussian_noise_adds_sigma_times_the_images_own_deviates() -> None:
    x = torch.full((2, 1, 3, 3), 0.5)
    out = corrupt(x, "gaussian_noise", 2, seed=SEED, indices=[4, 9])
    for row, index in enumerate((4, 9)):
        expected = (0.5 + 0.12 * normal_of("gaussian_noise", 2, index, 9)).clamp(0, 1)
        assert torch.equal(out[row].flatten(), expected)


def test_shot_noise_keeps_black_black_and_scales_with_the_square_root() -> None:
    x = image(0.0, 0.25, 1.0, 0.0)
    out = corrupt(x, "shot_noise", 4, seed=SEED, indices=[3])  # λ = 5
    z = normal_of("shot_noise", 4, 3, 4)
    expected = torch.tensor([0.0, 0.25 + math.sqrt(0.25 / 5) * z[1].item(),
                             1.0 + math.sqrt(1 / 5) * z[2].item(), 0.0]).clamp(0, 1)  # fmt: skip
    torch.testing.assert_close(out.flatten(), expected)
    assert out.flatten()[0] == 0 and out.flatten()[3] == 0


def test_impulse_noise_sets_the_pixels_whose_deviates_are_extreme() -> None:
    x = torch.full((1, 1, 40, 40), 0.5)
    out = corrupt(x, "impulse_noise", 5, seed=SEED, indices=[0]).flatten()  # amount 0.27
    z = normal_of("impulse_noise", 5, 0, 1600)
    low, high = NormalDist().inv_cdf(0.135), NormalDist().inv_cdf(0.865)
    assert torch.equal(out == 0, z < low) and torch.equal(out == 1, z > high)
    assert set(out.unique().tolist()) == {0.0, 0.5, 1.0}
    assert abs((out != 0.5).float().mean().item() - 0.27) < 0.04


def test_gaussian_blur_spreads_a_point_by_the_normalised_kernel() -> None:
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 14, 14] = 1.0
    out = corrupt(x, "gaussian_blur", 3, seed=SEED, indices=[0])[0, 0]  # σ = 1 pixel of 28
    # Weights exp(−k²/2) for k = −3…3 over their sum 2.50595: the centre is w₀².
    w0 = 1 / (1 + 2 * (math.exp(-0.5) + math.exp(-2) + math.exp(-4.5)))
    assert out[14, 14].item() == pytest.approx(w0 * w0, rel=1e-5)
    assert out[14, 15].item() == pytest.approx(w0 * w0 * math.exp(-0.5), rel=1e-5)
    assert out.sum().item() == pytest.approx(1.0, rel=1e-5)
    assert out[14, 18].item() == 0.0  # beyond the radius of 3σ


def test_rotation_keeps_the_centre_and_blackens_the_corners() -> None:
    x = torch.ones(1, 1, 8, 8)
    out = corrupt(x, "rotate", 3, seed=SEED, indices=[0])[0, 0]  # 30°
    torch.testing.assert_close(out[3:5, 3:5], torch.ones(2, 2))
    assert out[0, 0] == 0 and out[7, 7] == 0 and out[0, 7] == 0 and out[7, 0] == 0


def test_shear_moves_each_row_by_the_factor_times_its_height() -> None:
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, :, 2] = 1.0  # a vertical line through the centre
    out = corrupt(x, "shear", 5, seed=SEED, indices=[0])[0, 0]  # factor 0.5
    sign = 1 if derive_seed(SEED, "corruption:shear:5:0") & 1 else -1
    torch.testing.assert_close(out[2], x[0, 0, 2])  # the middle row stays
    # Rows two above and below the centre move one pixel, in opposite directions.
    assert out[0].argmax().item() == 2 - sign and out[4].argmax().item() == 2 + sign
    torch.testing.assert_close(out[1, [2, 2 - sign]], torch.tensor([0.5, 0.5]))


def test_scale_shrinks_about_the_centre() -> None:
    out = corrupt(torch.ones(1, 1, 4, 4), "scale", 5, seed=SEED, indices=[0])[0, 0]  # half size
    expected = torch.zeros(4, 4)
    expected[1:3, 1:3] = 1.0
    torch.testing.assert_close(out, expected)


def test_translation_moves_by_whole_pixels_along_an_axis() -> None:
    index = next(i for i in range(64)
                 if (derive_seed(SEED, f"corruption:translate:2:{i}") >> 1) & 1 == 0)  # fmt: skip
    step = corruptions.DIRECTIONS[(derive_seed(SEED, f"corruption:translate:2:{index}") >> 1) & 7]
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10, 12] = 1.0
    out = corrupt(x, "translate", 2, seed=SEED, indices=[index])[0, 0]  # 2 pixels of 28
    row, column = 10 + round(2 * step[1]), 12 + round(2 * step[0])
    assert out[row, column].item() == pytest.approx(1.0, abs=1e-5)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_brightness_adds_and_clips() -> None:
    out = corrupt(image(0.0, 0.5, 0.75, 1.0), "brightness", 3, seed=SEED, indices=[0])
    torch.testing.assert_close(out.flatten(), torch.tensor([0.3, 0.8, 1.0, 1.0]))


def test_contrast_pulls_each_channel_toward_its_mean() -> None:
    rgb = torch.tensor([[0.0, 1.0], [0.2, 0.2], [1.0, 1.0]]).view(1, 3, 1, 2)
    out = corrupt(rgb, "contrast", 1, seed=SEED, indices=[0])  # factor 0.4
    expected = torch.tensor([[0.3, 0.7], [0.2, 0.2], [1.0, 1.0]]).view(1, 3, 1, 2)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("name", CORRUPTION_NAMES)
def test_grey_and_rgb_of_any_size_stay_images(name: str) -> None:
    rgb = torch.rand(3, 3, 9, 13, generator=generator(1))
    grey = rgb[:, :1]
    for x in (grey, rgb):
        out = corrupt(x, name, 5, seed=SEED, indices=[7, 8, 9])
        assert out.shape == x.shape and out.dtype == torch.float32
        assert out.min().item() >= 0 and out.max().item() <= 1
        assert not torch.equal(out, x)
    if not CORRUPTIONS[name].noise:  # a deterministic one treats each channel as a grey image
        same = corrupt(grey.expand(3, 3, 9, 13).contiguous(), name, 5, seed=SEED, indices=[7, 8, 9])
        assert torch.equal(
            same, corrupt(grey, name, 5, seed=SEED, indices=[7, 8, 9]).expand(3, 3, 9, 13)
        )


@pytest.mark.parametrize("name", CORRUPTION_NAMES)
def test_same_seed_same_pixels_whatever_the_batch_and_threads(name: str) -> None:
    x = torch.rand(23, 3, 6, 7, generator=generator(2))
    indices = list(range(100, 123))
    whole = corrupt(x, name, 4, seed=SEED, indices=indices)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        pieces = [corrupt(x[i : i + 5], name, 4, seed=SEED, indices=indices[i : i + 5])
                  for i in range(0, 23, 5)]  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.cat(pieces), whole)
    # An image's pixels follow its index, not its position in the batch.
    alone = corrupt(x[7:8], name, 4, seed=SEED, indices=[107])
    assert torch.equal(alone, whole[7:8])
    other = corrupt(x, name, 4, seed=SEED + 1, indices=indices)
    assert (
        CORRUPTIONS[name].noise
        or name in ("rotate", "shear", "translate")
        or torch.equal(other, whole)
    )


def test_noise_differs_between_images_and_severities() -> None:
    x = torch.full((2, 1, 4, 4), 0.5)
    out = corrupt(x, "gaussian_noise", 1, seed=SEED, indices=[0, 1])
    assert not torch.equal(out[0], out[1])
    again = corrupt(x[:1], "gaussian_noise", 2, seed=SEED, indices=[0])
    assert not torch.equal((again - 0.5) / 0.12, (out[:1] - 0.5) / 0.08)


def test_bad_arguments_are_refused() -> None:
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        corrupt(x, "fog", 1, seed=0, indices=[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="severity must be 0 to 5"):
        corrupt(x, "rotate", 6, seed=0, indices=[0])
    with pytest.raises(ValueError, match="float32"):
        corrupt(x.to(torch.uint8), "rotate", 1, seed=0, indices=[0])
    with pytest.raises(ValueError, match="2 indices for 1 images"):
        corrupt(x, "rotate", 1, seed=0, indices=[0, 1])


def test_standardize_is_the_normalisation_of_the_clean_inputs() -> None:
    pixels = torch.randint(0, 256, (4, 3, 5, 5), generator=generator(3), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    assert torch.equal(standardize(pixels.float() / 255.0, mean, std), normalize(pixels, mean, std))


def test_the_docs_table_lists_every_corruption_at_every_severity() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "evaluation.md").read_text()
    for c in CORRUPTIONS.values():
        settings = " | ".join(c.setting(severity, 28) for severity in range(1, 6))
        assert f"| `{c.name}` | {c.family} | {c.parameter} | {settings} |" in page
