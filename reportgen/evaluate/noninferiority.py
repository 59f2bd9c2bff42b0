"""Is the candidate not worse than the reference by more than a margin?  The gate's statistics.

Both models are scored on the same test images.  The paired 95% bootstrap
interval of (candidate − reference) test accuracy and the exact McNemar test
(:mod:`reportgen.evaluate.statistics`) give one of three verdicts at a margin
of ``m`` percentage points:

- **not worse**: the interval's lower bound lies above −m: a loss of more than
  m is ruled out (non-inferiority shown);
- **worse**: the whole interval lies below −m, or, at m = 0 only, McNemar's
  test is significant with the candidate behind.  McNemar tests whether the two
  models are equally accurate, not whether they differ by more than m, so it
  can only speak for a margin of 0;
- **not shown**: neither — the data cannot tell; the gate passes, and the
  sentence says that non-inferiority is not shown.

Every function here is pure.
"""

from __future__ import annotations

from numpy.typing import ArrayLike

from reportgen.artifacts.noninferiority import Clause, NonInferiority, Verdict
from reportgen.core import text
from reportgen.evaluate import statistics

# Accuracy differences are multiples of 1/n: a bound within this of −margin is at the
# margin, so that 0.3 / 100 and 30 / 10_000 compare as equal, not by a float's last bit.
TOLERANCE = 1e-12


def decide(
    difference: statistics.Interval, test: statistics.McNemar, *, margin_pp: float, alpha: float
) -> tuple[Verdict, list[Clause]]:
    """Return the verdict at ``margin_pp`` and the clauses that found the candidate worse.

    ``difference`` is the interval of candidate − reference accuracy (fractions);
    ``test`` McNemar's test with the reference first (``b``: images only the
    reference gets right).  A bound exactly at −margin is neither above nor below it.
    """
    if margin_pp < 0:
        raise ValueError(f"margin_pp must be 0 or more; got {margin_pp!r}")
    bound = -margin_pp / 100.0
    decided_by: list[Clause] = []
    if difference.high < bound - TOLERANCE:
        decided_by.append("interval")
    if margin_pp == 0 and test.p_value < alpha and test.b > test.c:
        decided_by.append("mcnemar")
    if decided_by:
        return "worse", decided_by
    if difference.low > bound + TOLERANCE:
        return "not worse", []
    return "not shown", []


def judge(
    difference: statistics.Interval,
    test: statistics.McNemar,
    *,
    names: tuple[str, str],
    margin_pp: float,
    alpha: float = statistics.DEFAULT_ALPHA,
) -> NonInferiority:
    """Return the gate's verdict on an interval and a McNemar test already computed.

    ``names`` are ``(reference, candidate)``, as ``significance.models`` orders them.
    """
    verdict, decided_by = decide(difference, test, margin_pp=margin_pp, alpha=alpha)
    reference, candidate = names
    result = NonInferiority(
        reference=reference, candidate=candidate, margin_pp=float(margin_pp),
        estimate=difference.estimate, low=difference.low, high=difference.high,
        level=difference.level, mcnemar_p=test.p_value, alpha=alpha, verdict=verdict,
        decided_by=decided_by, passed=verdict != "worse", sentence="",
    )  # fmt: skip
    return result.model_copy(update={"sentence": sentence(result)})


def non_inferiority(
    reference_correct: ArrayLike,
    candidate_correct: ArrayLike,
    *,
    names: tuple[str, str],
    margin_pp: float,
    resamples: int = statistics.DEFAULT_RESAMPLES,
    seed: int,
    level: float = statistics.DEFAULT_LEVEL,
    alpha: float = statistics.DEFAULT_ALPHA,
) -> NonInferiority:
    """Return whether the candidate is not worse than the reference by more than ``margin_pp``.

    Parameters
    ----------
    reference_correct, candidate_correct : array-like of bool, shape (n,)
        Whether each model classified test image ``i`` correctly.
    names : tuple of str
        ``(reference, candidate)``.
    margin_pp : float
        The loss of accuracy tolerated, in percentage points (≥ 0).
    resamples, seed, level
        Of the paired percentile bootstrap (:func:`statistics.difference_interval`).
    alpha : float, default 0.05
        Significance level of the exact McNemar test (used at a margin of 0 only).

    Returns
    -------
    NonInferiority
    """
    difference = statistics.difference_interval(
        reference_correct, candidate_correct, resamples=resamples, seed=seed, level=level
    )
    test = statistics.mcnemar(reference_correct, candidate_correct)
    return judge(difference, test, names=names, margin_pp=margin_pp, alpha=alpha)


def _points(value: float) -> str:
    """Return a difference of fractions in signed percentage points without the unit."""
    return text.pp(value).removesuffix(" pp")


def _margin(margin_pp: float) -> str:
    return f"{margin_pp:g} pp"


def _bound(margin_pp: float) -> str:
    return f"{text.MINUS}{margin_pp:g} pp" if margin_pp else "0 pp"


def sentence(result: NonInferiority) -> str:
    """Return the verdict as one sentence, e.g. ``… by more than 0.5 pp: yes, 95% interval …``."""
    interval = (
        f"{text.level(result.level)} interval {_points(result.low)} to {_points(result.high)} pp"
    )
    claim = (
        f"Non-inferiority: {result.candidate} not worse than {result.reference} by more than "
        f"{_margin(result.margin_pp)}"
    )
    if result.verdict == "not worse":
        return f"{claim}: yes, {interval}."
    if result.verdict == "not shown":
        return (
            f"{claim}: not shown, {interval} does not lie above {_bound(result.margin_pp)} "
            "(the gate passes)."
        )
    reasons = [interval]
    if "interval" in result.decided_by:
        reasons[0] += f", entirely below {_bound(result.margin_pp)}"
    if "mcnemar" in result.decided_by:
        reasons.append(f"McNemar {text.p_equals(result.mcnemar_p)} with {result.candidate} behind")
    return f"{claim}: no, {'; '.join(reasons)}."


def failure_line(result: NonInferiority) -> str:
    """Return the one line a failed gate prints: both models, the margin and the interval."""
    line = (
        f"gate failed: {result.candidate} is worse than {result.reference} by more than "
        f"{_margin(result.margin_pp)} (gate.fail_if_worse): {text.level(result.level)} interval "
        f"of the difference {_points(result.low)} to {_points(result.high)} pp"
    )
    if "mcnemar" in result.decided_by:
        line += f", McNemar {text.p_equals(result.mcnemar_p)}"
    return line
