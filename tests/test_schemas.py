"""docs/schemas/ holds the JSON Schema of metrics.json, summary.json and manifest.json.

After changing a contract, rewrite them with ``REPORTGEN_UPDATE_README=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reportgen.artifacts.schemas import json_schemas

SCHEMAS = Path(__file__).parent.parent / "docs" / "schemas"
UPDATE = os.environ.get("REPORTGEN_UPDATE_README") == "1"


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_published_schema_is_the_contracts(name: str) -> None:
    expected = json_schemas()[name]
    if UPDATE:
        SCHEMAS.mkdir(exist_ok=True)
        (SCHEMAS / name).write_text(expected, encoding="utf-8")
    published = (SCHEMAS / name).read_text(encoding="utf-8")
    assert published == expected, (
        f"docs/schemas/{name} differs from its contract; if the change is intended, rerun "
        "with REPORTGEN_UPDATE_README=1"
    )


def test_schemas_describe_the_files_a_run_writes(quick_run: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for name, document in (("metrics.schema.json", "metrics.json"),
                           ("summary.schema.json", "summary.json"),
                           ("manifest.schema.json", "manifest.json")):  # fmt: skip
        schema = json.loads(json_schemas()[name])
        jsonschema.validate(json.loads((quick_run / document).read_text()), schema)
        broken = {**json.loads((quick_run / document).read_text()), "unknown_key": 1}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
