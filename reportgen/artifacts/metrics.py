"""``metrics.json``, the contract between a run and every page made from it.

The pipeline builds a :class:`Metrics` (through :mod:`reportgen.evaluate.assemble`)
and writes it; the report, ``compare``, ``email``, the CI gate, the summary
and the sweep read it back with :func:`read_metrics`, which validates the whole document
against these types before anything uses it.  Each field's description is
the documentation: docs/metrics-schema.md's table is checked against it.

Types are strict: an integer field takes no ``true``, a number no string, no
field may be NaN or infinite, and unknown keys are refused, so an older or
edited file fails with one line naming the first wrong field.  Schema 2
has one negative log-likelihood, ``test_loss`` (schema 1 had a second, from
rounded probabilities).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from reportgen.artifacts.class_balance import ClassBalance
from reportgen.artifacts.contract import Contract, Count, Fraction, Label
from reportgen.artifacts.duplicates import Duplicates
from reportgen.artifacts.label_issues import LabelIssues
from reportgen.artifacts.layout import RUN_FILES, check_relpath
from reportgen.artifacts.manifest import Manifest, read_artifact, validation_problem
from reportgen.artifacts.robustness import Robustness
from reportgen.artifacts.significance import ComparisonRow, Significance
from reportgen.artifacts.source import ModelSource
from reportgen.config.schema import DatasetName
from reportgen.core.errors import RunDirError
from reportgen.core.fileio import write_json

DATASET_NAME = "MNIST (torchvision.datasets.MNIST, official IDX files)"

SCHEMA: Literal[2] = 2  # metrics.json's schema version: a document of another is refused

DiagnosisLabel = Literal["overfitting", "underfitting", "good fit", "learning rate too high"]
PairSource = Literal["config", "auto"]
FingerprintMethod = Literal["idx-sha256", "folder-sha256"]


# --------------------------------------------------------------------------- the run


class RunInfo(Contract):
    name: str = Field(description="`run.name` of the configuration")
    seed: Count = Field(description="`seed` of the configuration")


class DataFingerprint(Contract):
    method: FingerprintMethod = Field(
        description='"idx-sha256": the SHA-256 of each uncompressed IDX file (MNIST, '
        'Fashion-MNIST); "folder-sha256": one SHA-256 over the sorted relative paths and '
        "contents of every image of a folder"
    )
    sha256: dict[str, str] = Field(
        description='file name → SHA-256 (idx-sha256), or `{"folder": SHA-256}`'
    )


class DatasetInfo(Contract):
    name: str = Field(description=f'what the data is, e.g. "{DATASET_NAME}"')
    kind: DatasetName = Field(description="`data.dataset` of the configuration")
    classes: list[str] = Field(
        min_length=2, description="class names, index order: class i is `classes[i]`"
    )
    image_shape: tuple[Count, Count, Count] = Field(
        description="[channels, height, width] of an image as the models see it"
    )
    mean: list[float] = Field(description="per-channel mean used to normalise (pixel/255 scale)")
    std: list[Annotated[float, Field(gt=0)]] = Field(
        description="per-channel standard deviation used to normalise"
    )
    fingerprint: DataFingerprint = Field(description="what identifies the data; `verify` checks it")
    train_size: Count = Field(description="training images (after `data.limit_train`)")
    val_size: Count = Field(description="validation images held out from the training set")
    test_size: Count = Field(description="test images (after `data.limit_test`)")
    test_support: list[Count] = Field(description="test images per class, class 0 first")

    @model_validator(mode="after")
    def _per_class(self) -> DatasetInfo:
        if len(self.test_support) != len(self.classes):
            raise ValueError(
                f"test_support has {len(self.test_support)} entries for {len(self.classes)} classes"
            )
        if not len(self.mean) == len(self.std) == self.image_shape[0]:
            raise ValueError("mean and std need one entry per channel")
        return self


# --------------------------------------------------------------------------- one model


class Bounds(Contract):
    low: Fraction = Field(description="lower bound")
    high: Fraction = Field(description="upper bound")


class ClassScores(Contract):
    label: Label = Field(description="the class")
    precision: Fraction = Field(description="of the predictions of this class, the share right")
    recall: Fraction = Field(description="of the test images of this class, the share found")
    f1: Fraction = Field(description="harmonic mean of precision and recall")
    support: Count = Field(description="test images of this class")
    precision_ci: Bounds = Field(
        description="percentile-bootstrap interval of precision at `accuracy_ci.level`, from "
        "the same resamples as `accuracy_ci`"
    )
    recall_ci: Bounds = Field(description="interval of recall, from the same resamples")
    f1_ci: Bounds = Field(description="interval of F1, from the same resamples")


class AverageScores(Contract):
    precision: Fraction = Field(description="average precision")
    recall: Fraction = Field(description="average recall")
    f1: Fraction = Field(description="average F1")
    support: Count = Field(description="test images")


class ClassificationReport(Contract):
    classes: list[ClassScores] = Field(description="one row per class, class 0 first")
    accuracy: Fraction = Field(description="share of test images classified correctly")
    macro_avg: AverageScores = Field(description="unweighted mean over the classes")
    weighted_avg: AverageScores = Field(description="mean over the classes weighted by support")
    micro_avg: AverageScores = Field(
        description="over all test images at once (equals accuracy for one label per image)"
    )


class ClassError(Contract):
    label: Label = Field(description="the true class")
    support: Count = Field(description="test images of this class")
    errors: Count = Field(description="of them, misclassified")
    error_rate: Fraction = Field(description="errors / support = 1 − recall (0 without support)")
    top_wrong_prediction: Label | None = Field(
        description="the most frequent wrong prediction (lowest class on ties), null without errors"
    )
    top_wrong_count: Count = Field(description="how often it was predicted")


class ConfusedPair(Contract):
    true: Label = Field(description="the true class")
    pred: Label = Field(description="the class predicted instead")
    count: Count = Field(description="test images of `true` predicted as `pred`")


class Divergence(Contract):
    epoch: Count | None = Field(
        description="epoch in which the training loss stopped being finite, null when it stayed "
        "finite (the logits did not)"
    )
    step: Count | None = Field(
        description="step of that epoch at which it was noticed, null likewise"
    )
    last_finite_loss: float | None = Field(
        description="mean training loss of the last complete epoch, null in the first and "
        "when the training loss stayed finite"
    )
    finite_logits: bool = Field(
        default=True,
        description="false when the trained model's logits (eval mode) on the training, "
        "validation or test split are not all finite: an image without finite logits gets "
        "equal probabilities, so class 0 is its prediction, and `test_loss`, `calibration` "
        "and `one_vs_rest` are null",
    )

    @model_validator(mode="after")
    def _where(self) -> Divergence:
        if (self.epoch is None) != (self.step is None):
            raise ValueError("epoch and step are both set or both null")
        if self.epoch is None and self.finite_logits:
            raise ValueError("a divergence needs an epoch or finite_logits false")
        return self


class AccuracyInterval(Contract):
    level: Fraction = Field(description="coverage, 0.95")
    resamples: Count = Field(description="bootstrap resamples (`report.bootstrap_resamples`)")
    low: Fraction = Field(description="lower bound of test accuracy")
    high: Fraction = Field(description="upper bound of test accuracy")


class TopKAccuracy(Contract):
    k: Count = Field(description="how many of the most probable classes may hold the label")
    value: Fraction = Field(
        description="share of test images whose label is among the model's k most probable "
        "classes (ties in probability go to the lower class index, as the prediction's do)"
    )
    low: Fraction = Field(description="lower bound, from the resamples of `accuracy_ci`")
    high: Fraction = Field(description="upper bound, from the resamples of `accuracy_ci`")


class CurveDiagnosis(Contract):
    labels: list[DiagnosisLabel] = Field(
        description="what the curves show (none: no clear pattern)"
    )
    summary: str = Field(description="the diagnosis in plain sentences, with the advice it implies")
    evidence: list[str] = Field(description="one sentence per finding, naming the epochs")


class PairGallery(Contract):
    true: Label = Field(description="the true class")
    pred: Label = Field(description="the class predicted instead")
    count: Count = Field(description="every test image of `true` predicted as `pred`")
    indices: list[Count] = Field(
        description="test positions of the first `report.n_pair_examples` of them, lowest first"
    )
    source: PairSource = Field(
        description='"config": in `report.confused_pairs`; "auto": among the most confused pairs'
    )
    figure: str = Field(description="name of the gallery's figure")


class ReliabilityBin(Contract):
    low: Fraction | None = Field(
        description="equal-width: the bin's lower edge (exclusive); equal-mass: its lowest "
        "confidence, null when empty"
    )
    high: Fraction | None = Field(
        description="equal-width: the bin's upper edge (inclusive); equal-mass: its highest "
        "confidence, null when empty"
    )
    count: Count = Field(description="test images whose top-class confidence falls in the bin")
    confidence: Fraction | None = Field(description="their mean confidence, null when empty")
    accuracy: Fraction | None = Field(
        description="the share of them classified correctly, null when empty"
    )


class Calibration(Contract):
    bins: Count = Field(description="confidence bins of the calibration errors, 15")
    ece: Fraction = Field(
        description="expected calibration error on the test set: Σ (bin count / images) · "
        "|accuracy − confidence| over equal-width bins of top-class confidence (Guo et al. 2017), "
        "from the float32 probabilities `predictions.csv` holds"
    )
    mce: Fraction = Field(description="maximum calibration error: the largest bin gap")
    adaptive_ece: Fraction = Field(
        description="the ECE over equal-mass bins (each holds the same number of test images)"
    )
    brier: float = Field(
        ge=0, le=2, description="multiclass Brier score: mean of Σ_k (p_k − [y = k])², in [0, 2]"
    )
    mean_confidence: Fraction = Field(description="mean top-class probability on the test set")
    temperature: float | None = Field(
        gt=0,
        description="T minimising the validation split's NLL of softmax(logits / T): above 1 "
        "the model is over-confident, below 1 under-confident; null, like every scaled value, "
        "for a model evaluated from a predictions file (no validation logits)",
    )
    ece_scaled: Fraction | None = Field(description="test ECE after dividing the logits by T")
    adaptive_ece_scaled: Fraction | None = Field(description="test equal-mass ECE after scaling")
    nll_scaled: float | None = Field(
        ge=0, description="test negative log-likelihood after scaling (before: `test_loss`)"
    )
    reliability: list[ReliabilityBin] = Field(
        description="the equal-width bins of `ece`, lowest confidence first"
    )
    equal_mass: list[ReliabilityBin] = Field(
        description="the equal-mass bins of `adaptive_ece`, lowest confidence first"
    )
    equal_mass_scaled: list[ReliabilityBin] | None = Field(
        description="the equal-mass bins after temperature scaling"
    )
    verdict: str = Field(
        description="one plain sentence: over- or under-confident, and what scaling changes"
    )


class ClassRanking(Contract):
    label: Label = Field(description="the class, against all others")
    positives: Count = Field(description="test images of this class")
    auc: Fraction | None = Field(
        description="area under the one-vs-rest ROC curve, null without positives or negatives"
    )
    average_precision: Fraction | None = Field(
        description="average precision (area under the precision–recall curve), null likewise"
    )


class OneVsRest(Contract):
    classes: list[ClassRanking] = Field(description="one row per class, class 0 first")
    macro_auc: Fraction | None = Field(description="mean AUC over the classes that have one")
    micro_auc: Fraction = Field(description="AUC of every (image, class) pair pooled")
    macro_average_precision: Fraction | None = Field(
        description="mean average precision over the classes that have one"
    )
    micro_average_precision: Fraction = Field(
        description="average precision of every (image, class) pair pooled"
    )


EvidenceRegion = Literal[
    "top left", "top centre", "top right", "middle left", "centre", "middle right",
    "bottom left", "bottom centre", "bottom right",
]  # fmt: skip


class AttributedImage(Contract):
    index: Count = Field(description="test position")
    true: Label = Field(description="the true class")
    pred: Label = Field(description="the class predicted")
    region: EvidenceRegion | None = Field(
        description="the cell of a 3 × 3 grid over the image holding most of the evidence for "
        "`pred` over `true` (the positive part of the two maps' difference), null if none"
    )
    region_share: Fraction = Field(description="the share of that evidence in `region`")


class AttributionGallery(Contract):
    source: Literal["misclassified", "pair"] = Field(
        description='"misclassified": the misclassified grid; "pair": a confused-pair gallery'
    )
    true: Label | None = Field(description="the pair's true class, null for the grid")
    pred: Label | None = Field(description="the pair's predicted class, null for the grid")
    figure: str = Field(description="name of the attribution figure")
    images: list[AttributedImage] = Field(description="the images of the grid or gallery")


class Attributions(Contract):
    method: Literal["integrated-gradients"] = Field(
        description="Captum's IntegratedGradients on the logits"
    )
    baseline: Literal["black"] = Field(
        description="the path's start: the all-black image, normalised as the model sees it"
    )
    steps: Count = Field(description="Gauss–Legendre steps of the path integral")
    galleries: list[AttributionGallery] = Field(
        description="the misclassified grid, then every confused-pair gallery, in their order"
    )


class ModelMetrics(Contract):
    source: ModelSource = Field(
        default_factory=ModelSource,
        description="how the model came: trained by the run, or from a checkpoint or a "
        "predictions file (its name and SHA-256)",
    )
    parameters: Count | None = Field(
        description="trainable parameters; null for a model evaluated from predictions"
    )
    epochs: Count = Field(description="epochs completed")
    train_accuracy: Fraction | None = Field(
        description="final model in eval mode, on the training split; null for a model "
        "evaluated from predictions"
    )
    val_accuracy: Fraction | None = Field(
        description="validation accuracy after the last epoch (eval mode; a checkpoint's, "
        "of its one evaluation), null if none completed or from predictions"
    )
    test_accuracy: Fraction = Field(description="share of test images classified correctly")
    train_test_gap: float | None = Field(
        ge=-1,
        le=1,
        description='train_accuracy − test_accuracy: "overfitting" when large; null without '
        "`train_accuracy`",
    )
    test_loss: float | None = Field(
        ge=0,
        description="mean negative log-likelihood (cross-entropy) of the test labels, from the "
        "logits in float64: the one NLL of the report (a predictions file of probabilities: "
        "−mean log p(label) of its probabilities, each at least 1e-12); null when the logits "
        "are not finite "
        "(`divergence.finite_logits`)",
    )
    classification_report: ClassificationReport = Field(
        description="precision, recall, F1 and support per class and on average"
    )
    confusion_matrix: list[list[Count]] = Field(
        description="test image counts: rows are true classes, columns predictions"
    )
    class_errors: list[ClassError] = Field(description="one row per class, class 0 first")
    worst_classes: list[Label] = Field(
        description="up to three classes with errors, highest error rate first"
    )
    confused_pairs: list[ConfusedPair] = Field(
        description="the `report.auto_pairs` largest off-diagonal cells, largest first (at "
        "least 10 with more than 25 classes; ties: lowest true, then predicted class)"
    )
    divergence: Divergence | None = Field(
        description="null, or how the model diverged: where training stopped on a non-finite "
        "loss, and whether its logits are finite"
    )
    accuracy_ci: AccuracyInterval = Field(
        description="percentile bootstrap interval of test accuracy over the test images "
        '(seed derived from `seed` and "bootstrap": every model sees the same resamples)'
    )
    top_k_accuracy: TopKAccuracy | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="top-k accuracy with its interval at `accuracy_ci.level`; absent unless "
        "`report.top_k` is set or the data have at least 20 classes (then k = 5)",
    )
    diagnosis: CurveDiagnosis = Field(description="reading of the training curves")
    sample_index: Count = Field(description="test image whose activations are drawn")
    misclassified: list[Count] = Field(
        description="test positions in the misclassified grid, lowest first"
    )
    pair_galleries: list[PairGallery] = Field(
        description="every configured pair, then the `report.auto_pairs` most confused pairs "
        "not configured already"
    )
    figure_layers: dict[str, str] = Field(
        default_factory=dict,
        description="figure kind → the module (a `named_modules()` name) the weights or "
        "activations figure shows, when it is drawn from a module of the network: a "
        '`kind = "python"` model, or `report.layer`',
    )
    figure_notes: dict[str, str] = Field(
        default_factory=dict,
        description="figure kind → the sentence the report shows instead, when that figure "
        "cannot apply to the network (its figure is that sentence)",
    )
    figures: dict[str, str] = Field(
        description="figure kind → figure name, for weights, activations, misclassified, "
        "curves, confusion, class_errors, reliability, roc and pr, and confused_classes "
        "with more than 25 classes"
    )
    calibration: Calibration | None = Field(
        description="how far the test probabilities can be trusted, before and after "
        "temperature scaling; null when the logits are not finite"
    )
    one_vs_rest: OneVsRest | None = Field(
        description="one-vs-rest ROC and precision–recall areas per class and averaged; null "
        "when the logits are not finite"
    )
    attributions: Attributions | None = Field(
        description="Integrated Gradients maps of the misclassified images shown, null when "
        "`report.attributions` is off or the logits are not finite"
    )

    @property
    def finite_logits(self) -> bool:
        """Return whether the model's logits were finite, so its probabilities were measured."""
        return self.divergence is None or self.divergence.finite_logits

    @model_validator(mode="after")
    def _worst_are_classes(self) -> ModelMetrics:
        labels = {row.label for row in self.class_errors}
        unknown = [str(label) for label in self.worst_classes if label not in labels]
        if unknown:
            raise ValueError(f"worst_classes: no class_errors row for {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _measured_when_finite(self) -> ModelMetrics:
        measured = {"test_loss": self.test_loss, "calibration": self.calibration,
                    "one_vs_rest": self.one_vs_rest}  # fmt: skip
        if self.finite_logits:
            missing = [key for key, value in measured.items() if value is None]
            if missing:
                raise ValueError(f"{missing[0]}: null although the logits are finite")
        else:
            present = [key for key, value in measured.items() if value is not None]
            if present or self.attributions is not None:
                key = present[0] if present else "attributions"
                raise ValueError(f"{key}: measured although the logits are not finite")
        return self


class Metrics(Contract):
    """The whole ``metrics.json`` document."""

    schema_version: Literal[2] = Field(
        alias="schema", description="version of this schema; a file with another is refused"
    )
    run: RunInfo = Field(description="which run")
    dataset: DatasetInfo = Field(description="the data the models were trained and tested on")
    models: dict[str, ModelMetrics] = Field(
        min_length=1, description="model name → its metrics, in training order"
    )
    comparison: list[ComparisonRow] = Field(description="one row per model, in training order")
    significance: Significance | None = Field(
        description="paired comparison of the other model against the reference (null with one "
        "model)"
    )
    figures: dict[str, str] = Field(
        description="figure name → `figures/<figure name>.png`, for every figure of the run's "
        "report (a run with `report.render = false` draws none of them)"
    )
    label_issues: LabelIssues | None = Field(
        default=None,
        description="suspected label errors of the test split, found by confident learning on "
        "every model's test probabilities (all of them in label_issues.csv); null when "
        "`report.label_issues` is off",
    )
    # Left out of the file when null, so a run without it writes the bytes it always did.
    robustness: Robustness | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="accuracy under corruptions of the test images (absent when "
        "`report.robustness.enabled` is false)",
    )
    duplicates: Duplicates | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="test images with an exact or near duplicate in the training or validation "
        "split, and each model's accuracy without them; absent when `report.duplicates` is off",
    )
    class_balance: ClassBalance | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="images per class in each split, and the classes under-represented there",
    )

    @field_validator("figures")
    @classmethod
    def _inside_the_run(cls, value: dict[str, str]) -> dict[str, str]:
        for path in value.values():
            check_relpath(path)
        return value

    @model_validator(mode="after")
    def _models_in_training_order(self) -> Metrics:
        """Put ``models`` in the order of the ``comparison`` rows, the training order.

        ``metrics.json`` sorts its keys, so a file read back lists its models
        alphabetically; the rows, a list, keep the order the config gave.
        """
        order = [row.model for row in self.comparison]
        if sorted(order) == sorted(self.models) and order != list(self.models):
            in_order = {name: self.models[name] for name in order}
            self.models.clear()
            self.models.update(in_order)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Metrics:
        for name, model in self.models.items():
            for where, figure in _named_figures(name, model):
                if figure not in self.figures:
                    raise ValueError(f"{where}: figure {figure!r} is not listed under figures")
        if self.significance is not None:
            unknown = [m for m in self.significance.models if m not in self.models]
            if unknown:
                raise ValueError(f"significance.models: no model {', '.join(map(repr, unknown))}")
        self._one_row_per_class()
        for where, figure in self._data_figures():
            if figure not in self.figures:
                raise ValueError(f"{where}: figure {figure!r} is not listed under figures")
        if self.robustness is not None:
            for figure in self.robustness.figures:
                if figure not in self.figures:
                    raise ValueError(f"robustness: figure {figure!r} is not listed under figures")
        return self

    @model_validator(mode="after")
    def _label_issues_consistent(self) -> Metrics:
        found = self.label_issues
        if found is None:
            return self
        if found.figure is not None and found.figure not in self.figures:
            raise ValueError(f"label_issues.figure: {found.figure!r} is not listed under figures")
        for name, check in found.models.items():
            if name not in self.models:
                raise ValueError(f"label_issues.models: no model {name!r}")
            if len(check.thresholds) != len(self.dataset.classes):
                raise ValueError(f"label_issues.models.{name}.thresholds: need one per class")
        if any(index >= self.dataset.test_size for index in found.first):
            raise ValueError("label_issues.first: a position beyond the test split")
        return self

    def _data_figures(self) -> Iterator[tuple[str, str]]:
        if self.duplicates is not None and self.duplicates.figure is not None:
            yield "duplicates.figure", self.duplicates.figure
        if self.class_balance is not None:
            if len(self.class_balance.train) != len(self.dataset.classes):
                raise ValueError("class_balance: need one count per class")
            yield "class_balance.figure", self.class_balance.figure

    def _one_row_per_class(self) -> None:
        classes = len(self.dataset.classes)
        tables = {f"models.{name}.one_vs_rest.classes": [row.label for row in m.one_vs_rest.classes]
                  for name, m in self.models.items() if m.one_vs_rest is not None}  # fmt: skip
        if self.significance is not None:
            rows = self.significance.class_recall.classes
            tables["significance.class_recall.classes"] = [row.label for row in rows]
        for where, labels in tables.items():
            if labels != list(range(classes)):
                raise ValueError(f"{where}: need one row per class, 0 to {classes - 1}, in order")

    def dump(self) -> dict[str, Any]:
        """Return the document as JSON data."""
        return self.model_dump(mode="json", by_alias=True)

    def write(self, path: Path) -> None:
        """Write ``metrics.json`` atomically, keys sorted: equal metrics are equal bytes."""
        write_json(path, self.dump())


def _named_figures(name: str, model: ModelMetrics) -> Iterator[tuple[str, str]]:
    for kind, figure in model.figures.items():
        yield f"models.{name}.figures.{kind}", figure
    for position, gallery in enumerate(model.pair_galleries):
        yield f"models.{name}.pair_galleries[{position}].figure", gallery.figure
    if model.attributions is not None:
        for position, shown in enumerate(model.attributions.galleries):
            yield f"models.{name}.attributions.galleries[{position}].figure", shown.figure


# --------------------------------------------------------------------------- reading


def parse_metrics(data: bytes | str, *, source: str = "metrics.json") -> Metrics:
    """Return ``metrics.json`` text as :class:`Metrics`; anything else is one line naming a field.

    Raises
    ------
    RunDirError
        Not JSON, or not a document of this schema: ``metrics.json:
        models.baseline.test_accuracy: Input should be a valid number``.
    """
    try:
        return Metrics.model_validate_json(data)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        if first["loc"] == ("schema",) and first["type"] == "literal_error":
            raise RunDirError(
                f"{source}: schema {first['input']!r} is not schema {SCHEMA}, which this "
                "version of reportgen reads: run it again to get a report"
            ) from e
        raise RunDirError(f"{source}: {validation_problem(e)}") from e


def read_metrics(root: Path, manifest: Manifest) -> Metrics:
    """Return a run's validated ``metrics.json``, refusing one unlisted, changed or malformed."""
    rel = RUN_FILES.metrics.as_posix()
    return parse_metrics(read_artifact(root, rel, manifest), source=str(root / rel))
