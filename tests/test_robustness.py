"""Robustness to corruptions: the statistics, the contract, the config, and one shared run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from reportgen.artifacts.manifest import read_manifest
from reportgen.artifacts.metrics import read_metrics
from reportgen.artifacts.robustness import Robustness
from reportgen.config.loading import load_config
from reportgen.config.robustness import RobustnessSection, auto_images
from reportgen.core.errors import ConfigError
from reportgen.evaluate import corrupted, statistics
from reportgen.evaluate.robustness import Measured, bootstrap_matrix, robustness
from reportgen.run.robustness import no_network_sentence

SETTINGS = RobustnessSection(corruptions=("gaussian_noise", "rotate"), severities=(1, 3, 5))


def measured(*, second_better: bool = True) -> Measured:
    """Two models on 40 images, 36 right when clean: under noise one loses 6 images a severity,
    the other 2 (the second, when it is the better); under rotation both lose 1 a severity."""
    labels = np.arange(40) % 10
    wrong = (labels + 1) % 10

    def predictions(errors: int) -> np.ndarray:
        out = labels.copy()
        out[:errors] = wrong[:errors]
        return out

    first = {(None, 0): predictions(4)}
    second = {(None, 0): predictions(4)}
    worse, better = (6, 2) if second_better else (2, 6)
    for severity in (1, 3, 5):
        first[("gaussian_noise", severity)] = predictions(4 + worse * severity)
        second[("gaussian_noise", severity)] = predictions(4 + better * severity)
        first[("rotate", severity)] = predictions(4 + severity)
        second[("rotate", severity)] = predictions(4 + severity)
    return Measured(np.arange(40), labels, {"baseline": first, "regularized": second})


def build(found: Measured, **changes: object) -> Robustness:
    options: dict[str, object] = dict(settings=SETTINGS, test_images=100, example=0, skipped={},
                                      resamples=200, seed=5)  # fmt: skip
    options.update(changes)
    return robustness(found, **options)  # type: ignore[arg-type]


def test_bootstrap_matrix_counts_the_runs_own_resamples_exactly() -> None:
    rng = np.random.default_rng(0)
    correct = rng.random((3, 57)) < 0.7
    expected = statistics.bootstrap_accuracies(correct, resamples=300, seed=9)
    assert np.array_equal(bootstrap_matrix(correct, resamples=300, seed=9), expected)


def test_corruption_errors_are_normalised_by_the_first_model() -> None:
    found = build(measured())
    first, second = found.models["baseline"], found.models["regularized"]
    noise = 0  # the rows follow report.robustness.corruptions
    # Errors over severities 1, 3, 5: first 10 + 22 + 34 = 66, second 6 + 10 + 14 = 30 (of 40).
    assert first.corruptions[noise].corruption_error == 1.0
    assert second.corruptions[noise].corruption_error == pytest.approx(30 / 66)
    # Relative: minus 3 × 4 clean errors: (30 − 12) / (66 − 12).
    assert second.corruptions[noise].relative_corruption_error == pytest.approx(18 / 54)
    assert second.corruptions[1].corruption_error == pytest.approx(1.0)
    assert second.mce == pytest.approx((30 / 66 + 1) / 2)
    assert first.mce == 1.0 and found.reference == "baseline"
    assert first.clean_accuracy == 0.9
    row = second.corruptions[noise].severities[1]
    assert (row.severity, row.accuracy) == (3, 1 - 10 / 40) and row.low <= 0.75 <= row.high


def test_mcnemar_at_the_middle_severity_is_holm_corrected_and_named_in_the_verdict() -> None:
    found = build(measured())
    noise, rotation = found.tests
    # Severity 3: the first model misses 22, the second 10, nested: c = 12, b = 0.
    assert (noise.severity, noise.b, noise.c) == (3, 0, 12)
    assert noise.p_value == pytest.approx(2 * 0.5**12)
    assert noise.p_adjusted == pytest.approx(min(1.0, 2 * noise.p_value))  # Holm over two
    assert (rotation.b, rotation.c, rotation.p_value) == (0, 0, 1.0)
    assert found.compared == ("baseline", "regularized")
    assert found.verdict.startswith("The regularized model is more robust to these corruptions")
    assert found.verdict.endswith(
        "the regularized model is significantly more accurate under Gaussian noise."
    )


def test_a_less_robust_second_model_is_named_less_accurate() -> None:
    found = build(measured(second_better=False))
    assert found.verdict.startswith("The baseline model is more robust")
    assert "the regularized model is significantly less accurate under Gaussian noise." in (
        found.verdict
    )


def test_a_model_without_network_is_skipped_with_one_sentence() -> None:
    one = measured()
    alone = Measured(one.positions, one.labels, {"baseline": one.predictions["baseline"]})
    found = build(alone, skipped={"regularized": no_network_sentence("regularized")})
    assert list(found.models) == ["baseline"] and found.tests == [] and found.compared is None
    assert found.skipped["regularized"] in found.verdict
    assert "has no network" in found.skipped["regularized"]


def test_the_contract_round_trips_and_refuses_a_missing_severity() -> None:
    found = build(measured())
    text = found.model_dump_json()
    assert Robustness.model_validate_json(text) == found
    data = json.loads(text)
    data["models"]["regularized"]["corruptions"][0]["severities"].pop()
    with pytest.raises(ValidationError, match="need one row per severity"):
        Robustness.model_validate_json(json.dumps(data))


def test_subsample_is_seeded_sorted_and_all_when_asked() -> None:
    picked = corrupted.subsample(1000, 50, seed=3)
    assert len(picked) == 50 and np.all(np.diff(picked) > 0)
    assert np.array_equal(picked, corrupted.subsample(1000, 50, seed=3))
    assert not np.array_equal(picked, corrupted.subsample(1000, 50, seed=4))
    assert np.array_equal(corrupted.subsample(30, 0, seed=3), np.arange(30))
    assert np.array_equal(corrupted.subsample(30, 50, seed=3), np.arange(30))


def test_severity_zero_gives_the_clean_predictions_bit_for_bit() -> None:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 5 * 5, 4))
    pixels = torch.randint(0, 256, (9, 3, 5, 5), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)
    from reportgen.data.tensors import normalize

    with torch.inference_mode():
        clean = network(normalize(pixels, mean, std)).argmax(dim=1).numpy()
    found = corrupted.corrupted_predictions(
        {"one": network, "two": network}, pixels, np.arange(9),
        conditions=[(None, 0), ("contrast", 5)], seed=0, mean=mean, std=std,
        batch_sizes={"one": 4, "two": 9}, device=torch.device("cpu"),
    )  # fmt: skip
    for name in ("one", "two"):
        assert np.array_equal(found[name][(None, 0)], clean)
        assert found[name][("contrast", 5)].shape == (9,)
    assert np.array_equal(found["one"][("contrast", 5)], found["two"][("contrast", 5)])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('report.robustness.corruptions=["fog"]',
         r"report\.robustness\.corruptions: unknown corruption 'fog' \(allowed: gaussian_noise, "),
        ("report.robustness.severities=[0, 3]",
         r"report\.robustness\.severities: unknown severity 0 \(allowed: 1, 2, 3, 4, 5\)"),
        ("report.robustness.severities=[]", r"report\.robustness\.severities: must be a non-empty"),
        ('report.robustness.corruptions=["rotate", "rotate"]', r"names a corruption twice"),
        ("report.robustness.images=-1",
         r'report\.robustness\.images: must be "auto" or a whole number of test images, 0 for all '
         r"\(got -1\)"),
        ('report.robustness.images="all"', r'robustness\.images: must be "auto" or a whole'),
        ("report.robustness.images=true", r'robustness\.images: must be "auto" or a whole'),
        ("report.robustness.images=1.5", r'robustness\.images: must be "auto" or a whole'),
        ("report.robustness.enable=false", r"report\.robustness\.enable: unknown key .*enabled"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key_and_the_allowed_values(setting: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [setting])


def test_config_defaults_and_order() -> None:
    section = load_config(None, ["report.robustness.severities=[5, 1]"]).report.robustness
    assert section.enabled and section.severities == (1, 5) and section.middle_severity() == 1
    assert len(section.corruptions) == 10 and section.images == "auto"
    assert section.image_count(28, 28) == 1000
    fixed = load_config(None, ["report.robustness.images=300"]).report.robustness
    assert fixed.image_count(128, 128) == 300  # a number is taken as it is, at any size


@pytest.mark.parametrize(
    ("height", "width", "images"),
    [(8, 8, 1000), (28, 28, 1000), (29, 28, 965), (32, 32, 765), (45, 45, 387), (64, 64, 200),
     (128, 128, 200), (28, 1000, 200)],
)  # fmt: skip
def test_auto_images_cost_what_1000_images_of_28_pixels_cost(
    height: int, width: int, images: int
) -> None:
    # 1000 * 784 // pixels, floored at 200: integer arithmetic, the same everywhere.
    assert auto_images(height, width) == images


# --------------------------------------------------------------------------- the shared run


def test_the_run_measures_every_model_and_severity_zero_is_the_clean_accuracy(
    quick_run: Path,
) -> None:
    metrics = read_metrics(quick_run, read_manifest(quick_run))
    found = metrics.robustness
    assert found is not None
    assert found.images == found.test_images == metrics.dataset.test_size  # 200 < 1,000: all
    assert list(found.models) == list(metrics.models) and found.skipped == {}
    for name, model in found.models.items():
        assert model.clean_accuracy == metrics.models[name].test_accuracy
    assert len(found.tests) == 10 and all(t.severity == 3 for t in found.tests)
    assert found.models["baseline"].mce == 1.0
    for figure in ("robustness", "corruptions"):
        assert (quick_run / metrics.figures[figure]).read_bytes().startswith(b"\x89PNG")
    html = (quick_run / "report.html").read_text()
    assert 'id="robustness"' in html and found.verdict.split(" (")[0] in html
    assert 'href="#robustness"' in html


def test_the_figures_draw_a_panel_per_corruption_and_a_row_of_images() -> None:
    from reportgen.figures.placed import image_panels
    from reportgen.figures.robustness import corruptions_figure, robustness_figure

    found = build(measured())
    curves = {
        model: {row.corruption: [(m.clean_accuracy,) * 3]
                + [(s.accuracy, s.low, s.high) for s in row.severities] for row in m.corruptions}
        for model, m in found.models.items()
    }  # fmt: skip
    fig = robustness_figure(curves, severities=[0, 1, 3, 5],
                            titles={"gaussian_noise": "Gaussian noise"}, images=40)  # fmt: skip
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["Gaussian noise", "rotate"]
    assert all(len(ax.get_lines()) == 2 for ax in panels)
    with pytest.raises(ValueError, match="has 3 points for 4 severities"):
        robustness_figure({"a": {"rotate": [(1.0, 1.0, 1.0)] * 3}}, severities=[0, 1, 3, 5],
                          titles={}, images=1)  # fmt: skip
    grey = np.zeros((11, 6, 5), dtype=np.uint8)
    fig = corruptions_figure(grey, [f"t{i}" for i in range(11)], index=3, severity=3)
    assert [title for title, _ in image_panels(fig)] == [f"t{i}" for i in range(11)]
    with pytest.raises(ValueError, match="2 titles for 11 images"):
        corruptions_figure(grey, ["a", "b"], index=3, severity=3)
