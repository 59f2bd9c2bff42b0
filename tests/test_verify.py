from __future__ import annotations

from reportgen.artifacts.manifest import ArtifactEntry, EnvironmentFacts
from reportgen.run.verify import ArtifactCheck, compare_artifacts, environment_differences


def _entry(digit: str) -> ArtifactEntry:
    return ArtifactEntry(sha256=digit * 64, size=1)


def test_compare_artifacts_statuses() -> None:
    old = {"a": _entry("1"), "b": _entry("2"), "c": _entry("3")}
    new = {"a": _entry("1"), "b": _entry("f"), "d": _entry("4")}
    checks = compare_artifacts(old, new)
    assert [(c.path, c.status) for c in checks] == [
        ("a", "match"), ("b", "differs"), ("c", "missing"), ("d", "extra"),
    ]  # fmt: skip
    assert [(c.recorded, c.reproduced) for c in checks] == [
        ("1" * 64, "1" * 64), ("2" * 64, "f" * 64), ("3" * 64, None), (None, "4" * 64),
    ]  # fmt: skip
    assert ArtifactCheck("a", "1", "1").status == "match"


def _environment(cpu: str, threads: int) -> EnvironmentFacts:
    return EnvironmentFacts(
        versions={"torch": "2.14.1"}, hardware={"cpu": cpu}, threads=threads, parallel_info=""
    )


def test_environment_differences_name_the_cause() -> None:
    old, new = _environment("A", 2), _environment("B", 1)
    assert environment_differences(old, new) == ["hardware cpu: A → B", "threads: 2 → 1"]
    assert environment_differences(old, old) == []
