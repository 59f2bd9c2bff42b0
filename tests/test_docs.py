"""The README and docs/: Quick start and CI agree, every command is documented, every link works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]
LINK = re.compile(r"\[(?:[^\]]|\n)*?\]\(([^)\s]+)\)")


def _quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def slug(heading: str) -> str:
    """Return the anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Return the anchors of every heading of a Markdown page (code blocks skipped)."""
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            found.add(slug(match.group(1)))
    return found


def broken_links(page: Path) -> list[str]:
    """Return each relative link of ``page`` whose file or heading does not exist."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no such heading)")
    return broken


def test_quick_start_has_exactly_two_commands() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("reportgen run")
    assert "-c constraints.txt" in commands[0]
    assert "'.[dev]' -c constraints.txt" in commands[1]
    assert '-m "not slow" -n auto' in commands[1] and "-m slow" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert _quick_start_commands()[1] in ci_lines


def test_github_workflow_is_valid_yaml_using_the_readme_commands() -> None:
    import yaml

    text = (REPO / "docs" / "ci.md").read_text()
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
    from reportgen.cli.main import build_parser

    text = (REPO / "README.md").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in commands:
        assert f"`reportgen {name}" in text, name


def test_every_docs_page_is_linked_from_the_readme() -> None:
    text = (REPO / "README.md").read_text()
    assert DOCS, "docs/ holds the reference"
    for page in DOCS:
        assert f"(docs/{page.name})" in text, page.name


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[fine](other.md#a-part) [gone](missing.md) [nowhere](other.md#no-part)\n"
        "[here](#page) [web](https://example.org)\n```sh\n[not a link](nothing.md)\n```\n"
    )
    assert broken_links(page) == ["missing.md (no such file)", "other.md#no-part (no such heading)"]
