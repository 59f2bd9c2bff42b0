"""The non-inferiority gate's verdict: is the candidate not worse than the reference?

One contract, held by ``metrics.json`` (``significance.non_inferiority``, for the
report) and by ``summary.json`` (``non_inferiority``, for a CI job); both are
absent from runs whose config sets no ``gate.fail_if_worse``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reportgen.artifacts.contract import Contract, Fraction

Verdict = Literal["not worse", "worse", "not shown"]
Clause = Literal["interval", "mcnemar"]


class NonInferiority(Contract):
    reference: str = Field(description="the model compared against (`significance.models[0]`)")
    candidate: str = Field(
        description="the model that must not be worse (`significance.models[1]`)"
    )
    margin_pp: float = Field(
        ge=0, le=100, description="`gate.fail_if_worse`: the loss tolerated, in percentage points"
    )
    estimate: float = Field(ge=-1, le=1, description="candidate − reference test accuracy")
    low: float = Field(ge=-1, le=1, description="lower bound of its paired bootstrap interval")
    high: float = Field(ge=-1, le=1, description="upper bound of its paired bootstrap interval")
    level: Fraction = Field(description="coverage of the interval, 0.95")
    mcnemar_p: Fraction = Field(description="exact McNemar p-value of the two models")
    alpha: Fraction = Field(description="significance level of McNemar's test, 0.05")
    verdict: Verdict = Field(
        description='"not worse": low > −margin; "worse": high < −margin, or (margin 0 only) '
        'McNemar p < alpha with the candidate behind; "not shown": neither'
    )
    decided_by: list[Clause] = Field(
        description='which clauses found the candidate worse ("interval", "mcnemar"); empty '
        "unless the verdict is worse"
    )
    passed: bool = Field(description="the gate held: every verdict but worse")
    sentence: str = Field(description="the verdict as the report and summary.md state it")
