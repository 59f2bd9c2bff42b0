"""The README's Quick start and CI must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("reportgen run")
    assert "'.[dev]'" in commands[1] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert _quick_start_commands()[1] in ci_lines


def test_github_workflow_is_valid_yaml_using_the_readme_commands() -> None:
    import yaml

    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(.+?)\n```", text, re.DOTALL)
    assert block is not None
    workflow = yaml.safe_load(block.group(1))
    steps = workflow["jobs"]["report"]["steps"]
    commands = [step["run"] for step in steps if "run" in step]
    assert commands[0].startswith(_quick_start_commands()[0])
    assert "summary.md" in commands[1] and "GITHUB_STEP_SUMMARY" in commands[1]
    upload = next(step for step in steps if "upload-artifact" in step.get("uses", ""))
    assert upload["with"]["path"] == "reports/default/"


def test_every_command_is_documented() -> None:
    from reportgen.cli import build_parser

    text = (REPO / "README.md").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in commands:
        assert f"`reportgen {name}" in text, name
