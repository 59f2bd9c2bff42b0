"""Can the probabilities be trusted?  Calibration of a classifier's top-class confidence.

A model is calibrated when, of the predictions it makes with confidence
0.9, nine in ten are right.  Guo et al. (ICML 2017) measure the gap with
the expected calibration error over 15 equal-width confidence bins and fix
it with one temperature that divides the logits, fitted on held-out data.
Because a 98%-accurate network puts nearly every prediction into the top
bin, where equal-width bins say little (Nixon et al. 2019; Roelofs et al.
2022), the equal-mass variant is computed as well, and every bin keeps its
count.

Every function is pure and works in float64 (the softmax is
:mod:`reportgen.evaluate.probabilities`'); nothing here draws random
numbers, so the same logits always give the same bits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from reportgen.core import text
from reportgen.evaluate import arrays
from reportgen.evaluate.probabilities import log_softmax, softmax

DEFAULT_BINS = 15  # Guo et al. 2017
# The temperature search runs on log T over [1/20, 20]: far wider than any
# temperature a trained network needs, and narrow enough that the fixed
# number of golden-section steps pins T to about 1e-12.
LOG_T_RANGE = (-float(np.log(20.0)), float(np.log(20.0)))
GOLDEN_STEPS = 80
# |log T| below this counts as calibrated: T within 0.95–1.05 changes a
# confident prediction's probability by well under a percentage point.
CALIBRATED_LOG_T = 0.05


@dataclass(frozen=True)
class Bins:
    """Predictions grouped by confidence: per bin its edges, count, mean confidence and accuracy.

    ``confidence`` and ``accuracy`` are NaN for an empty bin.
    """

    low: np.ndarray  # [B] float64
    high: np.ndarray  # [B] float64
    count: np.ndarray  # [B] int64
    confidence: np.ndarray  # [B] float64
    accuracy: np.ndarray  # [B] float64

    @property
    def gaps(self) -> np.ndarray:
        """Return |accuracy − confidence| per bin (0 for an empty bin)."""
        return np.nan_to_num(np.abs(self.accuracy - self.confidence))

    @property
    def expected_error(self) -> float:
        """Return Σ (count / total) · |accuracy − confidence|: the ECE over these bins."""
        return float(np.sum(self.count / self.count.sum() * self.gaps))

    @property
    def maximum_error(self) -> float:
        """Return the largest |accuracy − confidence| of a non-empty bin: the MCE."""
        return float(self.gaps[self.count > 0].max())


@dataclass(frozen=True)
class Calibration:
    """A model's calibration on the test set, before and after temperature scaling."""

    bins: Bins  # equal-width, before scaling
    equal_mass: Bins  # equal-mass, before scaling
    equal_mass_scaled: Bins | None  # equal-mass, after scaling
    ece: float
    mce: float
    adaptive_ece: float
    brier: float
    nll: float
    mean_confidence: float
    accuracy: float
    # None, like every scaled value, without validation logits (a predictions file).
    temperature: float | None
    ece_scaled: float | None
    adaptive_ece_scaled: float | None
    nll_scaled: float | None


# --------------------------------------------------------------------------- validation


def _check_bins(n_bins: int) -> None:
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1; got {n_bins}")


# --------------------------------------------------------------------------- probabilities


def top_class(proba: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's top-class confidence and whether that class is the label.

    Ties go to the lowest class, as ``argmax`` does everywhere in reportgen.
    """
    p = arrays.scores(proba, "proba")
    y = arrays.labels(labels, "labels", classes=p.shape[1], rows=p.shape[0])
    predicted = p.argmax(axis=1)
    return p[np.arange(len(p)), predicted], predicted == y


# --------------------------------------------------------------------------- binning


def _summarise(groups: list[np.ndarray], confidence: np.ndarray, correct: np.ndarray) -> Bins:
    count = np.array([len(g) for g in groups], dtype=np.int64)
    with np.errstate(invalid="ignore"):
        mean_conf = np.array([confidence[g].mean() if len(g) else np.nan for g in groups])
        mean_acc = np.array([correct[g].mean() if len(g) else np.nan for g in groups])
    return Bins(
        low=np.array([confidence[g].min() if len(g) else np.nan for g in groups]),
        high=np.array([confidence[g].max() if len(g) else np.nan for g in groups]),
        count=count,
        confidence=mean_conf,
        accuracy=mean_acc,
    )


def equal_width_bins(
    confidence: ArrayLike, correct: ArrayLike, *, n_bins: int = DEFAULT_BINS
) -> Bins:
    """Return predictions in ``n_bins`` equal-width confidence bins ((m−1)/M, m/M].

    As in Guo et al. (2017), bin ``m`` holds the confidences above
    ``(m − 1)/M`` and up to ``m/M``, so a confidence of exactly 1 is in the
    top bin.  ``low``/``high`` are the bin's edges.
    """
    _check_bins(n_bins)
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted(side="left") - 1 puts an edge value into the bin it closes.
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    groups = [np.flatnonzero(which == m) for m in range(n_bins)]
    bins = _summarise(groups, conf, hit)
    return Bins(edges[:-1], edges[1:], bins.count, bins.confidence, bins.accuracy)


def equal_mass_bins(
    confidence: ArrayLike, correct: ArrayLike, *, n_bins: int = DEFAULT_BINS
) -> Bins:
    """Return predictions in ``n_bins`` bins of (nearly) equal counts, by rising confidence.

    Tied confidences always share a bin: a boundary that would fall inside a
    run of equal confidences moves to the nearer end of the run (the lower
    end when both are as near), so the bins depend on the values, never on
    the test order, and some bins may be empty.  A model whose every
    confidence is 0.5 with half of them right has one bin and no gap.
    ``low``/``high`` are the lowest and highest confidence in each bin.  With
    fewer predictions than bins, some bins are empty.
    """
    _check_bins(n_bins)
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=bool)
    order = np.argsort(conf, kind="stable")
    ranked = conf[order]
    # Where np.array_split would cut: the first (n mod M) bins hold one more.
    sizes = np.full(n_bins, len(conf) // n_bins)
    sizes[: len(conf) % n_bins] += 1
    cuts = np.cumsum(sizes)[:-1]
    if len(conf):
        inside = np.clip(cuts, 1, len(conf)) - 1  # the last position before each cut
        starts = np.searchsorted(ranked, ranked[inside], side="left")
        ends = np.searchsorted(ranked, ranked[inside], side="right")
        cuts = np.where(cuts - starts <= ends - cuts, starts, ends)
    return _summarise(list(np.split(order, cuts)), conf, hit)


# --------------------------------------------------------------------------- proper scores


def brier_score(proba: ArrayLike, labels: ArrayLike) -> float:
    """Return the multiclass Brier score: mean over rows of Σ_k (p_k − [y = k])², in [0, 2]."""
    p = arrays.scores(proba, "proba")
    y = arrays.labels(labels, "labels", classes=p.shape[1], rows=p.shape[0])
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


# A probability of 0 for the true label would make the NLL infinite; clip it here (the NLL
# of one such image is then 27.6) and say so where the test loss is described.
PROBABILITY_FLOOR = 1e-12


def probability_nll(proba: ArrayLike, labels: ArrayLike) -> float:
    """Return the mean −log p(label) of given probabilities, each at least PROBABILITY_FLOOR.

    The test loss of a model evaluated from a file of probabilities: without
    logits, this is the cross-entropy of the probabilities as given.
    """
    p = arrays.scores(proba, "proba")
    y = arrays.labels(labels, "labels", classes=p.shape[1], rows=p.shape[0])
    picked = np.maximum(p[np.arange(len(y)), y], PROBABILITY_FLOOR)
    return float(-np.mean(np.log(picked))) + 0.0  # + 0.0: never "-0.0"


def negative_log_likelihood(logits: ArrayLike, labels: ArrayLike) -> float:
    """Return the mean −log softmax(logits)[label] in float64 (no clipping needed)."""
    log_p = log_softmax(logits)
    y = arrays.labels(labels, "labels", classes=log_p.shape[1], rows=log_p.shape[0])
    return float(-np.mean(log_p[np.arange(len(y)), y])) + 0.0  # + 0.0: never "-0.0"


# --------------------------------------------------------------------------- temperature


def fit_temperature(logits: ArrayLike, labels: ArrayLike, *, steps: int = GOLDEN_STEPS) -> float:
    """Return the temperature T > 0 that minimises the NLL of ``softmax(logits / T)``.

    The NLL is convex in 1/T, so it has one minimum along log T; a
    golden-section search over :data:`LOG_T_RANGE` with a fixed number of
    ``steps`` finds it without any randomness or tolerance-dependent
    stopping: the same logits give the same bits.
    """
    z = arrays.scores(logits, "logits")
    y = arrays.labels(labels, "labels", classes=z.shape[1], rows=z.shape[0])

    def loss(log_t: float) -> float:
        return negative_log_likelihood(z / np.exp(log_t), y)

    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    low, high = LOG_T_RANGE
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    f_left, f_right = loss(left), loss(right)
    for _ in range(steps):
        if f_left <= f_right:  # the minimum is in [low, right]
            high, right, f_right = right, left, f_left
            left = high - ratio * (high - low)
            f_left = loss(left)
        else:
            low, left, f_left = left, right, f_right
            right = low + ratio * (high - low)
            f_right = loss(right)
    return float(np.exp((low + high) / 2.0))


# --------------------------------------------------------------------------- the whole picture


def calibrate(
    test_logits: ArrayLike,
    test_labels: ArrayLike,
    val_logits: ArrayLike,
    val_labels: ArrayLike,
    *,
    n_bins: int = DEFAULT_BINS,
    proba: ArrayLike | None = None,
) -> Calibration:
    """Return a model's test calibration, and again after a temperature fitted on validation.

    The temperature is fitted on the validation split only, so the test
    numbers after scaling are an honest estimate of what scaling buys.
    ``proba``, when given, are the probabilities the bins, the Brier score
    and the mean confidence before scaling are measured from (a run's: the
    float32 probabilities its ``predictions.csv`` holds, so that the file
    re-reports to the same numbers); by default the float64 softmax of the
    logits.  The NLL is always the logits'.
    """
    test = arrays.scores(test_logits, "test_logits")
    temperature = fit_temperature(val_logits, val_labels)
    before = calibrate_probabilities(
        softmax(test) if proba is None else proba, test_labels,
        nll=negative_log_likelihood(test, test_labels), n_bins=n_bins,
    )  # fmt: skip
    scaled_confidence, scaled_correct = top_class(softmax(test / temperature), test_labels)
    bins_scaled = equal_width_bins(scaled_confidence, scaled_correct, n_bins=n_bins)
    equal_mass_scaled = equal_mass_bins(scaled_confidence, scaled_correct, n_bins=n_bins)
    return dataclasses.replace(
        before,
        equal_mass_scaled=equal_mass_scaled,
        temperature=temperature,
        ece_scaled=bins_scaled.expected_error,
        adaptive_ece_scaled=equal_mass_scaled.expected_error,
        nll_scaled=negative_log_likelihood(test / temperature, test_labels),
    )


def calibrate_probabilities(
    proba: ArrayLike, test_labels: ArrayLike, *, nll: float, n_bins: int = DEFAULT_BINS
) -> Calibration:
    """Return the test calibration of given probabilities, without temperature scaling.

    ``nll`` is the test loss, computed by the caller from what it has (the
    logits, or :func:`probability_nll`).  Every scaled value is None.
    """
    confidence, correct = top_class(proba, test_labels)
    bins = equal_width_bins(confidence, correct, n_bins=n_bins)
    equal_mass = equal_mass_bins(confidence, correct, n_bins=n_bins)
    return Calibration(
        bins=bins,
        equal_mass=equal_mass,
        equal_mass_scaled=None,
        ece=bins.expected_error,
        mce=bins.maximum_error,
        adaptive_ece=equal_mass.expected_error,
        brier=brier_score(proba, test_labels),
        nll=nll,
        mean_confidence=float(confidence.mean()),
        accuracy=float(correct.mean()),
        temperature=None,
        ece_scaled=None,
        adaptive_ece_scaled=None,
        nll_scaled=None,
    )


def confidence_verdict(name: str, result: Calibration) -> str:
    """Return one sentence: is the model over- or under-confident, and what scaling changes."""
    pct = text.pct
    if result.temperature is None or result.ece_scaled is None or result.nll_scaled is None:
        return (
            f"The {name} model's test ECE is {pct(result.ece)} (mean confidence "
            f"{pct(result.mean_confidence)}, test accuracy {pct(result.accuracy)}); without "
            "its validation logits, no temperature is fitted."
        )
    t = f"T = {result.temperature:.2f}"
    if result.temperature > np.exp(CALIBRATED_LOG_T):
        reading = (
            f"over-confident: the temperature fitted on the validation split, {t}, softens "
            "its probabilities"
        )
    elif result.temperature < np.exp(-CALIBRATED_LOG_T):
        reading = (
            f"under-confident: the temperature fitted on the validation split, {t}, sharpens "
            "its probabilities"
        )
    else:
        reading = (
            f"neither over- nor under-confident as a whole: the temperature fitted on the "
            f"validation split, {t}, barely changes its probabilities"
        )
    if min(abs(np.log(result.temperature) - end) for end in LOG_T_RANGE) < 1e-6:
        reading += (
            f" (a bound of the search, {np.exp(LOG_T_RANGE[0]):g}–{np.exp(LOG_T_RANGE[1]):g}: "
            "the validation split does not pin it down)"
        )
    return (
        f"The {name} model is {reading} (mean confidence {pct(result.mean_confidence)}, test "
        f"accuracy {pct(result.accuracy)}); scaling moves its test ECE from {pct(result.ece)} to "
        f"{pct(result.ece_scaled)} and its test NLL from {result.nll:.4f} to "
        f"{result.nll_scaled:.4f}."
    )
