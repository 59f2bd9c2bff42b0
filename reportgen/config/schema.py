"""The configuration's schema: frozen pydantic sections, every default and allowed value.

Each section refuses unknown keys and out-of-range values, and
:mod:`reportgen.config.loading` turns a TOML file into a :class:`Config`
through these types.  What depends on the data itself (how many images
MNIST has, which keys an image folder takes) is its data source's to check
(:func:`reportgen.data.sources.check_config`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reportgen.config.robustness import RobustnessSection
from reportgen.core.text import hidden_character

# Metrics a CI threshold may name (``MODEL.METRIC``): higher is better for each;
# reportgen.evaluate.gate reads them from a run's metrics.
GATE_METRICS = (
    "test_accuracy", "val_accuracy", "train_accuracy", "macro_f1", "weighted_f1",
    "macro_precision", "macro_recall", "top_k_accuracy",
)  # fmt: skip


def _refuse_bool(value: Any) -> Any:
    # TOML's true/false are Python bools, and bool is a subclass of int: pydantic's lax
    # mode would read `epochs = true` as 1.  Strings and 2.0 keep their lax reading.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


Int = Annotated[int, BeforeValidator(_refuse_bool)]
Float = Annotated[float, BeforeValidator(_refuse_bool)]
OptimizerName = Literal["sgd", "adam", "adamw"]
SchedulerName = Literal["none", "step", "exponential", "plateau", "cosine", "onecycle"]


def _class_ref(value: Any) -> int | str:
    # A class index or a class name; which classes exist is known once the data is read.
    if isinstance(value, bool):
        raise ValueError("must be a class index or name, not true or false")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a class index must be 0 or more (got {value})")
        return value
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"must be a class index (0, 1, …) or a class name (got {value!r})")


ClassRef = Annotated[int | str, PlainValidator(_class_ref)]
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def default_data_root() -> str:
    """Return the per-user MNIST cache: ``$XDG_CACHE_HOME/reportgen`` or ``~/.cache/reportgen``."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(cache) / "reportgen")


class _Section(BaseModel):
    """A config table: unknown keys are errors and values are immutable."""

    # allow_inf_nan: an infinite learning rate or threshold is never meant; refuse it here.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)


class RunSection(_Section):
    name: str = "default"
    title: str | None = None  # unset: "<dataset> classifier report", e.g. "MNIST classifier report"
    author: str = "reportgen"
    # ISO date of the title block. A run fills in the day it is made (UTC), or
    # SOURCE_DATE_EPOCH's, and writes it into its resolved config.toml.
    date: str | None = None

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _SAFE_NAME.fullmatch(value) or value in {".", ".."}:
            raise ValueError(
                "must be one safe path component: letters, digits, '.', '_' or '-', "
                "starting with a letter or digit, at most 128 characters"
            )
        return value

    @field_validator("date")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError(value)
            dt.date.fromisoformat(value)
        except ValueError as e:
            raise ValueError("must be an ISO date YYYY-MM-DD") from e
        return value


class RuntimeSection(_Section):
    threads: Int = Field(default=2, ge=1, le=256)
    device: Literal["cpu", "cuda", "auto"] = "cpu"


DatasetName = Literal["mnist", "fashion-mnist", "imagefolder"]


class DataSection(_Section):
    """Where the images come from and how they are split into batches."""

    dataset: DatasetName = "mnist"
    root: str = Field(default_factory=default_data_root)
    path: str | None = None  # imagefolder: PATH/train/<class>/*, PATH/test/<class>/*
    image_size: Int | None = Field(default=None, ge=4, le=1_024)  # imagefolder: resize
    channels: Int = 3  # imagefolder: images are converted to grey (1) or RGB (3)
    memory_mb: Int = Field(default=4_096, ge=16, le=1 << 22)  # imagefolder: decoded size
    val_size: Int | None = Field(default=None, ge=1)
    limit_train: Int = Field(default=0, ge=0)
    limit_test: Int = Field(default=0, ge=0)
    batch_size: Int = Field(default=64, ge=1, le=65_536)
    download: bool = True  # try torchvision's own mirrors, then the offline sources

    @field_validator("root")
    @classmethod
    def _nonempty_root(cls, value: str) -> str:
        if not value.strip():  # "" would put MNIST/raw in the working directory
            raise ValueError("must name a folder, e.g. ~/.cache/reportgen")
        return value

    @field_validator("channels")
    @classmethod
    def _grey_or_rgb(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError(f"must be 1 (grey) or 3 (RGB) (got {value})")
        return value

    @field_validator("path")
    @classmethod
    def _nonempty_path(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must name the image folder (holding train/ and test/)")
        return value


class TrainSection(_Section):
    epochs: Int = Field(default=10, ge=1, le=1_000)
    optimizer: OptimizerName = "adam"
    lr: Float = Field(default=1e-3, gt=0, le=10)
    momentum: Float = Field(default=0.9, ge=0, lt=1)  # SGD only
    eval_batch_size: Int = Field(default=512, ge=1)


_FACTORY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
BUILT_IN_ONLY = ("hidden", "dropout", "batchnorm")  # keys a python model sets in its factory


class ModelSection(_Section):
    """One network: its kind (MLP, CNN or the user's), regularizers and learning-rate schedule."""

    kind: Literal["mlp", "cnn", "python"] = "mlp"
    factory: str | None = None  # python: "package.module:callable"
    args: dict[str, Any] = Field(default_factory=dict)  # python: keyword arguments
    hidden: tuple[Annotated[Int, Field(ge=1, le=65_536)], ...] = (256, 128)
    dropout: Float = Field(default=0.0, ge=0, lt=1)
    batchnorm: bool = False
    weight_decay: Float = Field(default=0.0, ge=0, le=1)
    l1: Float = Field(default=0.0, ge=0, le=1)
    scheduler: SchedulerName = "none"
    step_size: Int = Field(default=5, ge=1)  # step
    gamma: Float = Field(default=0.5, gt=0, le=1)  # step, exponential
    plateau_factor: Float = Field(default=0.5, gt=0, lt=1)  # plateau
    plateau_patience: Int = Field(default=2, ge=0)  # plateau
    min_lr: Float = Field(default=0.0, ge=0)  # cosine eta_min, plateau min_lr
    max_lr: Float = Field(default=1e-2, gt=0)  # onecycle
    # A model that is not trained (reportgen.train.pretrained, reportgen.data.predictions):
    # its network's weights from a state dict, or no network at all, its test predictions.
    checkpoint: str | None = None  # a state dict: torch.save's file or .safetensors
    checkpoint_key: str | None = None  # where the state dict sits in a nested checkpoint
    checkpoint_prefix: str | None = None  # stripped from every key of the state dict
    predictions: str | None = None  # predictions.csv, a CSV of index/label/p<k>, or an .npz
    # Which model's rows of a CSV with a `model` column (a run's predictions.csv) to read;
    # unset: those of the model of this name, or the only model's.
    predictions_model: str | None = None

    @field_validator("hidden")
    @classmethod
    def _nonempty(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("needs at least one hidden layer width")
        return value

    @field_validator("args")
    @classmethod
    def _toml_values(cls, value: dict[str, Any]) -> dict[str, Any]:
        def check(item: Any, where: str) -> None:
            if isinstance(item, Mapping):
                for key, inner in item.items():
                    check(inner, f"{where}.{key}")
            elif isinstance(item, list | tuple):
                for inner in item:
                    if isinstance(inner, Mapping):
                        raise ValueError(f"{where}: arrays of tables are not supported here")
                    check(inner, where)
            elif not isinstance(item, bool | int | float | str):
                raise ValueError(f"{where}: {type(item).__name__} values are not supported")

        for key, item in value.items():
            check(item, f"args.{key}")
        return value

    @field_validator("factory")
    @classmethod
    def _importable_name(cls, value: str | None) -> str | None:
        if value is not None and not _FACTORY.fullmatch(value):
            raise ValueError(
                'must be "package.module:callable", e.g. "mynets:make_net" (dotted module '
                "path, a colon, the name of a function or class in it)"
            )
        return value

    @field_validator("checkpoint", "predictions")
    @classmethod
    def _nonempty_file(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must name a file")
        return value

    @property
    def source(self) -> Literal["trained", "checkpoint", "predictions"]:
        """Return how the model comes: trained by the run, or from a checkpoint or predictions."""
        if self.checkpoint is not None:
            return "checkpoint"
        return "predictions" if self.predictions is not None else "trained"

    @model_validator(mode="after")
    def _untrained_keys(self) -> ModelSection:
        if self.checkpoint is not None and self.predictions is not None:
            raise ValueError(
                "checkpoint and predictions exclude each other: a model comes from its "
                "weights or from its predictions"
            )
        given = [k for k in ("checkpoint_key", "checkpoint_prefix") if getattr(self, k) is not None]
        if given and self.checkpoint is None:
            raise ValueError(f"{given[0]} applies to a model with a checkpoint only")
        if self.predictions_model is not None and self.predictions is None:
            raise ValueError("predictions_model applies to a model with predictions only")
        return self

    @model_validator(mode="after")
    def _kind_and_keys(self) -> ModelSection:
        if self.kind == "python":
            if self.factory is None:
                raise ValueError(
                    'kind = "python" needs factory = "package.module:callable" naming the '
                    "function that builds the network"
                )
            # Judged by value: a resolved config (and the regularized defaults) list every key.
            built_in = {"hidden": (256, 128), "dropout": 0.0, "batchnorm": False}
            given = [k for k, v in built_in.items() if getattr(self, k) != v]
            if given:
                raise ValueError(
                    f"{given[0]} applies to the built-in mlp and cnn only; a python model sets "
                    "it in its factory (pass values through args)"
                )
        else:
            given = [k for k in ("factory", "args") if getattr(self, k)]
            if given:
                raise ValueError(f'{given[0]} applies to kind = "python" only')
        return self

    def as_toml_data(self) -> dict[str, Any]:
        """Return this section as the resolved config writes it (no built-in keys on python)."""
        data = self.model_dump(mode="json", exclude_none=True)
        if self.kind == "python":
            for key in BUILT_IN_ONLY:
                data.pop(key)
        else:
            data.pop("args")
        return data


REGULARIZED_DEFAULTS: dict[str, Any] = {
    "dropout": 0.3, "batchnorm": True, "weight_decay": 1e-4, "scheduler": "step",
    "step_size": 5, "gamma": 0.5,
}  # fmt: skip


# The models of a config without a [models] table: what `reportgen run` trains by default.
DEFAULT_MODELS = ("baseline", "regularized")
MAX_MODELS = 2  # metrics.json holds one paired comparison
# A model's name becomes a file name (models/NAME.pt, figures/NAME_curves.png), a dotted key
# (models.NAME.dropout) and a gate key (NAME.test_accuracy): lowercase, so that two names
# never name one file on a case-insensitive file system.
_MODEL_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MODEL_NAME_RULE = (
    "a model name is a lowercase letter, then lowercase letters, digits, '_' or '-', "
    "at most 32 characters"
)
# Names that would make a model's files clash with the run's own: "compare" (the run's
# figure compare_curves is what a model's curves figure would be called) and "significance"
# (the flat names of the paired comparison in scalars.json).
RESERVED_MODEL_NAMES = ("compare", "significance")


def model_name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name a model (None when it can)."""
    if not _MODEL_NAME.fullmatch(name):
        return MODEL_NAME_RULE
    if name in RESERVED_MODEL_NAMES:
        return f"reserved for the run's own files ({', '.join(RESERVED_MODEL_NAMES)})"
    return None


def configured_names(data: Any) -> list[str]:
    """Return the model names of a parsed config table: its ``[models]`` keys, or the defaults."""
    models = data.get("models") if isinstance(data, Mapping) else None
    if isinstance(models, Mapping):
        return [str(name) for name in models]
    return list(DEFAULT_MODELS)


def _check_model_name(name: str) -> str:
    if (problem := model_name_problem(name)) is not None:
        raise ValueError(problem)
    return name


def _model_table(value: Any) -> Any:
    if not isinstance(value, Mapping | ModelSection):
        raise ValueError(
            'must be a table of the model\'s settings, e.g. [models.NAME] with kind = "mlp"; '
            "one setting of a model is models.NAME.KEY"
        )
    return value


def _regularized_keeps_its_defaults(data: Any) -> Any:
    """Fill a given ``[models.regularized]`` table's missing keys with its own defaults.

    Without this, setting one key (``--set models.regularized.hidden=[64]``)
    would silently turn the regularized model into a plain one.  Every other
    name starts from the plain defaults.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("regularized"), Mapping):
        return data
    table = dict(data["regularized"])
    python = table.get("kind") == "python"
    for key, value in REGULARIZED_DEFAULTS.items():
        if not (python and key in BUILT_IN_ONLY):
            table.setdefault(key, value)
    return {**data, "regularized": table}


def _one_or_two(models: dict[str, ModelSection]) -> dict[str, ModelSection]:
    if not models:
        raise ValueError("needs one or two models, e.g. [models.candidate]")
    if len(models) > MAX_MODELS:
        raise ValueError(
            f"at most two models (one paired comparison), got {len(models)}: {', '.join(models)}"
        )
    return models


def default_models() -> dict[str, ModelSection]:
    """Return the models of a config without a ``[models]`` table: baseline and regularized."""
    return {"baseline": ModelSection(), "regularized": ModelSection(**REGULARIZED_DEFAULTS)}


# [models]: the user's models by name, in the order written (the first is the reference
# unless `reference` names the other).  Without the table: baseline and regularized.
ModelName = Annotated[str, AfterValidator(_check_model_name)]
ModelsSection = Annotated[
    dict[ModelName, Annotated[ModelSection, BeforeValidator(_model_table)]],
    BeforeValidator(_regularized_keeps_its_defaults),
    AfterValidator(_one_or_two),
]


class ReportSection(_Section):
    n_weights: Int = Field(default=10, ge=1, le=256)
    sample_index: Int = Field(default=0, ge=0)
    n_misclassified: Int = Field(default=10, ge=1, le=100)
    n_pair_examples: Int = Field(default=8, ge=1, le=64)
    # None: [[4, 9]] on MNIST, none (automatic pairs only) on other data
    confused_pairs: tuple[tuple[ClassRef, ClassRef], ...] | None = None
    # The module (a named_modules() name) whose output the activations figure shows: one
    # name for every model, or a table of model → name.
    layer: str | dict[str, str] | None = None
    auto_pairs: Int = Field(default=3, ge=0, le=20)
    bootstrap_resamples: Int = Field(default=1_000, ge=100, le=100_000)
    # Rows of each per-class table in the report: with more classes, the worst this many
    # (each table by its own measure); every class is in per_class.csv.
    table_rows: Int = Field(default=20, ge=1, le=100_000)
    # Top-k accuracy of every model: unset, k = 5 with at least 20 classes (none below);
    # 0 shows none; k must be below the number of classes.
    top_k: Int | None = Field(default=None, ge=0, le=1_000)
    templates: str | None = None
    # A TrueType/OpenType file the figures and the PDF fall back to for characters the DejaVu
    # fonts lack (a CJK class name); its SHA-256 and size are recorded in manifest.json.
    font: str | None = Field(default=None, min_length=1)
    # False: the run writes its metrics, predictions, models and tables, but no figures and
    # no report.html/report.pdf (a sweep's runs, by default when the sweep is large).
    # Written into config.toml only when false, so that runs made before this key existed
    # still verify byte for byte.
    render: bool = Field(default=True, exclude_if=lambda value: value is True)
    pdf: bool = True
    attributions: bool = True
    attribution_steps: Int = Field(default=50, ge=4, le=1_000)
    # Suspected label errors of the test split (confident learning on the test probabilities).
    label_issues: bool = True
    robustness: RobustnessSection = Field(default_factory=RobustnessSection)
    # Test images with an exact or near duplicate in the training or validation split.
    duplicates: bool = True

    @field_validator("top_k")
    @classmethod
    def _not_one(cls, value: int | None) -> int | None:
        if value == 1:
            raise ValueError("top-1 accuracy is the test accuracy; give 0 (none) or 2 or more")
        return value

    @field_validator("confused_pairs")
    @classmethod
    def _distinct(
        cls, value: tuple[tuple[int | str, int | str], ...] | None
    ) -> tuple[tuple[int | str, int | str], ...] | None:
        for true, pred in value or ():
            if true == pred:
                raise ValueError(f"pair [{true}, {pred}] is not a confusion: labels must differ")
        return value


def _layer_for(report: ReportSection, model: str) -> str | None:
    layer = report.layer
    return layer.get(model) if isinstance(layer, dict) else layer


MARGIN_RULE = (
    "must be a margin in percentage points, a number from 0 to 100, e.g. 0.5 (0: any "
    "significant loss of accuracy fails)"
)


def _margin_pp(value: Any) -> float | None:
    # One message for every wrong value (a string, true, -1, nan): the key's rule.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(MARGIN_RULE)
    try:
        margin = float(value)
    except ValueError as e:
        raise ValueError(MARGIN_RULE) from e
    if not 0 <= margin <= 100:  # also refuses nan
        raise ValueError(MARGIN_RULE)
    return margin


class GateSection(_Section):
    """CI gate: ``"MODEL.METRIC" = minimum`` thresholds, and a loss of accuracy beyond a margin.

    A miss makes the run exit 3 once its report is written.
    """

    fail_under: dict[str, Annotated[Float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    # Fail when the second model (the candidate) is worse than the first (the reference)
    # by more than this many percentage points, with confidence; None: no such gate.
    fail_if_worse: Annotated[float | None, PlainValidator(_margin_pp)] = None

    @field_validator("fail_under")
    @classmethod
    def _known_keys(cls, value: dict[str, float]) -> dict[str, float]:
        # Which models there are is the whole config's to check (Config._names_of_known_models).
        for key in value:
            model, _, metric = key.partition(".")
            if model_name_problem(model) is not None or metric not in GATE_METRICS:
                raise ValueError(
                    f"{key!r} is not MODEL.METRIC with MODEL a model's name and METRIC one of "
                    f"{', '.join(GATE_METRICS)}"
                )
        return dict(sorted(value.items()))


def _strings(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str, str]]:
    """Yield ``(path, where, text)`` for every string in a config value, table keys included.

    ``path`` is the key's (a table key's own: the key itself), ``where`` names
    it as a message starts: ``"run.title:"``, ``"model.args: a key"``.
    """
    if isinstance(value, BaseModel):
        value = value.model_dump()
    where = ".".join(path)
    if isinstance(value, str):
        yield path, f"{where}:", value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield (*path, key), f"{where or 'the top level'}: a key", key
                yield from _strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, path)


def hidden_text(data: Any) -> tuple[tuple[str, ...], str] | None:
    """Return the key path and the problem of the first string with a hidden character, or None.

    Control and bidirectional formatting characters: every value can reach
    the report (its title, its config table), where a NUL byte or a
    right-to-left override would corrupt or disguise the text.
    """
    for path, where, text in _strings(data, ()):
        if (hidden := hidden_character(text)) is not None:
            return path, f"{where} contains {hidden}; remove it"
    return None


class Config(_Section):
    """A whole run's configuration, every default filled in."""

    seed: Int = Field(default=0, ge=0, le=2**32 - 1)
    run: RunSection = Field(default_factory=RunSection)
    runtime: RuntimeSection = Field(default_factory=RuntimeSection)
    data: DataSection = Field(default_factory=DataSection)
    train: TrainSection = Field(default_factory=TrainSection)
    models: ModelsSection = Field(default_factory=default_models)
    # The model the other is compared against (unset: the first). After `models`, which it
    # names; the resolved config.toml writes it next to `seed`, and only when it is set, as
    # every run made before it existed wrote it.
    reference: str | None = None
    report: ReportSection = Field(default_factory=ReportSection)
    gate: GateSection = Field(default_factory=GateSection)

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        """Refuse control and bidirectional formatting characters in any string."""
        if (found := hidden_text(data)) is not None:
            raise ValueError(found[1])
        return data

    @field_validator("reference")
    @classmethod
    def _a_configured_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        names = list(info.data.get("models") or {})
        if value is not None and names and value not in names:
            raise ValueError(f"no model {value!r} (models: {', '.join(names)})")
        return value

    @model_validator(mode="after")
    def _names_of_known_models(self) -> Config:
        names = list(self.models)
        known = f"(models: {', '.join(names)})"
        if isinstance(self.report.layer, dict):
            unknown = [name for name in self.report.layer if name not in names]
            if unknown:
                raise ValueError(f"report.layer.{unknown[0]}: no such model {known}")
        for key in self.gate.fail_under:
            model = key.partition(".")[0]
            if model not in names:
                raise ValueError(f"gate.fail_under.{key}: no model {model!r} {known}")
        return self

    @model_validator(mode="after")
    def _two_models_for_fail_if_worse(self) -> Config:
        if self.gate.fail_if_worse is not None and len(self.model_items()) < 2:
            raise ValueError(
                "gate.fail_if_worse compares a candidate with a reference: it needs two models"
            )
        return self

    def layer(self, model: str) -> str | None:
        """Return ``report.layer`` for ``model``: its own entry, the shared name, or None."""
        return _layer_for(self.report, model)

    def model_items(self) -> list[tuple[str, ModelSection]]:
        """Return ``(name, section)`` for every model, in training order."""
        return list(self.models.items())

    def compared(self) -> tuple[str, str] | None:
        """Return ``(reference, other)`` of a two-model config: what the other is compared
        against; None with one model."""
        names = list(self.models)
        if len(names) < 2:
            return None
        reference = self.reference or names[0]
        return reference, next(name for name in names if name != reference)
