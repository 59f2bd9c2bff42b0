"""Property: a mutated config.toml or any --set validates or exits 2 — never a traceback."""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reportgen.cli.main import main

REPO = Path(__file__).resolve().parents[1]
DEFAULT = (REPO / "config.toml").read_text()
KEYS = [
    f"{section}.{key}"
    for section, table in tomllib.loads(DEFAULT).items()
    if isinstance(table, dict)
    for key in table
] + ["seed", "models.baseline.hidden", "models.regularized.dropout", "models.cnn.kind"]

toml_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(f), repr(f))
    ),
    st.booleans().map(lambda b: str(b).lower()),
    st.text(max_size=12).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
    st.text(max_size=12),
    st.lists(st.integers(-20, 300), max_size=4).map(str),
    st.sampled_from(["[[4, 9], [3, 8]]", "[[1, 1]]", "{a = 1}", "[", "sgd", "cosine", "1e400"]),
    st.sampled_from(["true", "false", "inf", "-inf", "nan", "+nan", "[true, 2]", '"2"', "2.0"]),
    # Line breaks, other control characters and undecodable command-line bytes (as
    # surrogates), alone or around a value; "[" * 3000 is deeper than the parser recurses.
    st.tuples(
        st.sampled_from(["", "1", '"a"', "true", "inf"]),
        st.sampled_from(list("\n\r\v\f\x00\x1b\x85\u2028\u2029\udcff\t")),
        st.sampled_from(["", "seed=3", "2", '"b"']),
    ).map("".join),
    st.just("[" * 3000),
)
keys = (
    st.sampled_from(KEYS)
    | st.text(max_size=15)
    | st.sampled_from(KEYS).map(lambda key: key.replace(".", ".\n", 1))
)
overrides = st.tuples(keys, toml_values).map(lambda kv: f"{kv[0]}={kv[1]}") | st.text(max_size=20)


FIXTURES = [HealthCheck.function_scoped_fixture]


def _numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, float) else []


def _check(status: int, err: str, out: str = "") -> None:
    if status == 0 and out:  # what was accepted prints back as TOML, every number finite
        assert all(math.isfinite(n) for n in _numbers(tomllib.loads(out))), out
    assert status in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    if status == 2:
        assert err.startswith("reportgen: error: ") or "usage:" in err, err
        if err.startswith("reportgen: error: "):
            assert err.count("\n") == 1, err


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(items=st.lists(overrides, max_size=4))
def test_random_overrides_validate_or_exit_2(
    items: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["config", "--config", str(REPO / "config.toml")]
    for item in items:
        args += ["--set", item]
    status = main(args)
    captured = capsys.readouterr()
    _check(status, captured.err, captured.out)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(
    position=st.integers(min_value=0, max_value=len(DEFAULT)),
    delete=st.integers(min_value=0, max_value=20),
    insert=st.text(alphabet=st.sampled_from(list("[]=\"=.,#\n abc019-_{}\\'")), max_size=10),
)
def test_mutated_config_files_validate_or_exit_2(
    position: int, delete: int, insert: str, tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text(DEFAULT[:position] + insert + DEFAULT[position + delete :])
    status = main(["config", "--config", os.fspath(path)])
    _check(status, capsys.readouterr().err)
