"""``sweep.json``: every number the sweep report shows, as one typed document.

Like ``metrics.json`` for a run, the document is built from these models and
read back through :func:`parse_sweep`, which refuses anything that does not
fit them: strict types, no unknown keys, no NaN.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reportgen.artifacts.manifest import validation_problem
from reportgen.core.errors import RunDirError
from reportgen.core.fileio import json_text

Fraction = Annotated[float, Field(ge=0, le=1)]
Difference = Annotated[float, Field(ge=-1, le=1)]
SCHEMA: Literal[1] = 1  # sweep.json's schema version
# The metrics summarised over seeds (the fields of ModelSummary), as sentences name them.
SWEEP_METRICS = {"test_accuracy": "test accuracy", "macro_f1": "macro F1"}


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SeedStats(_Contract):
    """One metric of one point and model over its seeds."""

    seeds: list[int] = Field(description="the seeds whose runs finished, in the sweep's order")
    values: list[Fraction] = Field(description="the metric of each of those seeds")
    mean: Fraction = Field(description="mean over seeds")
    sd: float | None = Field(ge=0, description="sample standard deviation over seeds (n − 1)")
    low: Fraction | None = Field(description="percentile bootstrap interval of the mean: low")
    high: Fraction | None = Field(description="percentile bootstrap interval of the mean: high")


class ModelSummary(_Contract):
    test_accuracy: SeedStats = Field(description="test accuracy over seeds")
    macro_f1: SeedStats = Field(description="macro-averaged F1 over seeds")


class PointEntry(_Contract):
    label: str = Field(description="the point's folder under points/")
    overrides: dict[str, Any] = Field(description="swept key → this point's value")
    config: str = Field(description="path of the point's resolved config.toml")
    models: dict[str, ModelSummary] = Field(description="model → its metrics over seeds")


class RunModel(_Contract):
    test_accuracy: Fraction
    macro_f1: Fraction
    val_accuracy: Fraction | None
    diverged: bool


class RunEntry(_Contract):
    key: str = Field(description="the run's folder, relative to the sweep")
    point: str = Field(description="the point's label")
    seed: int = Field(ge=0, description="the run's seed")
    status: Literal["ok", "failed"]
    error: str | None = Field(description="why the run failed (after its retry), else null")
    report: str | None = Field(
        description="relative path of the run's report.html; null when the run failed or was "
        "written without its report"
    )
    models: dict[str, RunModel] = Field(description="model → this run's metrics")
    mcnemar_p_value: Fraction | None = Field(description="the run's own paired test")
    significant: bool | None


class Comparison(_Contract):
    """A paired comparison over seeds: second − first, seed by seed."""

    scope: Literal["models", "points"] = Field(
        description='"models": two models of one point; "points": one model at two points'
    )
    point: str | None = Field(description="the point (scope models)")
    model: str | None = Field(description="the model (scope points)")
    first: str
    second: str
    seeds: list[int]
    differences: list[Difference] = Field(description="second − first test accuracy per seed")
    mean: Difference
    sd: float | None = Field(ge=0)
    low: Difference | None
    high: Difference | None
    level: Fraction
    probability: Fraction = Field(description="share of seeds on which second is higher; ties ½")
    wins: int = Field(ge=0)
    ties: int = Field(ge=0)
    losses: int = Field(ge=0)
    seed_sd: float | None = Field(ge=0, description="larger sd over seeds of the two")
    exceeds_seed_variation: bool | None
    significant_tests: int | None = Field(ge=0, description="per-seed McNemar tests, p < 0.05")
    tests: int = Field(ge=0)
    sentence: str


class SweepDocument(_Contract):
    """The whole ``sweep.json``."""

    schema_version: Literal[1] = Field(default=1, alias="schema")
    title: str
    date: str
    kind: Literal["seeds", "grid", "points"]
    seeds: list[int]
    keys: list[str] = Field(description="the swept config keys")
    level: Fraction = Field(description="coverage of every interval")
    points: list[PointEntry]
    runs: list[RunEntry]
    comparisons: list[Comparison]

    def dump(self) -> dict[str, Any]:
        """Return the document as JSON data."""
        return self.model_dump(mode="json", by_alias=True)

    def json_bytes(self) -> bytes:
        """Return ``sweep.json`` as every JSON artifact is written: sorted keys, indented."""
        return json_text(self.dump()).encode("utf-8")


def parse_sweep(data: bytes | str, *, source: str = "sweep.json") -> SweepDocument:
    """Return ``sweep.json`` text as a :class:`SweepDocument`; anything else is one line."""
    try:
        return SweepDocument.model_validate_json(data)
    except ValidationError as e:
        raise RunDirError(f"{source}: {validation_problem(e)}") from e
