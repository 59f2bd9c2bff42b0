"""TOML -> validated, frozen configuration objects; ``--set`` overrides.

Validation happens once, here, at the edge: every later stage receives a
:class:`Config` and never checks types again.  Error messages name the key
path (``train.lr``) and what is allowed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from reportgen.errors import ConfigError
from reportgen.gate import GATE_METRICS

MNIST_TRAIN_SIZE = 60_000
MNIST_TEST_SIZE = 10_000
MAX_CONFIG_BYTES = 1 << 20  # a real config is a few kilobytes


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
IDX_DATASETS = ("mnist", "fashion-mnist")  # the official 60 000 / 10 000 IDX files
DEFAULT_VAL_SIZE = 5_000  # MNIST and Fashion-MNIST; an image folder holds out a tenth


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

    @model_validator(mode="after")
    def _fits_the_dataset(self) -> DataSection:
        # Judged by value, not by which keys were written: a resolved config lists them all.
        defaults = {"path": None, "image_size": None, "channels": 3, "memory_mb": 4_096}
        folder_only = [k for k, v in defaults.items() if getattr(self, k) != v]
        if self.dataset != "imagefolder" and folder_only:
            raise ValueError(
                f'data.{folder_only[0]} applies to data.dataset = "imagefolder" only '
                f"(data.dataset is {self.dataset!r})"
            )
        if self.dataset == "imagefolder" and self.path is None:
            raise ValueError(
                'data.path is required with data.dataset = "imagefolder": the folder holding '
                "train/<class>/ and test/<class>/"
            )
        if self.dataset in IDX_DATASETS:
            val_size = self.val_size or DEFAULT_VAL_SIZE
            if val_size >= MNIST_TRAIN_SIZE:
                raise ValueError(
                    f"data.val_size ({val_size}) must be below the {MNIST_TRAIN_SIZE} "
                    "training images"
                )
            available = MNIST_TRAIN_SIZE - val_size
            if self.limit_train and self.limit_train > available:
                raise ValueError(
                    f"data.limit_train ({self.limit_train}) exceeds the {available} training "
                    f"images left after data.val_size ({val_size}) are held out"
                )
            if self.limit_test > MNIST_TEST_SIZE:
                raise ValueError(
                    f"data.limit_test ({self.limit_test}) exceeds the {MNIST_TEST_SIZE} test images"
                )
        return self


class TrainSection(_Section):
    epochs: Int = Field(default=10, ge=1, le=1_000)
    optimizer: OptimizerName = "adam"
    lr: Float = Field(default=1e-3, gt=0, le=10)
    momentum: Float = Field(default=0.9, ge=0, lt=1)  # SGD only
    eval_batch_size: Int = Field(default=10_000, ge=1)


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


def _regularized_default() -> ModelSection:
    return ModelSection(**REGULARIZED_DEFAULTS)


class ModelsSection(_Section):
    baseline: ModelSection = Field(default_factory=ModelSection)
    regularized: ModelSection = Field(default_factory=_regularized_default)

    @model_validator(mode="before")
    @classmethod
    def _regularized_keeps_its_defaults(cls, data: Any) -> Any:
        """Fill a given ``[models.regularized]`` table's missing keys with its own defaults.

        Without this, setting one key (``--set models.regularized.hidden=[64]``)
        would silently turn the regularized model into a plain one.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("regularized"), Mapping):
            return data
        table = dict(data["regularized"])
        python = table.get("kind") == "python"
        for key, value in REGULARIZED_DEFAULTS.items():
            if not (python and key in BUILT_IN_ONLY):
                table.setdefault(key, value)
        return {**data, "regularized": table}


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
    templates: str | None = None
    pdf: bool = True
    attributions: bool = True
    attribution_steps: Int = Field(default=50, ge=4, le=1_000)

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


class GateSection(_Section):
    """CI gate: ``"MODEL.METRIC" = minimum`` thresholds; a miss makes the run exit 3."""

    fail_under: dict[str, Annotated[Float, Field(ge=0, le=1)]] = Field(default_factory=dict)

    @field_validator("fail_under")
    @classmethod
    def _known_keys(cls, value: dict[str, float]) -> dict[str, float]:
        models = sorted(ModelsSection.model_fields)
        for key in value:
            model, _, metric = key.partition(".")
            if model not in models or metric not in GATE_METRICS:
                raise ValueError(
                    f"{key!r} is not MODEL.METRIC with MODEL one of {', '.join(models)} "
                    f"and METRIC one of {', '.join(GATE_METRICS)}"
                )
        return dict(sorted(value.items()))


class Config(_Section):
    """A whole run's configuration, every default filled in."""

    seed: Int = Field(default=0, ge=0, le=2**32 - 1)
    run: RunSection = Field(default_factory=RunSection)
    runtime: RuntimeSection = Field(default_factory=RuntimeSection)
    data: DataSection = Field(default_factory=DataSection)
    train: TrainSection = Field(default_factory=TrainSection)
    models: ModelsSection = Field(default_factory=ModelsSection)
    report: ReportSection = Field(default_factory=ReportSection)
    gate: GateSection = Field(default_factory=GateSection)

    @model_validator(mode="after")
    def _sample_in_test_set(self) -> Config:
        if self.data.dataset not in IDX_DATASETS:  # checked once the folder is read
            return self
        limit = self.data.limit_test or MNIST_TEST_SIZE
        if self.report.sample_index >= limit:
            raise ValueError(
                f"report.sample_index ({self.report.sample_index}) must be below the number "
                f"of test images ({limit})"
            )
        return self

    @model_validator(mode="after")
    def _layers_of_known_models(self) -> Config:
        if isinstance(self.report.layer, dict):
            models = list(ModelsSection.model_fields)
            unknown = [name for name in self.report.layer if name not in models]
            if unknown:
                raise ValueError(
                    f"report.layer.{unknown[0]}: no such model (models: {', '.join(models)})"
                )
        return self

    def layer(self, model: str) -> str | None:
        """Return ``report.layer`` for ``model``: its own entry, the shared name, or None."""
        return _layer_for(self.report, model)

    def model_items(self) -> list[tuple[str, ModelSection]]:
        """Return ``(name, section)`` for every model, in training order."""
        return [(name, getattr(self.models, name)) for name in ModelsSection.model_fields]


# --------------------------------------------------------------------------- loading


def parse_toml(text: str, *, source: str) -> dict[str, Any]:
    """Parse TOML text; a syntax error names the source, line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: invalid TOML: {e}") from e
    except RecursionError as e:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"{source}: invalid TOML: arrays or tables nested too deeply") from e


def read_config_text(path: str | os.PathLike[str]) -> str:
    """Return a config file's text: UTF-8 (a byte-order mark is allowed), at most 1 MiB.

    The size is checked before reading, and no more than the limit is read,
    so ``/dev/zero`` or a pipe cannot fill the memory.
    """
    source = os.fspath(path)
    limit = MAX_CONFIG_BYTES
    too_large = f"{source}: larger than {limit // 2**20} MiB; a config file is a few kilobytes"
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > limit:
                raise ConfigError(too_large)
            data = f.read(limit + 1)
    except FileNotFoundError as e:
        raise ConfigError(f"{source}: config file not found") from e
    except OSError as e:
        raise ConfigError(f"{source}: cannot read config file: {e.strerror or e}") from e
    if len(data) > limit:
        raise ConfigError(too_large)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{source}: not UTF-8 text: byte 0x{data[e.start]:02x} on line {line}; "
            "save the file as UTF-8"
        ) from e


_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")  # str.splitlines breaks on each


def unsafe_character(text: str) -> str | None:
    """Return what makes ``text`` unfit for one line of text (None when nothing does).

    That is a line break (any that ``str.splitlines`` knows), another control
    character except tab, or a lone surrogate: how Python hands over
    command-line bytes that are not UTF-8.
    """
    for char in text:
        if char in _LINE_BREAKS:
            return f"a line break (U+{ord(char):04X})"
        category = unicodedata.category(char)
        if category == "Cs":
            return "bytes that are not UTF-8"
        if category == "Cc" and char != "\t":
            return f"the control character U+{ord(char):04X}"
    return None


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a TOML-parsed value.

    A value that is not valid TOML is taken as a bare string, so
    ``--set train.optimizer=sgd`` works without quotes.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"--set {_shown(item)}: expected KEY=VALUE, e.g. --set train.epochs=2")
    parts = key.split(".")
    if not key or any(not p.strip() for p in parts):
        raise ConfigError(
            f"--set {_shown(item)}: empty key; expected KEY=VALUE, e.g. train.epochs=2"
        )
    # A line break would end the TOML statement `v = …` and drop the rest unseen.
    for where, text in (("key", key), ("value", raw)):
        if (unsafe := unsafe_character(text)) is not None:
            escapable = "UTF-8" not in unsafe  # a TOML string can hold it as an escape
            hint = r" (inside a quoted TOML string, write it as \n or \uXXXX)" if escapable else ""
            raise ConfigError(f"--set {_shown(item)}: the {where} contains {unsafe}{hint}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError as e:
        raise ConfigError(f"--set {_shown(item)}: arrays or tables nested too deeply") from e
    return [p.strip() for p in parts], value


def _shown(item: str, limit: int = 80) -> str:
    """Return ``repr(item)``, cut short so a huge ``--set`` still gives a readable line."""
    return repr(item) if len(item) <= limit else f"{item[:limit]!r}… ({len(item)} characters)"


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``KEY=VALUE`` override set."""
    result = _deep_copy(data)
    for item in overrides:
        path, value = parse_override(item)
        node = result
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise ConfigError(f"--set {_shown(item)}: {where} is a value, not a table")
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def validate(data: Mapping[str, Any], *, source: str = "config") -> Config:
    """Validate a parsed TOML mapping into a frozen :class:`Config`."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, data, source=source)) from e


def load_config(
    path: str | os.PathLike[str] | None,
    overrides: Iterable[str] = (),
    *,
    fail_under: Iterable[str] = (),
) -> Config:
    """Read a TOML file (or the defaults when ``path`` is None) and apply overrides.

    ``fail_under`` items are ``MODEL.METRIC=VALUE`` thresholds added to ``gate.fail_under``.
    """
    if path is None:
        data: dict[str, Any] = {}
        source = "defaults"
    else:
        source = str(path)
        data = parse_toml(read_config_text(path), source=source)
    data = apply_overrides(data, overrides)
    for item in fail_under:
        key, sep, raw = item.partition("=")
        try:
            minimum: Any = float(raw)
        except ValueError:
            minimum = raw  # validation reports it with the key
        if not sep or not key.strip():
            raise ConfigError(f"--fail-under {item!r}: expected MODEL.METRIC=VALUE")
        gate = data.setdefault("gate", {})
        if not isinstance(gate, dict) or not isinstance(gate.setdefault("fail_under", {}), dict):
            raise ConfigError("gate.fail_under must be a table of MODEL.METRIC = minimum")
        gate["fail_under"][key.strip()] = minimum
    return validate(data, source=source)


# --------------------------------------------------------------------------- the run's date


def source_date_epoch(environ: Mapping[str, str]) -> int | None:
    """Return ``SOURCE_DATE_EPOCH`` as seconds since 1970, or None when it is unset or empty."""
    raw = environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    try:
        epoch = int(raw)
        dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    except (ValueError, OverflowError, OSError) as e:
        raise ConfigError(
            f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970 (got {raw!r})"
        ) from e
    return epoch


def run_day(environ: Mapping[str, str], now: dt.datetime) -> str:
    """Return the default ``run.date``: SOURCE_DATE_EPOCH's day if set, else ``now``'s (UTC)."""
    epoch = source_date_epoch(environ)
    moment = now if epoch is None else dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.astimezone(dt.UTC).date().isoformat()


def with_date(
    config: Config,
    day: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> Config:
    """Return ``config`` with a ``run.date`` where it has none.

    The date is ``day`` when given, else :func:`run_day` of ``environ``
    (default ``os.environ``) and ``now`` (default the clock).
    """
    if config.run.date is not None:
        return config
    if day is None:
        day = run_day(os.environ if environ is None else environ, now or dt.datetime.now(dt.UTC))
    run = config.run.model_copy(update={"date": day})
    return validate({**config.model_dump(mode="json"), "run": run.model_dump(mode="json")})


# --------------------------------------------------------------------------- output


def to_toml(config: Config) -> str:
    """Serialize a config to TOML with every default filled in (stable key order)."""
    data = config.model_dump(mode="json", exclude_none=True)
    data["models"] = {name: spec.as_toml_data() for name, spec in config.model_items()}
    return _dump_table(data, prefix=[])


def _dump_table(table: Mapping[str, Any], prefix: list[str]) -> str:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    lines = []
    if prefix and scalars:
        lines.append(f"[{'.'.join(prefix)}]")
    lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in scalars]
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, sub in tables:
        block = _dump_table(sub, [*prefix, key])
        out += ("\n" if out else "") + block
    return out


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def toml_value(value: Any) -> str:
    """Return a value as TOML writes it: ``"adam"``, ``0.001``, ``true``, ``[256, 128]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


# --------------------------------------------------------------------------- messages


def format_validation_error(error: ValidationError, data: Mapping[str, Any], *, source: str) -> str:
    """Turn pydantic's report into one line per problem: ``key.path: what is allowed``."""
    problems = [_describe(item, data) for item in error.errors(include_url=False)]
    return f"{source}: " + "; ".join(problems)


def _describe(item: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    loc = [str(p) for p in item["loc"]]
    kind = item["type"]
    if kind == "extra_forbidden":
        parent = _section_model(loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        hint = difflib.get_close_matches(loc[-1], allowed, n=1)
        suggestion = f"; did you mean {'.'.join([*loc[:-1], hint[0]])!r}?" if hint else ""
        return f"{'.'.join(loc)}: unknown key (allowed: {', '.join(allowed)}){suggestion}"
    key = ".".join(loc)
    message = item["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    if "input" in item and kind != "missing" and not isinstance(item["input"], Mapping):
        message += f" (got {item['input']!r})"
    return f"{key}: {message}" if key else message


def _section_model(loc: list[str]) -> type[BaseModel] | None:
    """Return the pydantic model that lives at ``loc`` inside :class:`Config`."""
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
