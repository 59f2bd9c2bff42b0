"""``metrics.json``'s part for one model: ``models.<name>``, and every table inside it.

Read and written only as part of :class:`reportgen.artifacts.metrics.Metrics`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reportgen.artifacts.contract import Contract, Count, Fraction, Label
from reportgen.artifacts.source import ModelSource

DiagnosisLabel = Literal["overfitting", "underfitting", "good fit", "learning rate too high"]
PairSource = Literal["config", "auto"]


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
