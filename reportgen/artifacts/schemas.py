"""The JSON Schema of each JSON file a run writes, generated from its typed contract.

``docs/schemas/`` publishes them for tools that read a run without
reportgen; ``tests/test_schemas.py`` keeps the published files equal to what
:func:`json_schemas` returns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from reportgen.artifacts.manifest import RunManifest
from reportgen.artifacts.metrics import Metrics
from reportgen.artifacts.summary import Summary
from reportgen.core.fileio import json_text

DIALECT = "https://json-schema.org/draft/2020-12/schema"  # the dialect pydantic generates
CONTRACTS: dict[str, type[BaseModel]] = {
    "metrics.schema.json": Metrics,
    "summary.schema.json": Summary,
    "manifest.schema.json": RunManifest,
}


def json_schema(contract: type[BaseModel]) -> dict[str, Any]:
    """Return the JSON Schema of the documents ``contract`` reads (keys as the file spells them)."""
    return {"$schema": DIALECT, **contract.model_json_schema(by_alias=True, mode="validation")}


def json_schemas() -> dict[str, str]:
    """Return file name → schema text (sorted keys: equal contracts give equal bytes)."""
    return {name: json_text(json_schema(contract)) for name, contract in CONTRACTS.items()}
