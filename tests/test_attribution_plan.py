"""How many steps and images the attributions use as the images grow, and what the report says."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.config.loading import load_config
from reportgen.evaluate import attribution
from reportgen.evaluate.attribution import (
    INTERNAL_BATCH_SIZE,
    MAX_IMAGES,
    MIN_IMAGES,
    MIN_STEPS,
    REFERENCE_PIXELS,
    AttributionPlan,
    pass_rows,
    plan,
)
from reportgen.report.sentences import attribution_scope_sentence


@pytest.mark.parametrize("steps", [4, 7, 50, 1000])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (3, 8, 8), (1, 20, 39)])
def test_up_to_28_by_28_pixels_the_configured_steps_and_every_shown_image_are_kept(
    steps: int, shape: tuple[int, int, int]
) -> None:
    assert plan(steps, shape) == AttributionPlan(steps=steps, images=MAX_IMAGES)
    assert not plan(steps, shape).reduced


@pytest.mark.parametrize(
    ("side", "steps", "expected"),
    [
        (29, 50, (50, 11)),  # 841 pixels: one image fewer
        (32, 50, (50, 9)),
        (64, 50, (38, 3)),  # images down to one row first, then the steps
        (128, 50, (9, 3)),
        (224, 50, (9, 1)),  # the steps at their floor: then the images, to one
        (1024, 50, (8, 1)),  # both at their floor: over the allowance, never below it
        (128, 200, (38, 3)),
        (128, 4, (4, 1)),  # fewer steps configured than the floor: those
    ],
)
def test_larger_images_get_fewer_images_then_fewer_steps(
    side: int, steps: int, expected: tuple[int, int]
) -> None:
    assert plan(steps, (3, side, side)) == AttributionPlan(*expected)


@pytest.mark.parametrize("steps", [4, 8, 50, 1000])
def test_a_figure_costs_at_most_what_a_28_pixel_one_does_unless_both_are_at_their_floor(
    steps: int,
) -> None:
    allowance = MAX_IMAGES * steps * REFERENCE_PIXELS
    previous = MAX_IMAGES * steps
    for side in range(28, 400, 3):
        pixels = side * side
        chosen = plan(steps, (1, side, side))
        floors = chosen.steps == min(steps, MIN_STEPS) and chosen.images == 1
        assert chosen.images * chosen.steps * pixels <= allowance or floors, side
        assert 1 <= chosen.images <= MAX_IMAGES and min(steps, MIN_STEPS) <= chosen.steps <= steps
        # The images go below one row only when one row would not fit at the floor of steps.
        row_at_floor = MIN_IMAGES * min(steps, MIN_STEPS) * pixels
        assert chosen.images >= MIN_IMAGES or row_at_floor > allowance, side
        assert chosen.images * chosen.steps <= previous, side  # never more work per pixel
        previous = chosen.images * chosen.steps


def test_a_pass_holds_500_path_points_or_half_of_a_budget_cut_evaluation_batch() -> None:
    assert pass_rows(None) == INTERNAL_BATCH_SIZE == 500
    assert pass_rows(10_000) == 500
    assert pass_rows(523) == 261
    assert pass_rows(1) == 1


def test_only_the_first_images_of_each_grid_and_gallery_are_attributed() -> None:
    y_true = np.array([0, 1, 0, 1, 0, 1, 2, 2, 2, 2])
    y_pred = np.array([1, 0, 1, 0, 1, 1, 0, 0, 0, 0])  # 0→1 ×3, 1→0 ×2, 2→0 ×4
    report = load_config(None, ["report.n_misclassified=10", "report.auto_pairs=1"]).report
    every = attribution.shown_indices(y_true, y_pred, report, num_classes=3, pairs=[(0, 1)])
    assert every.tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    cut = attribution.shown_indices(y_true, y_pred, report, num_classes=3, pairs=[(0, 1)],
                                    limit=2)  # fmt: skip
    assert cut.tolist() == [0, 1, 2, 6, 7]  # the grid's first two, 0→1's first two, 2→0's
    assert attribution.attributed([5, 3, 9], 2) == [5, 3]


def test_the_report_says_what_the_image_size_cut_and_nothing_at_28_pixels() -> None:
    assert attribution_scope_sentence(
        plan(50, (1, 28, 28)), configured_steps=50, image_shape=(1, 28, 28)
    ) is None  # fmt: skip
    assert attribution_scope_sentence(
        plan(50, (3, 128, 128)), configured_steps=50, image_shape=(3, 128, 128)
    ) == (
        "At 128 × 128 pixels the maps are made for the first 3 images of each grid and "
        "gallery rather than 12 and 9 steps rather than the 50 of report.attribution_steps, "
        "so that they cost about what they do for 28 × 28 images."
    )
    assert attribution_scope_sentence(
        plan(50, (3, 32, 32)), configured_steps=50, image_shape=(3, 32, 32)
    ) == (
        "At 32 × 32 pixels the maps are made for the first 9 images of each grid and gallery "
        "rather than 12, so that they cost about what they do for 28 × 28 images."
    )
