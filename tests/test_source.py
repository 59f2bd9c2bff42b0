"""The package's own source: public PyTorch APIs only."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "reportgen"
# torch._foreach_add_, torch._C, torch.ops.aten.…: private or below the public API.
PRIVATE_ACCESS = re.compile(r"torch\._|torch\.ops\.aten")
# `from torch import _C`, `from torch.optim import _functional` reach them too.
PRIVATE_IMPORT = re.compile(r"^\s*from torch(\.\w+)* import .*\b_(?!_(config|version)__\b)")


def _lines(pattern: re.Pattern[str]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]


def test_the_package_calls_no_private_torch_api() -> None:
    assert list(PACKAGE.rglob("*.py")), PACKAGE
    assert _lines(PRIVATE_ACCESS) == []
    assert _lines(PRIVATE_IMPORT) == []


def test_the_patterns_catch_what_they_are_for() -> None:
    for line in ["torch._foreach_add_(steps, ones)", "aten = torch.ops.aten",
                 "x = torch._C._get_tracing_state()"]:  # fmt: skip
        assert PRIVATE_ACCESS.search(line), line
    for line in ["from torch import _C", "from torch.optim import _functional as F",
                 "from torch import nn, _utils"]:  # fmt: skip
        assert PRIVATE_IMPORT.search(line), line
    for line in ["from torch import nn", "from torch import __config__ as torch_config",
                 "from torch import __version__"]:  # fmt: skip
        assert not PRIVATE_IMPORT.search(line), line
