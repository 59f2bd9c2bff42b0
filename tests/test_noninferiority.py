"""The non-inferiority gate: its statistics against SciPy and NumPy, its verdicts, its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from reportgen.artifacts.metrics import Metrics, parse_metrics
from reportgen.artifacts.summary import parse_summary
from reportgen.evaluate import gate, statistics
from reportgen.evaluate.noninferiority import decide, failure_line, judge, non_inferiority
from reportgen.report.sentences import summary_paragraphs
from tests import synthetic

from .conftest import QuickMnist, quick_overrides

NAMES = ("production", "candidate")
N = 10_000  # test images of the acceptance cases, as many as MNIST's


def _pair(extra_errors: int, *, n: int = N, base_errors: int = 200) -> tuple[np.ndarray, ...]:
    """Return (reference, candidate) correctness: the candidate errs on ``extra_errors`` more.

    The candidate is never right where the reference is wrong, as when a model loses
    a little accuracy and gains none.
    """
    reference = np.ones(n, dtype=bool)
    reference[:base_errors] = False
    candidate = reference.copy()
    candidate[base_errors : base_errors + extra_errors] = False
    return reference, candidate


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(("b", "c"), [(30, 0), (12, 3), (7, 7), (0, 0), (40, 55), (1, 0)])
def test_mcnemar_p_is_scipys_exact_binomial_test(b: int, c: int) -> None:
    reference = np.array([True] * b + [False] * c + [True] * 5)
    candidate = np.array([False] * b + [True] * c + [True] * 5)
    result = non_inferiority(reference, candidate, names=NAMES, margin_pp=0, seed=0, resamples=100)
    expected = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5).pvalue
    assert result.mcnemar_p == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize("n", [57, 10_000])  # one draw of indices, and several chunks
def test_bootstrap_interval_is_a_direct_numpy_percentile_bootstrap(n: int) -> None:
    rng = np.random.default_rng(7)
    reference = rng.random(n) < 0.9
    candidate = np.where(rng.random(n) < 0.05, ~reference, reference)
    seed, resamples = 11, 1_000
    result = non_inferiority(reference, candidate, names=NAMES, margin_pp=0.5, seed=seed,
                             resamples=resamples)  # fmt: skip
    # The reference computation: resample the test images with replacement, paired.
    index = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    differences = candidate[index].mean(axis=1) - reference[index].mean(axis=1)
    low, high = np.percentile(differences, [2.5, 97.5])
    assert (result.low, result.high) == pytest.approx((low, high), abs=1e-12)
    assert result.estimate == pytest.approx(candidate.mean() - reference.mean(), abs=1e-15)
    assert result.level == 0.95


# --------------------------------------------------------------------------- verdicts


def _interval(low_pp: float, high_pp: float) -> statistics.Interval:
    return statistics.Interval((low_pp + high_pp) / 200, low_pp / 100, high_pp / 100, 0.95, 1000)


@pytest.mark.parametrize(
    ("low_pp", "high_pp", "test", "margin", "verdict", "clauses"),
    [
        # The interval above −margin: not worse, whatever McNemar says at a margin.
        (-0.21, 0.34, statistics.McNemar(20, 18, 0.87), 0.5, "not worse", []),
        (-0.4, -0.1, statistics.McNemar(40, 10, 1e-5), 0.5, "not worse", []),
        # Entirely below −margin: worse, by the interval.
        (-2.6, -1.4, statistics.McNemar(200, 10, 1e-9), 0.5, "worse", ["interval"]),
        # Straddling −margin: not shown; McNemar's equality test does not count at a margin.
        (-0.6, -0.1, statistics.McNemar(60, 20, 1e-5), 0.5, "not shown", []),
        # At margin 0, McNemar alone decides when the interval reaches 0 ...
        (-0.3, 0.01, statistics.McNemar(14, 3, 0.013), 0, "worse", ["mcnemar"]),
        # ... only with the candidate behind, and only when significant.
        (-0.01, 0.3, statistics.McNemar(3, 14, 0.013), 0, "not shown", []),
        (-0.3, 0.01, statistics.McNemar(14, 9, 0.4), 0, "not shown", []),
        (-0.6, -0.2, statistics.McNemar(60, 20, 1e-5), 0, "worse", ["interval", "mcnemar"]),
        # Non-inferiority at margin 0 is superiority: an equal candidate is not shown better.
        (0.0, 0.0, statistics.McNemar(0, 0, 1.0), 0, "not shown", []),
        (0.1, 0.5, statistics.McNemar(5, 30, 1e-5), 0, "not worse", []),
        # A bound exactly at −margin is neither above nor below it (0.3 pp = 30 / 10,000).
        (-0.3, 0.1, statistics.McNemar(30, 10, 0.002), 0.3, "not shown", []),
        (-0.5, -0.3, statistics.McNemar(50, 0, 1e-9), 0.3, "not shown", []),
    ],
)
def test_verdicts(
    low_pp: float, high_pp: float, test: statistics.McNemar, margin: float, verdict: str,
    clauses: list[str],
) -> None:  # fmt: skip
    assert decide(_interval(low_pp, high_pp), test, margin_pp=margin, alpha=0.05) == (
        verdict,
        clauses,
    )
    result = judge(_interval(low_pp, high_pp), test, names=NAMES, margin_pp=margin)
    assert result.passed is (verdict != "worse")
    answer = {"not worse": ": yes, ", "worse": ": no, ", "not shown": ": not shown, "}[verdict]
    assert answer in result.sentence and "\n" not in result.sentence


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="margin_pp must be 0 or more"):
        decide(_interval(0, 0), statistics.McNemar(0, 0, 1.0), margin_pp=-1, alpha=0.05)


# --------------------------------------------------------------------------- acceptance


def test_a_candidate_equal_to_the_reference_passes() -> None:
    reference, candidate = _pair(0)
    at_zero = non_inferiority(reference, candidate, names=NAMES, margin_pp=0, seed=0)
    assert (at_zero.verdict, at_zero.passed) == ("not shown", True)
    at_half = non_inferiority(reference, candidate, names=NAMES, margin_pp=0.5, seed=0)
    assert (at_half.verdict, at_half.passed) == ("not worse", True)
    assert at_half.sentence == (
        "Non-inferiority: candidate not worse than production by more than 0.5 pp: yes, "
        "95% interval +0.00 to +0.00 pp."
    )


def test_a_candidate_two_points_worse_fails_with_one_line() -> None:
    reference, candidate = _pair(200)  # 2 pp of 10,000 images
    result = non_inferiority(reference, candidate, names=NAMES, margin_pp=0.5, seed=0)
    assert (result.verdict, result.passed) == ("worse", False)
    assert result.decided_by == ["interval"]  # at a margin McNemar never decides
    line = failure_line(result)
    assert "\n" not in line
    assert line.startswith("gate failed: candidate is worse than production by more than 0.5 pp")
    assert f"95% interval of the difference {_pp(result.low)} to {_pp(result.high)} pp" in line


def test_a_candidate_three_tenths_worse_passes_at_half_a_point_and_fails_at_zero() -> None:
    # 10,000 test images; the candidate errs on 30 more and is never right where the
    # reference is wrong: McNemar b = 30, c = 0.
    reference, candidate = _pair(30)
    lenient = non_inferiority(reference, candidate, names=NAMES, margin_pp=0.5, seed=0)
    strict = non_inferiority(reference, candidate, names=NAMES, margin_pp=0, seed=0)
    assert lenient.estimate == strict.estimate == pytest.approx(-0.003)
    assert (lenient.verdict, lenient.passed) == ("not worse", True)
    assert -0.005 < lenient.low < lenient.high < 0
    assert (strict.verdict, strict.passed) == ("worse", False)
    # Both clauses decide: the interval lies below 0, and McNemar p = 2 · 2^-30.
    assert strict.decided_by == ["interval", "mcnemar"]
    assert strict.mcnemar_p == pytest.approx(2 * 0.5**30)


def _pp(value: float) -> str:
    return f"{100 * value:+.2f}".replace("-", "\N{MINUS SIGN}")


# --------------------------------------------------------------------------- summary and report


@pytest.fixture(scope="module")
def plain() -> Metrics:
    """The synthetic run's metrics (no gate configured), built once."""
    return synthetic.metrics()


def _gated(metrics: Metrics, margin: float) -> Metrics:
    """``metrics`` with the gate's verdict at ``margin`` added."""
    significance = metrics.significance
    assert significance is not None
    difference = significance.difference
    verdict = judge(
        statistics.Interval(difference.estimate, difference.low, difference.high,
                            difference.level, difference.resamples),
        statistics.McNemar(significance.mcnemar.b, significance.mcnemar.c,
                           significance.mcnemar.p_value),
        names=significance.models, margin_pp=margin,
    )  # fmt: skip
    return metrics.model_copy(
        update={"significance": significance.model_copy(update={"non_inferiority": verdict})}
    )


def test_summary_records_the_verdict_and_the_report_states_it(plain: Metrics) -> None:
    metrics = parse_metrics(
        json.dumps(_gated(plain, 0.5).dump())
    )  # through metrics.json's contract
    assert metrics.significance is not None
    gated = metrics.significance.non_inferiority
    assert gated is not None
    document = gate.summary(metrics, [])
    assert parse_summary(document.model_dump_json()) == document
    assert document.non_inferiority == gated
    assert document.passed is gated.passed
    data = document.model_dump(mode="json")["non_inferiority"]
    assert {"margin_pp", "low", "high", "mcnemar_p", "verdict", "passed"} <= set(data)
    assert gated.sentence in gate.summary_markdown(metrics, [])
    assert gated.sentence in summary_paragraphs(metrics)


def test_without_the_gate_nothing_is_written(plain: Metrics) -> None:
    metrics = plain
    assert "non_inferiority" not in metrics.dump()["significance"]
    document = gate.summary(metrics, [])
    assert "non_inferiority" not in document.model_dump(mode="json")
    assert not any("Non-inferiority" in p for p in summary_paragraphs(metrics))


def test_a_worse_candidate_fails_the_summary(plain: Metrics) -> None:
    significance = _gated(plain, 0.0).significance
    assert significance is not None and significance.non_inferiority is not None
    forced = significance.non_inferiority.model_copy(update={"verdict": "worse", "passed": False})
    metrics = plain.model_copy(
        update={"significance": significance.model_copy(update={"non_inferiority": forced})}
    )
    assert gate.summary(metrics, []).passed is False
    assert f"❌ {forced.sentence}" in gate.summary_markdown(metrics, [])


# --------------------------------------------------------------------------- end to end


def test_run_with_fail_if_worse_exits_3_with_one_line(
    quick_mnist: QuickMnist, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from reportgen.cli.main import main
    from reportgen.data import idx

    monkeypatch.setattr(idx, "MNIST_FILES", quick_mnist.specs)
    out = tmp_path / "gated"
    sets = [
        *quick_overrides(quick_mnist.root),
        "train.epochs=1",
        "data.limit_train=300",
        "report.render=false",
        "report.attributions=false",
        "models.regularized.hidden=[1]",
    ]  # one hidden unit: far behind the baseline
    args = ["--quiet", "run", "--out", str(out), *[a for s in sets for a in ("--set", s)],
            "--fail-if-worse"]  # fmt: skip
    assert main(args) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "reportgen: gate failed: regularized is worse than baseline by more than 0 pp "
        "(gate.fail_if_worse): 95% interval of the difference "
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is False
    assert summary["non_inferiority"]["verdict"] == "worse"
    assert summary["non_inferiority"]["margin_pp"] == 0
    sentence = summary["non_inferiority"]["sentence"]
    assert sentence in (out / "summary.md").read_text()
    assert sentence in summary_paragraphs(parse_metrics((out / "metrics.json").read_bytes()))
    assert "fail_if_worse = 0.0" in (out / "config.toml").read_text()
