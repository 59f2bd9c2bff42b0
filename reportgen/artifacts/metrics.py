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
rounded probabilities); schema 3 records where each model came from
(``source``: trained, a checkpoint or a predictions file, whose model has no
training measures) and adds the test set's checks: label issues, duplicates,
class balance and robustness.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from reportgen.artifacts.class_balance import ClassBalance
from reportgen.artifacts.contract import Contract, Count
from reportgen.artifacts.duplicates import Duplicates
from reportgen.artifacts.label_issues import LabelIssues
from reportgen.artifacts.layout import RUN_FILES, check_relpath
from reportgen.artifacts.manifest import Manifest, read_artifact, validation_problem
from reportgen.artifacts.model_metrics import ModelMetrics
from reportgen.artifacts.robustness import Robustness
from reportgen.artifacts.significance import ComparisonRow, Significance
from reportgen.config.schema import DatasetName
from reportgen.core.errors import RunDirError
from reportgen.core.fileio import write_json

DATASET_NAME = "MNIST (torchvision.datasets.MNIST, official IDX files)"

SCHEMA: Literal[3] = 3  # metrics.json's schema version: a document of another is refused

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


class Metrics(Contract):
    """The whole ``metrics.json`` document."""

    schema_version: Literal[3] = Field(
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
