"""The README's dvc.yaml, run by a real DVC in a fresh git repository: repro, metrics, plots.

The config the stage runs is the default one with only its data options
changed: a small generated image folder, so the stage trains in seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .imagefolder_fixture import make_image_folder

README = Path(__file__).parent.parent / "README.md"
DVC = Path(sys.executable).parent / "dvc"
NEEDED = "dvc (pip install -e '.[dev]') and git are needed"
pytestmark = pytest.mark.skipif(not DVC.is_file() or shutil.which("git") is None, reason=NEEDED)


def _find(data: object, key: str) -> dict[str, object]:
    """Return the mapping holding ``key`` anywhere in ``dvc metrics show --json``'s output."""
    if isinstance(data, dict):
        if key in data:
            return data
        for value in data.values():
            found = _find(value, key)
            if found:
                return found
    return {}


def readme_block(language: str, after: str) -> str:
    """Return the first ``language`` code block of the README after the text ``after``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(after)
    found = re.search(rf"```{language}\n(.*?)```", text[start:], re.S)
    assert found is not None, f"no {language} block after {after!r}"
    return found.group(1)


def test_readme_dvc_yaml_reproduces_and_shows_metrics_and_plots(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    images = make_image_folder(tmp_path / "images", per_class_train=12, per_class_test=6)
    environ = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_CONFIG_NOSYSTEM": "1",
               "PATH": f"{DVC.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "PYTHONPATH": str(Path(__file__).parent.parent), "HOME": str(tmp_path)}  # fmt: skip

    def run(*command: str) -> str:
        done = subprocess.run(command, cwd=repo, env=environ, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
        return done.stdout

    run("git", "init", "-q")
    run("git", "config", "user.email", "test@example.invalid")
    run("git", "config", "user.name", "test")
    run(str(DVC), "init", "-q")
    run(str(DVC), "config", "core.analytics", "false")
    (repo / "dvc.yaml").write_text(readme_block("yaml", "In a DVC project"), encoding="utf-8")
    template = readme_block("json", "confusion_counts.json")
    (repo / ".dvc" / "plots").mkdir(exist_ok=True)
    (repo / ".dvc" / "plots" / "confusion_counts.json").write_text(template, encoding="utf-8")
    # Only the data options differ from the defaults (and the time they take).
    (repo / "config.toml").write_text(
        f'[data]\ndataset = "imagefolder"\npath = {json.dumps(str(images))}\nimage_size = 16\n'
        "channels = 1\nval_size = 8\n\n[train]\nepochs = 1\n\n[report]\npdf = false\n"
        "attributions = false\nbootstrap_resamples = 100\nrender = false\nduplicates = false\n"
        "label_issues = false\n\n[report.robustness]\nenabled = false\n\n"
        "[runtime]\nthreads = 1\n",
        encoding="utf-8",
    )

    run(str(DVC), "repro", "-q")
    metrics = json.loads(run(str(DVC), "metrics", "show", "--json"))
    shown = _find(metrics, "baseline.test_accuracy")
    written = json.loads((repo / "reports/default/scalars.json").read_text())
    assert shown["baseline.test_accuracy"] == written["baseline.test_accuracy"]
    assert shown["regularized.test_accuracy"] == written["regularized.test_accuracy"]

    run(str(DVC), "plots", "show", "-o", "plots")
    html = (repo / "plots" / "index.html").read_text()
    for name in ("accuracy", "loss", "confusion/baseline.csv", "confusion/regularized.csv"):
        assert name in html
    assert '"count"' in html  # the confusion plots sum the counts
