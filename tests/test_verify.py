from __future__ import annotations

from reportgen.verify import ArtifactCheck, compare_artifacts, environment_differences


def test_compare_artifacts_statuses() -> None:
    old = {"a": {"sha256": "1"}, "b": {"sha256": "2"}, "c": {"sha256": "3"}}
    new = {"a": {"sha256": "1"}, "b": {"sha256": "x"}, "d": {"sha256": "4"}}
    checks = compare_artifacts(old, new)
    assert [(c.path, c.status) for c in checks] == [
        ("a", "match"), ("b", "differs"), ("c", "missing"), ("d", "extra"),
    ]  # fmt: skip
    assert ArtifactCheck("a", "1", "1").status == "match"


def test_environment_differences_name_the_cause() -> None:
    old = {"versions": {"torch": "2.14.1"}, "hardware": {"cpu": "A"}, "threads": 2}
    new = {"versions": {"torch": "2.14.1"}, "hardware": {"cpu": "B"}, "threads": 1}
    assert environment_differences(old, new) == ["hardware cpu: A → B", "threads: 2 → 1"]
    assert environment_differences(old, old) == []
