"""SWEEP.toml -> a validated, frozen sweep specification: points × seeds.

A sweep file names a base configuration, the seeds, and either a ``[grid]``
of config keys to lists of values (their cartesian product) or a list of
``[[points]]``, each a table of overrides; with neither, the base
configuration alone is run over every seed.  Everything is checked here,
once, before any run starts: unknown keys (with a did-you-mean), wrong
types, an empty grid, duplicate points, keys that are not config keys, and
every point's resolved configuration, so a bad value fails in seconds, not
after the first runs.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reportgen.config.loading import (
    anchor_paths,
    apply_overrides,
    parse_toml,
    read_config_text,
    validate,
)
from reportgen.config.schema import Config
from reportgen.config.toml import flatten, toml_value
from reportgen.core.errors import ConfigError
from reportgen.core.text import hidden_character

MAX_RUNS = 200  # more than this needs --yes: a typo in a grid should not start a week of work
DEFAULT_BASE = Path("config.toml")
TOP_KEYS = ("config", "title", "seeds", "run_reports", "overrides", "grid", "points")
# What each run of a sweep writes besides its metrics, predictions, models and tables:
# "none" nothing more, "html" its figures and report.html, "full" also report.pdf (unless
# the config sets report.pdf = false), as ``reportgen run`` does.
RUN_REPORTS = ("none", "html", "full")
FULL_REPORTS_UP_TO = 5  # the default: "full" for a sweep of at most this many runs, else "none"
RENDER_KEY = "report.render"
POINT_LABEL_KEY = "label"
MAX_LABEL = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")

SweepKind = Literal["seeds", "grid", "points"]
RunReports = Literal["none", "html", "full"]


@dataclass(frozen=True)
class Point:
    """One setting of the swept keys: its label, its overrides and its resolved config."""

    label: str  # a safe path component: points/<label>/seed-<n>
    overrides: tuple[tuple[str, Any], ...]  # (dotted key, value), in the sweep's key order
    config: Config  # the base with ``overrides`` applied; ``seed`` is the sweep's first seed

    def value(self, key: str) -> Any:
        """Return this point's value of a swept key (None when it does not set it)."""
        return dict(self.overrides).get(key)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: what to run, before any run has started."""

    source: str  # the SWEEP.toml it came from, as given
    title: str
    kind: SweepKind
    seeds: tuple[int, ...]
    keys: tuple[str, ...]  # the swept config keys, in file order
    points: tuple[Point, ...]
    # Where a kind = "python" model's factory module may be imported from besides the
    # installed packages: the base config's folder (the working directory without one).
    code_dir: str | None = None
    run_reports: RunReports = "full"  # what each run writes besides its data (RUN_REPORTS)

    @property
    def run_count(self) -> int:
        return len(self.points) * len(self.seeds)


# --------------------------------------------------------------------------- config keys


def config_keys(config: Config | None = None) -> list[str]:
    """Return every dotted key ``config`` (the defaults: None) may set, e.g.
    ``models.regularized.dropout``: its own models' keys, by their names."""
    keys = flatten((config or Config()).model_dump(mode="json")).keys()
    # Optional keys whose default is unset (None) are values too.
    optional = {"run.date", "report.templates", "report.font", "reference", RENDER_KEY}
    return sorted({*keys, *optional} - {"gate.fail_under"})


def _check_key(key: str, where: str, known: Sequence[str]) -> None:
    if key == "seed":
        raise ConfigError(f"{where}: 'seed' cannot be swept here; list the seeds in 'seeds'")
    if key.startswith("gate.") or key == "gate":
        raise ConfigError(f"{where}: {key!r}: the gate is given with --fail-under for the sweep")
    if key == RENDER_KEY:
        raise ConfigError(
            f"{where}: {key!r} is set for every run by the sweep's run_reports "
            f"({', '.join(map(repr, RUN_REPORTS))})"
        )
    if key not in known:
        hint = difflib.get_close_matches(key, known, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"{where}: {key!r} is not a config key{suggestion}")


# --------------------------------------------------------------------------- labels


def _short_names(keys: Sequence[str]) -> dict[str, str]:
    """Return the fewest trailing parts of each key that tell the keys apart."""
    deepest = max((k.count(".") + 1 for k in keys), default=1)
    for depth in range(1, deepest + 1):
        names = {k: ".".join(k.split(".")[-depth:]) for k in keys}
        if len(set(names.values())) == len(names):
            return names
    return {k: k for k in keys}


def value_text(value: Any) -> str:
    """Return a swept value as a label shows it: ``0.3``, ``sgd``, ``[256,128]``, ``true``."""
    if value is None:
        return "unset"
    if isinstance(value, str):
        return value
    return toml_value(value).replace(" ", "")


def safe_label(text: str) -> str:
    """Return ``text`` as one safe path component: odd characters become ``_``."""
    label = _UNSAFE.sub("_", text)[:MAX_LABEL]
    if not label or label.startswith("."):
        label = "_" + label[: MAX_LABEL - 1]
    return label


def point_label(overrides: Sequence[tuple[str, Any]], short: Mapping[str, str]) -> str:
    """Return a point's label from its overrides: ``dropout=0.3,lr=0.01`` (``base`` for none)."""
    if not overrides:
        return "base"
    return safe_label(",".join(f"{short[k]}={value_text(v)}" for k, v in overrides))


# --------------------------------------------------------------------------- reading


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a table of config keys, got {value!r}")
    return value


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    where = f"{source}: seeds"
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: must be a non-empty array of integers, e.g. [0, 1, 2, 3, 4]")
    for seed in value:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ConfigError(f"{where}: {seed!r} is not an integer from 0 to 2**32 - 1")
    duplicates = sorted({s for s in value if value.count(s) > 1})
    if duplicates:
        raise ConfigError(f"{where}: {', '.join(map(str, duplicates))} listed twice")
    return tuple(value)


def _grid_points(
    grid: dict[str, Any], where: str, known: Sequence[str]
) -> list[list[tuple[str, Any]]]:
    flat = flatten(grid)
    if not flat:
        raise ConfigError(f"{where}: empty grid; give at least one key with a list of values")
    for key, values in flat.items():
        _check_key(key, where, known)
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{where}: {key!r} must be a non-empty array of values, e.g. [0.1, 0.3, 0.5]"
            )
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:
            raise ConfigError(f"{where}: {key!r} lists {value_text(repeated[0])} twice")
    columns = [[(key, value) for value in values] for key, values in flat.items()]
    return [list(combo) for combo in itertools.product(*columns)]


def _list_points(
    points: Any, where: str, known: Sequence[str]
) -> tuple[list[list[tuple[str, Any]]], list[str | None]]:
    if not isinstance(points, list) or not points:
        raise ConfigError(f"{where}: must be a non-empty array of tables ([[points]])")
    overrides, labels = [], []
    for i, point in enumerate(points):
        here = f"{where}[{i}]"
        table = dict(_table(point, here))
        label = table.pop(POINT_LABEL_KEY, None)
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise ConfigError(f"{here}.label: must be a non-empty string")
        if label is not None and (hidden := hidden_character(label)) is not None:
            raise ConfigError(f"{here}.label: contains {hidden}; remove it")
        flat = flatten(table)
        for key in flat:
            _check_key(key, here, known)
        overrides.append(list(flat.items()))
        labels.append(label)
    return overrides, labels


def run_reports(value: Any, runs: int, source: str) -> RunReports:
    """Return the sweep's ``run_reports``: as given, else "full" for a few runs, "none" for more.

    Raises
    ------
    ConfigError
        The value is not one of :data:`RUN_REPORTS`.
    """
    if value is None:
        return "full" if runs <= FULL_REPORTS_UP_TO else "none"
    if value not in RUN_REPORTS:
        allowed = ", ".join(f'"{v}"' for v in RUN_REPORTS)
        raise ConfigError(f"{source}: run_reports: must be one of {allowed}, got {value!r}")
    return value


def report_overrides(reports: RunReports) -> list[tuple[str, Any]]:
    """Return the config overrides that make a run write what ``run_reports`` asks for."""
    if reports == "none":
        return [(RENDER_KEY, False)]
    if reports == "html":
        return [(RENDER_KEY, True), ("report.pdf", False)]
    return [(RENDER_KEY, True)]


def _resolve(
    base: dict[str, Any], overrides: Iterable[tuple[str, Any]], where: str, seed: int
) -> Config:
    items = [f"{key}={toml_value(value)}" for key, value in overrides]
    try:
        data = apply_overrides(base, items)
    except (ConfigError, TypeError) as e:
        raise ConfigError(f"{where}: {e}") from e
    data["seed"] = seed
    return validate(data, source=where)


def load_sweep(
    path: str | os.PathLike[str], *, yes: bool = False, max_runs: int = MAX_RUNS
) -> SweepSpec:
    """Read and validate a sweep file; every point's config is resolved and checked.

    Raises
    ------
    ConfigError
        One line naming the file, the key and what is allowed.
    """
    source = os.fspath(path)
    data = parse_toml(read_config_text(path), source=source)
    for key in data:
        if key not in TOP_KEYS:
            hint = difflib.get_close_matches(key, TOP_KEYS, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(
                f"{source}: {key}: unknown key (allowed: {', '.join(TOP_KEYS)}){suggestion}"
            )
    seeds = _seeds(data.get("seeds"), source)
    title = data.get("title", "")
    if not isinstance(title, str):
        raise ConfigError(f"{source}: title: must be a string")
    if (hidden := hidden_character(title)) is not None:
        raise ConfigError(f"{source}: title: contains {hidden}; remove it")
    base, base_path = _base_config(data.get("config"), Path(source).parent, source)
    known = config_keys(validate(base, source=source))
    common = flatten(_table(data.get("overrides", {}), f"{source}: overrides"))
    for key in common:
        _check_key(key, f"{source}: overrides", known)
    base = _resolve(base, common.items(), f"{source}: overrides", seeds[0]).model_dump(mode="json")

    if "grid" in data and "points" in data:
        raise ConfigError(f"{source}: give either [grid] or [[points]], not both")
    kind: SweepKind
    if "grid" in data:
        kind = "grid"
        combos = _grid_points(_table(data["grid"], f"{source}: grid"), f"{source}: grid", known)
        given: list[str | None] = [None] * len(combos)
    elif "points" in data:
        kind = "points"
        combos, given = _list_points(data["points"], f"{source}: points", known)
    else:
        kind, combos, given = "seeds", [[]], [None]
    keys = tuple(dict.fromkeys(key for combo in combos for key, _ in combo))
    short = _short_names(keys)
    reports = run_reports(data.get("run_reports"), len(combos) * len(seeds), source)

    points: list[Point] = []
    seen: dict[tuple[tuple[str, str], ...], int] = {}
    labels: dict[str, int] = {}
    for i, (combo, label) in enumerate(zip(combos, given, strict=True)):
        where = f"{source}: point {i + 1}" + (f" ({label})" if label else "")
        identity = tuple(sorted((k, toml_value(v)) for k, v in combo))
        if identity in seen:
            raise ConfigError(f"{where}: the same overrides as point {seen[identity] + 1}")
        seen[identity] = i
        name = safe_label(label) if label else point_label(combo, short)
        if name in labels:
            raise ConfigError(
                f"{where}: label {name!r} is used by point {labels[name] + 1} too; "
                "give each point its own 'label'"
            )
        labels[name] = i
        config = _resolve(base, [*combo, *report_overrides(reports)], where, seeds[0])
        points.append(Point(name, tuple(combo), config))

    code_dir = str((base_path.parent if base_path is not None else Path.cwd()).resolve())
    spec = SweepSpec(
        source, title or _default_title(keys), kind, seeds, keys, tuple(points), code_dir, reports
    )
    if spec.run_count > max_runs and not yes:
        raise ConfigError(
            f"{source}: {spec.run_count} runs ({len(points)} points × {len(seeds)} seeds) are "
            f"more than {max_runs}; pass --yes to start them all"
        )
    return spec


def _base_config(value: Any, folder: Path, source: str) -> tuple[dict[str, Any], Path | None]:
    """Return the base config's table and path: ``config`` (relative to the sweep file), else
    the defaults (``./config.toml`` when present)."""
    if value is None:
        path = DEFAULT_BASE if DEFAULT_BASE.is_file() else None
    elif isinstance(value, str) and value.strip():
        path = folder / os.path.expanduser(value)
    else:
        raise ConfigError(f"{source}: config: must be the path of a config file (TOML)")
    if path is None:
        return {}, None
    data = anchor_paths(parse_toml(read_config_text(path), source=str(path)), path.parent)
    validate(data, source=str(path))  # a broken base is named as such, not as a point
    return data, path


def _default_title(keys: Sequence[str]) -> str:
    if not keys:
        return "Seed sweep"
    return "Sweep over " + ", ".join(keys)
