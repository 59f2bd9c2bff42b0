"""Suspected label errors: confident learning by hand, the ranking across models, the contracts.

The acceptance test relabels 20 test images of a generated image folder and
trains two tiny networks on it in this process (well under a second), then
asks where the relabelled images rank.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen.artifacts.label_issues import FIRST_LISTED, GALLERY_IMAGES, LabelIssues
from reportgen.artifacts.label_table import LabelIssueRow, label_issues_frame, read_label_issues
from reportgen.artifacts.manifest import EnvironmentFacts, RunManifest, artifact_hashes
from reportgen.artifacts.metrics import Metrics, parse_metrics
from reportgen.artifacts.tables import csv_bytes
from reportgen.core import fileio
from reportgen.core.errors import RunDirError
from reportgen.data.imagefolder import load_image_folder
from reportgen.data.sources import SOURCES
from reportgen.data.tensors import Dataset, Split
from reportgen.evaluate import label_issues as cl
from reportgen.evaluate.label_summary import find_label_issues
from reportgen.figures import pool
from reportgen.figures.jobs import label_issues_jobs
from reportgen.figures.label_issues import label_issues_figure
from reportgen.figures.placed import image_panels
from reportgen.report.page import PNG_SIGNATURE
from tests import synthetic
from tests.conftest import make_digits
from tests.imagefolder_fixture import make_image_folder

# --------------------------------------------------------------------------- by hand

# Three classes, six images.  Labels 0, 0, 0, 1, 1, 2.
LABELS = np.array([0, 0, 0, 1, 1, 2])
PROBA = np.array(
    [
        [0.8, 0.1, 0.1],  # 0: sure of its label
        [0.6, 0.3, 0.1],  # 0: fine
        [0.1, 0.7, 0.2],  # 0: class 1 clears t_1 = 0.55 -> flagged, suggested 1
        [0.2, 0.5, 0.3],  # 1: 0.5 < t_1 = 0.55; class 2 clears t_2 = 0.3 -> confident 2
        [0.3, 0.6, 0.1],  # 1: 0.6 >= t_1, and 0.3 < t_0 = 0.5 -> confident 1
        [0.45, 0.25, 0.3],  # 2: 0.3 >= t_2 (exactly, its own mean) but 0.45 < t_0: 2
    ]
)
# t_j: the mean of column j over the rows labelled j.
THRESHOLDS = [(0.8 + 0.6 + 0.1) / 3, (0.5 + 0.6) / 2, 0.3]


def test_thresholds_are_the_mean_probability_of_each_class_over_its_images() -> None:
    assert cl.class_thresholds(PROBA, LABELS) == pytest.approx(THRESHOLDS)
    # A class without test images has no threshold, and is never confidently predicted.
    thresholds = cl.class_thresholds(PROBA[:5], LABELS[:5])
    assert np.isnan(thresholds[2])
    assert cl.confident_classes(np.array([[0.0, 0.0, 1.0]]), thresholds).tolist() == [cl.NO_CLASS]


def test_confident_joint_and_flags_by_hand() -> None:
    check = cl.check_model(PROBA, LABELS)
    assert check.confident.tolist() == [0, 0, 1, 2, 1, 2]
    assert check.joint.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert check.flagged.tolist() == [False, False, True, True, False, False]
    assert check.margin == pytest.approx([0.7, 0.3, -0.6, 0.2, 0.3, -0.15])
    # No class at its threshold: not counted in the joint, not flagged.
    none = cl.check_model(np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]), np.array([0, 0, 1]))
    assert none.confident.tolist() == [cl.NO_CLASS, 0, 1]
    assert none.joint.sum() == 2 and not none.flagged.any()


def test_ties_go_to_the_lower_class_and_then_to_the_lower_test_position() -> None:
    # Both wrong classes clear their thresholds with equal probability: the lower one wins.
    assert cl.confident_classes(np.array([[0.1, 0.45, 0.45]]), np.array([0.5, 0.4, 0.4])) == [1]
    # Two images with equal evidence rank by test position, whatever order they arrive in.
    labels = np.array([0, 0, 1, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    found = cl.suspected_labels({"a": proba}, labels)
    assert found.order.tolist() == [1, 3, 4]  # margins −0.6, −0.6, −0.6: by position
    assert found.suggested.tolist() == [1, 0, 1]


LABELS_2 = np.array([0, 0, 0, 1, 1, 1])
# t = [0.4333, 0.6] for the first model, [0.55, 0.7] for the second.
FIRST = np.array([[0.9, 0.1], [0.0, 1.0], [0.4, 0.6], [0.1, 0.9], [0.2, 0.8], [0.9, 0.1]])
SECOND = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.1, 0.9], [0.2, 0.8], [0.6, 0.4]])


def test_models_are_combined_by_flags_then_mean_margin() -> None:
    found = cl.suspected_labels({"first": FIRST, "second": SECOND}, LABELS_2)
    # Images 5 (mean margin −0.5) and 2 (−0.4) are flagged by both models; image 1 only by
    # the first (the second's 0.55 reaches its t_0 exactly), so it ranks after them although
    # its mean margin, −0.45, is lower than image 2's.
    assert found.order.tolist() == [5, 2, 1]
    assert found.flagged_by.tolist() == [2, 2, 1]
    assert found.mean_margin == pytest.approx([-0.5, -0.4, -0.45])
    assert found.suggested.tolist() == [0, 1, 1]
    assert found.checks["second"].flagged.tolist() == [False, False, True, False, False, True]


def test_suggestion_is_the_flagging_models_class_most_probable_on_average() -> None:
    labels = np.array([0, 1, 2, 0])
    first = np.array([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
    second = np.array([[0.1, 0.3, 0.6], [0.1, 0.8, 0.1], [0.3, 0.1, 0.6], [0.8, 0.1, 0.1]])
    found = cl.suspected_labels({"first": first, "second": second}, labels)
    # Image 0: the first model's confident class is 1, the second's 2 (t_2 = 0.6).
    assert [check.confident[0] for check in found.checks.values()] == [1, 2]
    assert found.order.tolist() == [0] and found.flagged_by.tolist() == [2]
    assert found.suggested.tolist() == [1]  # mean p: class 1 0.55, class 2 0.35


@pytest.mark.parametrize(
    ("proba", "labels", "message"),
    [
        (np.ones((2, 1)), np.array([0, 0]), "classes ≥ 2"),
        (np.full((2, 2), 0.5), np.array([0]), "labels must be"),
        (np.full((2, 2), 0.5), np.array([0, 2]), "labels must lie in 0..1"),
        (np.array([[np.nan, 1.0], [0.5, 0.5]]), np.array([0, 1]), "finite"),
    ],
)
def test_bad_inputs_are_refused(proba: np.ndarray, labels: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cl.check_model(proba, labels)


def test_errors_on_suspected_counts_only_misclassified_images() -> None:
    labels = np.array([0, 1, 1, 0])
    assert cl.errors_on(np.array([1, 3]), labels, np.array([1, 0, 1, 0])) == 1


# --------------------------------------------------------------------------- acceptance

SHAPES = ("circle", "cross", "hbar", "ring", "square", "triangle")  # sorted: class order
RELABELLED = 20


@pytest.fixture(scope="module")
def relabelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A shapes folder with 20 test images moved into a wrong class's folder; their files."""
    root = make_image_folder(tmp_path_factory.mktemp("relabel") / "shapes", classes=SHAPES,
                             per_class_train=40, per_class_test=20, sizes=(16,))  # fmt: skip
    moved = []
    for k in range(RELABELLED):
        true = SHAPES[k % len(SHAPES)]
        wrong = SHAPES[(k % len(SHAPES) + 1 + k // len(SHAPES)) % len(SHAPES)]
        shutil.move(root / "test" / true / f"{k:03d}.png", root / "test" / wrong / f"x{k:03d}.png")
        moved.append(f"test/{wrong}/x{k:03d}.png")
    return root, moved


def _tiny_model_proba(
    x: torch.Tensor, y: torch.Tensor, test: torch.Tensor, seed: int
) -> np.ndarray:
    """Return the test probabilities of a small MLP trained full-batch on ``x``, ``y``."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 64),
                              torch.nn.ReLU(), torch.nn.Linear(64, int(y.max()) + 1))  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(80):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        return torch.softmax(net(test), dim=1).double().numpy()


def test_relabelled_test_images_rank_among_the_first_suspected(
    relabelled: tuple[Path, list[str]],
) -> None:
    root, moved = relabelled
    data = load_image_folder(root, channels=3, image_size=None, budget_bytes=2**28)
    assert data.classes == SHAPES
    scale = lambda images: images.float() / 255 - 0.5  # noqa: E731
    x, test = scale(data.train.images), scale(data.test.images)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: more threads only wait for each other
    try:
        with torch.random.fork_rng(devices=[]):
            probabilities = {f"net{seed}": _tiny_model_proba(x, data.train.labels, test, seed)
                             for seed in (0, 1)}  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    findings = find_label_issues(probabilities, data.test.labels.numpy(), classes=data.classes,
                                 files=data.test.files)  # fmt: skip
    first = [row.file for row in findings.rows[:30]]
    found = [file for file in moved if file in first]
    assert len(found) >= 15, (len(found), first)
    # Each row names its file, its label is the folder's, and the suggestion is the shape drawn.
    for row in findings.rows:
        assert row.file == data.test.files[row.index]
        assert row.file.split("/")[1] == row.label_name
    suggested = {row.file: row.suggested_name for row in findings.rows}
    right = [k for k, file in enumerate(moved) if suggested.get(file) == SHAPES[k % len(SHAPES)]]
    assert len(right) >= 15
    assert findings.metrics.count == len(findings.rows)
    assert findings.metrics.first == [row.index for row in findings.rows[:FIRST_LISTED]]


# --------------------------------------------------------------------------- the contracts


def _findings() -> tuple[LabelIssues, list[LabelIssueRow]]:
    found = find_label_issues({"baseline": FIRST, "regularized": SECOND}, LABELS_2,
                              classes=["zero", "one"])  # fmt: skip
    return found.metrics, found.rows


def test_label_issues_metrics_by_hand() -> None:
    metrics, rows = _findings()
    assert metrics.count == 3 and metrics.flagged_by_all == 2 and metrics.first == [5, 2, 1]
    assert metrics.figure == "label_issues"
    baseline = metrics.models["baseline"]
    assert baseline.thresholds == pytest.approx([(0.9 + 0.0 + 0.4) / 3, (0.9 + 0.8 + 0.1) / 3])
    # baseline misclassifies images 1, 2 and 5, all suspected; regularized 2 and 5.
    assert (baseline.flagged, baseline.errors, baseline.errors_on_suspected) == (3, 3, 3)
    assert metrics.models["regularized"].errors == 2
    assert [(r.rank, r.index, r.label_name, r.suggested_name) for r in rows] == [
        (1, 5, "one", "zero"), (2, 2, "zero", "one"), (3, 1, "zero", "one"),
    ]  # fmt: skip
    assert rows[2].evidence["regularized"].flagged is False
    assert rows[2].evidence["regularized"].margin == pytest.approx(0.1)


def test_label_issues_csv_round_trips_through_its_contract(tmp_path: Path) -> None:
    _, rows = _findings()
    table = label_issues_frame(rows, ["baseline", "regularized"])
    fileio.write_atomic(tmp_path / "label_issues.csv", csv_bytes(table))
    text = (tmp_path / "label_issues.csv").read_text().splitlines()
    assert text[0] == (
        "rank,index,file,label,label_name,suggested,suggested_name,flagged_by,"
        "baseline_p_label,baseline_p_suggested,baseline_margin,baseline_flagged,"
        "regularized_p_label,regularized_p_suggested,regularized_margin,regularized_flagged"
    )
    assert text[1] == "1,5,,1,one,0,zero,2,0.1,0.9,-0.8,True,0.4,0.6,-0.2,True"
    environment = EnvironmentFacts(versions={}, hardware={}, threads=1, parallel_info="",
                                   git_commit=None)  # fmt: skip
    manifest = RunManifest(run_name="r", seed=0, command=[], data_files={}, data_source="cache",
                           environment=environment,
                           artifacts=artifact_hashes(tmp_path))  # fmt: skip
    assert read_label_issues(tmp_path, manifest, ["baseline", "regularized"]) == rows
    with pytest.raises(RunDirError, match=r"lacks column\(s\) other_p_label"):
        read_label_issues(tmp_path, manifest, ["other"])
    (tmp_path / "label_issues.csv").write_text(
        "\n".join([*text[:1], text[1].replace("1,5", "0,5", 1)])
    )
    changed = manifest.model_copy(update={"artifacts": artifact_hashes(tmp_path)})
    with pytest.raises(RunDirError, match="line 2: rank"):
        read_label_issues(tmp_path, changed, ["baseline", "regularized"])


@pytest.fixture(scope="module")
def document() -> Metrics:
    """The synthetic run's metrics.json, with its suspected label errors."""
    return synthetic.metrics()


def test_metrics_round_trip_and_refuse_inconsistent_label_issues(document: Metrics) -> None:
    found = document.label_issues
    assert found is not None and found.count > FIRST_LISTED and found.figure == "label_issues"
    assert parse_metrics(json.dumps(document.dump())) == document
    data = document.dump()
    for edit, message in [
        (lambda d: d["figures"].pop("label_issues"), "is not listed under figures"),
        (lambda d: d["label_issues"]["first"].pop(), "need the first 50"),
        (
            lambda d: d["label_issues"]["first"].__setitem__(1, d["label_issues"]["first"][0]),
            "listed twice",
        ),
        (lambda d: d["label_issues"]["first"].__setitem__(0, 1_000), "beyond the test split"),
        (
            lambda d: d["label_issues"]["models"].update(
                other=d["label_issues"]["models"]["baseline"]
            ),
            "no model 'other'",
        ),
        (lambda d: d["label_issues"]["models"]["baseline"]["thresholds"].pop(), "one per class"),
        (lambda d: d["label_issues"].update(count=0), "first: need the first 0"),
    ]:
        broken = json.loads(json.dumps(data))
        edit(broken)
        with pytest.raises(RunDirError, match=message):
            parse_metrics(json.dumps(broken))
    # Switched off: null, and read back so.
    assert parse_metrics(json.dumps({**data, "label_issues": None})).label_issues is None


# --------------------------------------------------------------------------- the gallery

LONG = "a-very-long-class-name-{}"


def test_gallery_titles_each_image_with_label_suggestion_and_every_models_evidence() -> None:
    images = np.zeros((3, 8, 8), dtype=np.uint8)
    fig = label_issues_figure(
        images, [5, 17, 230], [0, 1, 2], [1, 2, 0], [[0.01, 0.2], [0.0, 0.1], [0.3, 0.4]],
        [[0.98, 0.7], [0.99, 0.8], [0.6, 0.5]], models=["baseline", "regularized"],
        classes=[LONG.format(k) for k in range(3)], total=40,
    )  # fmt: skip
    titles = [title for title, _ in image_panels(fig)]
    assert titles[0].splitlines()[2:] == ["0.01 → 0.98", "0.20 → 0.70"]
    # Names that differ only at the end are cut in the middle, as in the other galleries.
    assert titles[2].splitlines()[:2] == ["#230 a-very…e-2", "→ a-very…e-0"]
    heading = fig.texts[0].get_text().replace("\n", " ")
    assert "(first 3 of 40, strongest evidence first)" in heading
    assert heading.endswith("p(label) → p(suggested) of baseline, then regularized")
    one = label_issues_figure(images[:1], [5], [0], [1], [[0.1]], [[0.9]], models=["m"],
                              classes=["a", "b"], total=1)  # fmt: skip
    assert one.texts[0].get_text().endswith("of the m model")
    with pytest.raises(ValueError, match="one column per model"):
        label_issues_figure(images[:1], [5], [0], [1], [[0.1]], [[0.9]], models=["m", "n"],
                            classes=["a", "b"], total=1)  # fmt: skip
    nothing = np.zeros((0, 1))
    empty = label_issues_figure(np.zeros((0, 8, 8), np.uint8), [], [], [], nothing, nothing,
                                models=["m"], classes=["a", "b"], total=0)  # fmt: skip
    assert "no test label is suspected" in [t.get_text() for t in empty.axes[0].texts]


def test_the_gallery_job_draws_the_first_24_suspected_images(document: Metrics) -> None:
    rows = synthetic.label_findings().rows
    images, labels = make_digits(synthetic.TEST_SIZE, seed=3)
    info = SOURCES["mnist"].info()
    test = Split(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long(),
                 torch.arange(synthetic.TEST_SIZE), info.mean, info.std)  # fmt: skip
    jobs = list(label_issues_jobs(document, rows, Dataset(test, test, test, info)))
    assert [job.name for job in jobs] == ["label_issues"]
    pixels, indices, given, _, p_label, p_suggested = jobs[0].args
    assert indices.tolist() == [row.index for row in rows[:GALLERY_IMAGES]]
    assert np.array_equal(pixels, images[indices])
    assert given.tolist() == [row.label for row in rows[:GALLERY_IMAGES]]
    assert p_label.shape == p_suggested.shape == (GALLERY_IMAGES, 2)
    assert p_label[0, 1] == rows[0].evidence["regularized"].p_label
    assert jobs[0].kwargs["total"] == len(rows) > GALLERY_IMAGES
    assert pool.draw_png(jobs[0]).startswith(PNG_SIGNATURE)
    off = document.model_copy(update={"label_issues": None})
    assert list(label_issues_jobs(off, rows, Dataset(test, test, test, info))) == []
