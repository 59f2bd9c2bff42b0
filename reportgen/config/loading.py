"""TOML text -> a validated :class:`~reportgen.config.schema.Config`; ``--set``; messages.

Validation happens once, here, at the edge: every later stage receives a
frozen :class:`Config` and never checks types again.  Error messages name
the key path (``train.lr``) and what is allowed.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from reportgen.config.schema import (
    DEFAULT_MODELS,
    Config,
    configured_names,
    hidden_text,
    model_name_problem,
)
from reportgen.config.shortcuts import Setting, apply_settings, evaluated_models
from reportgen.core.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # a real config is a few kilobytes
# The settings that name a file or folder: relative in a config file, they are
# relative to that file's folder; in --set, to the working directory.
PATH_KEYS = (
    ("data", "path"), ("data", "root"), ("report", "templates"), ("report", "font")
)  # fmt: skip
# The same, in every model's table (models.NAME.checkpoint, models.NAME.predictions).
MODEL_PATH_KEYS = ("checkpoint", "predictions")


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


def anchor_paths(data: Mapping[str, Any], folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with its relative :data:`PATH_KEYS` joined onto ``folder``.

    ``folder`` is the config file's folder as given (``""`` for the working
    directory), so a config read from where it lies keeps its paths as
    written, and the resolved config records paths a later run from the same
    directory finds again.  ``~`` and absolute paths are left as they are;
    values that are not strings are left to validation.
    """
    result = _deep_copy(data)
    models = result.get("models")
    found = [(result.get(section), key) for section, key in PATH_KEYS]
    if isinstance(models, dict):
        found += [(table, key) for table in models.values() for key in MODEL_PATH_KEYS]
    for table, key in found:
        if not isinstance(table, dict):
            continue
        value = table.get(key)
        if not isinstance(value, str) or not value.strip() or value.startswith("~"):
            continue
        if not os.path.isabs(value):
            table[key] = os.path.normpath(os.path.join(folder, value))
    return result


def _shown(item: str, limit: int = 80) -> str:
    """Return ``repr(item)``, cut short so a huge ``--set`` still gives a readable line."""
    return repr(item) if len(item) <= limit else f"{item[:limit]!r}… ({len(item)} characters)"


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``KEY=VALUE`` override set.

    Without a ``[models]`` table, a ``models.…`` override sets a key of the
    default models (``models.regularized.dropout=0.5`` keeps the baseline).
    """
    result = _deep_copy(data)
    overrides = list(overrides)
    if "models" not in result and any(parse_override(item)[0][0] == "models" for item in overrides):
        result["models"] = {name: {} for name in DEFAULT_MODELS}
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


Origins = Mapping[tuple[str, ...], str]  # a key's path -> what set it, e.g. "--set 'seed=x'"


def validate(
    data: Mapping[str, Any], *, source: str = "config", origins: Origins | None = None
) -> Config:
    """Validate a parsed TOML mapping into a frozen :class:`Config`.

    A problem is named after what set its key: the matching entry of
    ``origins`` (a ``--set`` option, a ``--fail-under`` threshold), else ``source``.
    """
    if (found := hidden_text(data)) is not None:  # named after what set it, as below
        path, problem = found
        raise ConfigError(f"{_origin(path, origins or {}) or source}: {problem}")
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(
            format_validation_error(e, data, source=source, origins=origins or {})
        ) from e


def load_config(
    path: str | os.PathLike[str] | None,
    overrides: Iterable[str] = (),
    *,
    fail_under: Iterable[str] = (),
    settings: Iterable[Setting] = (),
    evaluate: bool = False,
) -> Config:
    """Read a TOML file (or the defaults when ``path`` is None) and apply overrides.

    ``fail_under`` items are ``MODEL.METRIC=VALUE`` thresholds added to ``gate.fail_under``.
    ``settings`` are keys set by other options (:mod:`reportgen.config.shortcuts`),
    after ``overrides``; ``evaluate`` keeps only the models that name a checkpoint
    or a predictions file (``reportgen evaluate``).
    Relative paths in the file are relative to its folder (:func:`anchor_paths`);
    in ``overrides``, to the working directory.
    """
    if path is None:
        data: dict[str, Any] = {}
        source = "defaults"
    else:
        source = str(path)
        data = parse_toml(read_config_text(path), source=source)
        data = anchor_paths(data, os.path.dirname(path))
    overrides = list(overrides)
    data = apply_overrides(data, overrides)
    origins = {tuple(parse_override(item)[0]): f"--set {_shown(item)}" for item in overrides}
    data, set_by = apply_settings(data, settings)
    origins.update(set_by)
    if evaluate:
        data = evaluated_models(data)
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
        origin = f"--fail-under {_shown(item)}"
        model = key.strip().partition(".")[0]
        # Each threshold alone, so that its problems name the option that gave it; with a
        # model of its own name, so that only the metric and the value are judged here.
        probe: dict[str, Any] = {"gate": {"fail_under": {key.strip(): minimum}}}
        if model_name_problem(model) is None:
            probe["models"] = {model: {}}
        try:
            Config.model_validate(probe)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, {}, source=origin)) from e
        names = configured_names(data)
        if model not in names:
            raise ConfigError(
                f"{origin}: gate.fail_under: no model {model!r} (models: {', '.join(names)})"
            )
        gate["fail_under"][key.strip()] = minimum
    return validate(data, source=source, origins=origins)


def format_validation_error(
    error: ValidationError, data: Mapping[str, Any], *, source: str, origins: Origins | None = None
) -> str:
    """Turn pydantic's report into one line: ``origin: key.path: what is allowed; ...``.

    Problems from the same origin share one prefix, in the order pydantic reports them.
    """
    grouped: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        origin = _origin(tuple(str(p) for p in item["loc"]), origins or {}) or source
        grouped.setdefault(origin, []).append(_describe(item, data))
    return "; ".join(f"{origin}: " + "; ".join(problems) for origin, problems in grouped.items())


def _origin(loc: tuple[str, ...], origins: Origins) -> str | None:
    """Return what set ``loc`` or the nearest table above it, if an option did.

    A table key's own problem (``models.NAME``) is the option's that set a key inside it.
    """
    if loc[-1:] == ("[key]",):
        loc = loc[:-1]
        inside = [origin for path, origin in origins.items() if path[: len(loc)] == loc]
        if inside:
            return inside[0]
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in origins:
            return origins[loc[:depth]]
    return None


def _describe(item: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    loc = [str(p) for p in item["loc"]]
    kind = item["type"]
    if kind == "extra_forbidden":
        parent = _section_model(loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        hint = difflib.get_close_matches(loc[-1], allowed, n=1)
        suggestion = f"; did you mean {'.'.join([*loc[:-1], hint[0]])!r}?" if hint else ""
        return f"{'.'.join(loc)}: unknown key (allowed: {', '.join(allowed)}){suggestion}"
    key = ".".join(part for part in loc if part != "[key]")  # a table key's own problem
    message = item["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    if "input" in item and kind != "missing" and not isinstance(item["input"], Mapping):
        message += f" (got {item['input']!r})"
    return f"{key}: {message}" if key else message


def _section_model(loc: list[str]) -> type[BaseModel] | None:
    """Return the pydantic model that lives at ``loc`` inside :class:`Config`.

    A table of named tables (``models.NAME``) passes the name on to its tables' model.
    """
    model: type[BaseModel] = Config
    parts = iter(loc)
    for part in parts:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            if typing.get_origin(annotation) is typing.Annotated:
                annotation = typing.get_args(annotation)[0]
            if next(parts, None) is None:
                return None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
