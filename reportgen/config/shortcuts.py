"""Command-line options that are shortcuts for config keys, and the models ``evaluate`` takes.

``--fail-if-worse [MARGIN]`` sets ``gate.fail_if_worse``; ``evaluate``'s
``--predictions NAME=FILE``, ``--checkpoint NAME=FILE`` and ``--reference NAME``
set ``models.NAME.predictions``, ``models.NAME.checkpoint`` and ``reference``.
Each becomes a :class:`Setting` that remembers the option it came from, so a
problem with its value names that option.  Pure functions: no file is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reportgen.core.errors import ConfigError

# The keys by which a model names weights or predictions made elsewhere instead of training.
SOURCE_KEYS = ("checkpoint", "predictions")
# A model name as one part of a dotted key: no dots, no spaces.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
NO_MODEL = (
    "evaluate: no model to evaluate: give --predictions NAME=FILE or --checkpoint NAME=FILE "
    "(or set models.NAME.predictions / models.NAME.checkpoint in the config), e.g. "
    "--predictions candidate=predictions.csv"
)


@dataclass(frozen=True)
class Setting:
    """One config key set by a command-line option other than ``--set``."""

    path: tuple[str, ...]  # e.g. ("models", "production", "predictions")
    value: Any
    origin: str  # the option as given, e.g. "--predictions 'production=prod.csv'"


def fail_if_worse(raw: str) -> Setting:
    """Return ``--fail-if-worse MARGIN`` as ``gate.fail_if_worse`` (the bare flag gives "0").

    The value is a number when it reads as one; anything else is kept as given
    and refused by validation, with this option named.
    """
    value: Any
    try:
        value = float(raw)
    except ValueError:
        value = raw
    return Setting(("gate", "fail_if_worse"), value, f"--fail-if-worse {raw!r}")


def model_files(option: str, items: Sequence[str], key: str) -> list[Setting]:
    """Return each ``NAME=FILE`` of ``option`` as ``models.NAME.<key> = FILE``.

    Raises :class:`ConfigError` for an item that is not ``NAME=FILE`` with a
    model name usable as a config key, or a name given twice.
    """
    settings: list[Setting] = []
    seen: set[str] = set()
    for item in items:
        origin = f"{option} {item!r}"
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise ConfigError(f"{origin}: expected NAME=FILE, e.g. {option} candidate=cand.csv")
        if not _MODEL_NAME.fullmatch(name):
            raise ConfigError(
                f"{origin}: the model name {name!r} must be letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        if name in seen:
            raise ConfigError(f"{origin}: {option} names the model {name!r} twice")
        seen.add(name)
        settings.append(Setting(("models", name, key), path, origin))
    return settings


def evaluate_settings(
    *, predictions: Sequence[str] = (), checkpoints: Sequence[str] = (), reference: str | None
) -> list[Setting]:
    """Return the config keys ``evaluate``'s model options set, in the order given."""
    settings = model_files("--predictions", predictions, "predictions")
    settings += model_files("--checkpoint", checkpoints, "checkpoint")
    if reference is not None:
        settings.append(Setting(("reference",), reference, f"--reference {reference!r}"))
    return settings


def apply_settings(
    data: Mapping[str, Any], settings: Iterable[Setting]
) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Return a copy of ``data`` with every setting made, and ``{key path: option}``.

    A setting keeps the rest of its table: ``--predictions production=p.csv``
    on a config with ``[models.production]`` adds one key to that table.
    """
    result = _deep_copy(data)
    origins: dict[tuple[str, ...], str] = {}
    for setting in settings:
        node = result
        for depth, part in enumerate(setting.path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(setting.path[: depth + 1])
                raise ConfigError(f"{setting.origin}: {where} is a value, not a table")
            node = child
        node[setting.path[-1]] = setting.value
        origins[setting.path] = setting.origin
    return result, origins


def evaluated_models(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``data`` with only the models that name a checkpoint or a predictions file.

    ``evaluate`` never trains: a model of the config that names neither is left
    out, the others keep their whole table, in the config's order.  Raises
    :class:`ConfigError` (how to give a model) when no model is left.
    """
    result = _deep_copy(data)
    models = result.get("models")
    if models is not None and not isinstance(models, dict):
        return result  # not a table: validation names the problem
    kept = {
        name: table
        for name, table in (models or {}).items()
        if isinstance(table, dict) and any(key in table for key in SOURCE_KEYS)
    }
    if not kept:
        raise ConfigError(NO_MODEL)
    result["models"] = kept
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}
