"""Configuration data -> TOML text and flat dotted keys: how a config is written and compared."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reportgen.config.schema import Config


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


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return a nested table as ``{"dotted.key": value}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def setting_text(value: Any) -> str:
    """Return a setting as TOML writes it (``"adam"``, ``0.001``, ``[256, 128]``), or ``unset``."""
    return "unset" if value is None else toml_value(value)
